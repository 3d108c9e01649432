"""Experiments and leaderboards that fit a terminal: `make exp-show` and `make metrics`.

``dvc exp show`` prints every param and every metric (158 columns here), and
``dvc metrics show`` tables some 260 characters wide. This prints what a comparison needs, in
at most 120 characters a line:

- ``python -m tools.exp_show``: one row per experiment (the workspace, each baseline commit by
  its short rev, each experiment by name), the params that differ between those rows, and for
  each dataset and algorithm the leaderboard's cross-validated mean ± std of its ranking
  metric (``metrics/leaderboard/<dataset>.json``: ``models.<algo>.cv_mean``/``cv_std``), the
  champion marked ``*``. Best first: by the mean over datasets of the champion's CV score
  (the best model's when a dataset has no champion), each board's ``higher_is_better``
  respected; ``--sort-by credit:xgb`` sorts by one model. Rows without results go last.
  Headers that do not fit are abbreviated (a legend below says what they stand for) and
  metric columns that still do not fit continue in further blocks, the names repeated.
- ``python -m tools.exp_show --workspace``: the current workspace's leaderboards, one table
  per dataset in ranking order (model, CV mean ± std, test score and its 95% interval,
  threshold, champion), and why the champion won.

The full detail stays with ``dvc metrics show``, ``dvc metrics diff`` and
``dvc exp show --csv``. The data comes from ``dvc exp show --json`` (DVC 3: a list of
baselines, the workspace first, each with its ``experiments``; ``data.params`` and
``data.metrics`` map file -> {"data": ...}; DVC leaves out null values and lists of a
metrics file, so the ranking is recomputed from the CV means).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tabml.secrets import redact

WIDTH = 120
GAP = "  "
NAME_MAX = 24  # characters of an experiment name; longer ones are cut with …
VALUE_MAX = 20  # characters of a param value
LEADERBOARD_DIR = PurePosixPath("metrics/leaderboard")
MISSING = "-"
FOOTER = (
    "more: dvc metrics show (every metric), dvc metrics diff (against HEAD), "
    "dvc exp show --csv (every param and metric), make exp-show (experiments side by side)"
)


class ExpShowError(Exception):
    """What stops the comparison (dvc failed, a leaderboard cannot be read), in one line."""


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """One model's CV summary on a leaderboard."""

    mean: float
    std: float | None
    champion: bool


@dataclass(frozen=True)
class Board:
    """A dataset's leaderboard as far as the comparison needs it."""

    metric: str
    higher_is_better: bool
    champion: str | None
    scores: dict[str, Score]  # algo -> CV summary, models without CV results left out

    def goodness(self, value: float) -> float:
        """``value`` made "larger is better", so boards of either direction compare."""
        return value if self.higher_is_better else -value

    def headline(self) -> float | None:
        """The champion's CV mean, or the best one when the board has no champion."""
        if self.champion in self.scores:
            return self.scores[self.champion].mean
        if not self.scores:
            return None
        return max((s.mean for s in self.scores.values()), key=self.goodness)

    def ranking(self) -> list[str]:
        return sorted(self.scores, key=lambda a: -self.goodness(self.scores[a].mean))


@dataclass
class Row:
    """One experiment: its name, flattened params (dotted key -> text) and leaderboards."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    boards: dict[str, Board] = field(default_factory=dict)
    state: str | None = None  # queued, running, failed: an experiment that has not finished


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def board_from(data: Mapping[str, Any]) -> Board:
    """A :class:`Board` from a leaderboard's JSON; a model without a numeric ``cv_mean`` (no
    CV results, or a board an older evaluate wrote) has no score."""
    models = data.get("models")
    champion = data.get("champion") if isinstance(data.get("champion"), str) else None
    scores: dict[str, Score] = {}
    for algo, entry in (models if isinstance(models, Mapping) else {}).items():
        mean = _number(entry.get("cv_mean")) if isinstance(entry, Mapping) else None
        if mean is not None:
            scores[algo] = Score(mean, _number(entry.get("cv_std")), algo == champion)
    return Board(
        metric=str(data.get("metric", "score")),
        higher_is_better=data.get("higher_is_better", True) is not False,
        champion=champion,
        scores=scores,
    )


def _text(value: Any) -> str:
    """A param value as YAML would spell it, compactly."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":")).replace('"', "")


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested params as dotted keys (lists stay one value)."""
    if not isinstance(data, Mapping):
        return {prefix: _text(data)}
    out: dict[str, str] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _leaderboard_dataset(path: str) -> str | None:
    """``credit`` for ``metrics/leaderboard/credit.json`` (in any subdirectory of the repo)."""
    p = PurePosixPath(path.replace("\\", "/"))
    if p.suffix == ".json" and p.parent.parts[-2:] == LEADERBOARD_DIR.parts:
        return p.stem
    return None


def row_from(name: str, data: Mapping[str, Any] | None, state: str | None = None) -> Row:
    """A :class:`Row` from one ``data`` record of ``dvc exp show --json``."""
    row = Row(name, state=state)
    if not data:
        return row
    for file, entry in (data.get("params") or {}).items():
        values = (entry or {}).get("data")
        if isinstance(values, Mapping):
            prefix = "" if file == "params.yaml" else f"{file}:"
            row.params.update({prefix + k: v for k, v in flatten(values).items()})
    for file, entry in (data.get("metrics") or {}).items():
        dataset = _leaderboard_dataset(file)
        values = (entry or {}).get("data")
        if dataset and isinstance(values, Mapping):
            board = board_from(values)
            if board.scores:
                row.boards[dataset] = board
    return row


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rows_from_exp_show(records: Sequence[Mapping[str, Any]]) -> tuple[list[Row], int]:
    """(rows, number of experiments) from ``dvc exp show --json``: the workspace, each
    baseline (short rev) and each of its experiments (by name; the state of one that has
    not finished, e.g. queued, takes the place of its first score)."""
    rows: list[Row] = []
    experiments = 0
    for record in records:
        rev = str(record.get("rev", ""))
        name = "workspace" if rev == "workspace" else rev[:7]
        rows.append(row_from(name, record.get("data")))
        for exp in record.get("experiments") or []:
            revs = exp.get("revs") or []
            if not revs:
                continue
            latest = revs[0]
            label = exp.get("name") or latest.get("name") or str(latest.get("rev", ""))[:7]
            state = (exp.get("executor") or {}).get("state")
            state = state if state and state != "success" else None
            rows.append(row_from(label, latest.get("data"), state))
            experiments += 1
    for row in rows:
        row.name = _short(row.name, NAME_MAX)
    return rows, experiments


# --- sorting -------------------------------------------------------------------------------


def parse_model(text: str) -> tuple[str, str]:
    """``("credit", "xgb")`` for ``credit:xgb``."""
    dataset, sep, algo = text.partition(":")
    if not sep or not dataset or not algo:
        raise ExpShowError(f"--sort-by {text}: expected <dataset>:<algo>, e.g. credit:xgb")
    return dataset, algo


def sort_rows(rows: Sequence[Row], sort_by: tuple[str, str] | None = None) -> list[Row]:
    """Best first. By default by the mean over datasets of each board's headline CV score
    (made "larger is better" per board), rows missing a dataset after complete ones; with
    ``sort_by`` by that model's CV mean. Rows without that score go last, in dvc's order."""
    datasets = sorted({d for row in rows for d in row.boards})

    def key(row: Row) -> tuple[int, float]:
        if sort_by is not None:
            board = row.boards.get(sort_by[0])
            score = board.scores.get(sort_by[1]) if board else None
            return (0, -board.goodness(score.mean)) if board and score else (1, 0.0)
        values = [
            row.boards[d].goodness(h)
            for d in datasets
            if d in row.boards and (h := row.boards[d].headline()) is not None
        ]
        if not values:
            return (len(datasets) + 1, 0.0)
        return (len(datasets) - len(values), -sum(values) / len(values))

    return sorted(rows, key=key)


def model_columns(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """(dataset, algo) of every model with a CV score in any row: datasets by name, the
    algorithms of each in the ranking of the first (best) row that has them."""
    columns: list[tuple[str, str]] = []
    for dataset in sorted({d for row in rows for d in row.boards}):
        for row in rows:
            if dataset in row.boards:
                for algo in row.boards[dataset].ranking():
                    if (dataset, algo) not in columns:
                        columns.append((dataset, algo))
    return columns


def changed_params(rows: Sequence[Row]) -> list[str]:
    """Dotted keys whose value differs between ``rows`` (a key some rows lack counts)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row.params if k not in keys]
    return [k for k in keys if len({row.params.get(k) for row in rows}) > 1]


# --- layout --------------------------------------------------------------------------------


@dataclass
class Column:
    header: str
    cells: list[str]
    left: bool = False

    @property
    def width(self) -> int:
        return max([len(self.header), *map(len, self.cells)])

    def cell(self, text: str) -> str:
        return text.ljust(self.width) if self.left else text.rjust(self.width)


def _line_width(columns: Sequence[Column]) -> int:
    return sum(c.width for c in columns) + len(GAP) * (len(columns) - 1)


def _table(columns: Sequence[Column]) -> list[str]:
    lines = [GAP.join(c.cell(c.header) for c in columns)]
    lines += [GAP.join(c.cell(c.cells[i]) for c in columns) for i in range(len(columns[0].cells))]
    return [line.rstrip() for line in lines]


def abbreviations(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key's shortest dotted suffix that no other key ends with."""
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            short = ".".join(parts[-n:])
            if not any(o != key and (o == short or o.endswith("." + short)) for o in keys):
                break
        out[key] = short
    return out


def blocks(name: Column, columns: Sequence[Column], width: int) -> list[list[Column]]:
    """``columns`` packed in order into blocks that fit ``width`` beside ``name``."""
    out: list[list[Column]] = [[]]
    for column in columns:
        if out[-1] and _line_width([name, *out[-1], column]) > width:
            out.append([])
        out[-1].append(column)
    return out


def _wrap(text: str, width: int, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False)


def _score_cell(score: Score | None) -> str:
    if score is None:
        return MISSING + " "
    std = f"±{score.std:.3f}" if score.std is not None else ""
    return f"{score.mean:.3f}{std}{'*' if score.champion else ' '}"


def render_experiments(
    rows: Sequence[Row], sort_by: tuple[str, str] | None = None, width: int = WIDTH
) -> list[str]:
    """The comparison table (best row first) and its legend, no line wider than ``width``."""
    columns = model_columns(rows)
    if sort_by is not None and sort_by not in columns:
        have = ", ".join(f"{d}:{a}" for d, a in columns) or "none"
        raise ExpShowError(
            f"--sort-by {sort_by[0]}:{sort_by[1]}: no such model with CV results; have {have}"
        )
    rows = sort_rows(rows, sort_by)
    name = Column("experiment", [r.name for r in rows], left=True)
    keys = changed_params(rows)
    params = [
        Column(k, [_short(r.params.get(k, MISSING), VALUE_MAX) for r in rows], left=True)
        for k in keys
    ]
    metrics = [
        Column(
            f"{d}:{a}",
            [_score_cell(r.boards[d].scores.get(a) if d in r.boards else None) for r in rows],
        )
        for d, a in columns
    ]
    if metrics:
        first = metrics[0].cells
        for i, row in enumerate(rows):
            if row.state and first[i] == _score_cell(None):
                first[i] = row.state + " "
    legend: list[str] = []
    short = abbreviations(keys)
    abbreviated = [Column(short[c.header], c.cells, c.left) for c in params]
    # Full keys unless abbreviating them saves a wrap (or they alone overflow a line).
    if (
        params
        and _line_width([name, *params, *metrics]) > width
        and (
            _line_width([name, *abbreviated, *metrics]) <= width
            or _line_width([name, *params]) > width
        )
    ):
        params = abbreviated
        renamed = [f"{short[k]} = {k}" for k in keys if short[k] != k]
        if renamed:
            legend += _wrap("params: " + "; ".join(renamed), width)
    lines: list[str] = []
    for block in blocks(name, [*params, *metrics], width):
        if lines:
            lines.append("")
        lines += _table([name, *block])
    if not metrics:
        legend.append("no leaderboard with CV results in any row: run the pipeline (make repro)")
    else:
        boards = {d: b for r in rows for d, b in r.boards.items()}
        what = sorted({(b.metric, b.higher_is_better) for b in boards.values()})
        if len(what) == 1:
            metric = f"{what[0][0]} ({'higher' if what[0][1] else 'lower'} is better)"
        else:
            metric = ", ".join(
                f"{d} {b.metric} ({'higher' if b.higher_is_better else 'lower'} is better)"
                for d, b in sorted(boards.items())
            )
        order = (
            f"by {sort_by[0]}:{sort_by[1]}"
            if sort_by
            else "by the champion's CV score, averaged over datasets"
        )
        legend += _wrap(
            f"cells: CV mean±std of {metric}, from metrics/leaderboard/<dataset>.json; "
            f"* champion; {MISSING} no CV result. Rows best first {order}.",
            width,
        )
    return [*lines, "", *legend]


def render_workspace(boards: Mapping[str, Mapping[str, Any]], width: int = WIDTH) -> list[str]:
    """Per dataset: the models in ranking order (model id, CV mean ± std, test score and its
    95% interval, threshold, champion), then the champion and why; a footer on where the
    full detail is."""

    def num(value: Any, digits: int = 3) -> str:
        number = _number(value)
        return MISSING if number is None else f"{number:.{digits}f}"

    lines: list[str] = []
    for dataset, data in boards.items():
        board = board_from(data)
        models: Mapping[str, Any] = data["models"]
        ranking = [a for a in data.get("ranking") or board.ranking() if a in models]
        ranking += [a for a in models if a not in ranking]
        folds = data.get("cv_folds")
        direction = "higher" if board.higher_is_better else "lower"
        title = f"{dataset}: {board.metric} ({direction} is better)"
        title += f", {folds}-fold CV on the train split" if folds else ""
        lines += _wrap(title + ", best first", width)
        cells: dict[str, list[str]] = {}
        for algo in ranking:
            m = models[algo]
            low, high = num(m.get("test_low")), num(m.get("test_high"))
            row = {
                "algo": algo,
                "model": str(m.get("model_id", MISSING)),
                "CV mean±std": _score_cell(board.scores.get(algo)).rstrip("* "),
                f"test {board.metric}": num(m.get("test")),
                "test 95% interval": MISSING if MISSING in (low, high) else f"[{low}, {high}]",
                "threshold": num(m.get("threshold")),
                "champion": "*" if algo == board.champion else "",
            }
            for key, value in row.items():
                cells.setdefault(key, []).append(value)
        table = [Column(k, v, left=k in ("algo", "model", "champion")) for k, v in cells.items()]
        lines += ["  " + line for line in _table(table)]
        champion = data.get("champion_model") or data.get("champion") or "none"
        reason = data.get("reason") or ""
        lines += _wrap(f"champion: {champion}" + (f" — {reason}" if reason else ""), width)
        if data.get("rule"):
            lines += _wrap(f"rule: {data['rule']}", width)
        lines.append("")
    return [*lines, *_wrap(FOOTER, width)]


# --- edges ---------------------------------------------------------------------------------


def dvc_exp_show(root: Path, all_commits: bool = False) -> list[dict[str, Any]]:
    """``dvc exp show --json`` in ``root`` (dvc of this interpreter's environment)."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    if all_commits:
        cmd.append("--all-commits")
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ExpShowError(f"cannot run dvc exp show: {exc}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1].removeprefix("ERROR: ") if lines else f"exit code {proc.returncode}"
        why = redact(why)  # a remote's URL in dvc's message may carry a credential
        raise ExpShowError(f"dvc exp show failed in {root}: {why}")
    try:
        records = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ExpShowError(f"dvc exp show --json printed no JSON ({exc.msg}); is dvc 3?") from None
    if not isinstance(records, list):
        raise ExpShowError("dvc exp show --json printed no list of revisions; is dvc 3?")
    return records


def read_leaderboards(root: Path) -> dict[str, dict[str, Any]]:
    """dataset -> leaderboard of every ``metrics/leaderboard/*.json`` under ``root``; a file
    that is not a leaderboard with CV results stops with the file named."""
    boards: dict[str, dict[str, Any]] = {}
    for path in sorted((root / LEADERBOARD_DIR).glob("*.json")):
        rel = path.relative_to(root).as_posix()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ExpShowError(f"cannot read {rel}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ExpShowError(f"{rel} is not JSON (line {exc.lineno}): rerun make repro") from None
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
            raise ExpShowError(
                f"{rel} has no models.<algo>.cv_mean (an older evaluate wrote it): rerun make repro"
            )
        boards[path.stem] = data
    return boards


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.exp_show",
        description="Experiments side by side (changed params, CV score per model, best "
        "first), or with --workspace the current leaderboards, in at most 120 columns.",
    )
    p.add_argument(
        "--workspace",
        action="store_true",
        help="the current workspace's leaderboards only (make metrics); reads no git history",
    )
    p.add_argument(
        "--sort-by",
        metavar="DATASET:ALGO",
        help="sort by this model's CV mean (default: the champions' mean over datasets)",
    )
    p.add_argument(
        "-A",
        "--all-commits",
        action="store_true",
        help="experiments of every commit, not only those of HEAD (dvc exp show -A)",
    )
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.workspace:
            boards = read_leaderboards(args.root)
            if not boards:
                _emit([f"no leaderboard yet ({LEADERBOARD_DIR}/*.json): run make repro"])
                return 0
            _emit(render_workspace(boards))
            return 0
        sort_by = parse_model(args.sort_by) if args.sort_by else None
        rows, experiments = rows_from_exp_show(dvc_exp_show(args.root, args.all_commits))
        if experiments == 0:
            _emit(["no experiments yet: run dvc exp run -S train.rf.n_estimators=500 (any param)"])
            return 0
        _emit(render_experiments(rows, sort_by))
        return 0
    except ExpShowError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def _emit(lines: Iterable[str]) -> None:
    # A terminal that cannot show ± or … gets ? rather than a traceback.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    sys.stdout.write("".join(f"{line}\n" for line in lines))


if __name__ == "__main__":
    sys.exit(main())
