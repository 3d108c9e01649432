"""The pipeline against a plain script on N synthetic rows (`make bench-scale`).

1. Generates a reproducible synthetic dataset (:func:`generate`: same rows and seed, same
   bytes): 20 input columns (numbers with missing values, low-cardinality categories, two
   Zipf-distributed categories with thousands of levels) and a binary target drawn from a
   logistic model of several of them plus noise (about 25% positives).
2. Copies the repository (the files git tracks or would track: no DVC cache, no data
   outputs) into a temporary directory, writes the CSV to ``data/external/bench/`` there and
   a params.yaml declaring only that dataset (everything else as in this repository's), and
   runs ``dvc repro`` once with this repository's ``.venv`` first on PATH. Each stage appends
   its wall seconds and peak RSS to the file named by ``TABML_STAGE_STATS``
   (:func:`tabml.cli.report_done`).
3. Runs ``tools.bench_plain`` on the same CSV with the same settings: one process that
   reads, splits, preprocesses, fits the same three models and scores them.
4. Prints one row per stage with its plain counterpart and the pipeline/plain ratio, and a
   TOTAL row (``--json``, ``--markdown``: the same numbers as files).

What the figures include: a stage's seconds run from its process start to its end
(interpreter start-up and imports included); the pipeline TOTAL is the wall time of the
whole ``dvc repro`` (DVC's own start-up, hashing and lock writing included). The plain
phases are timed inside its one process; its TOTAL is the wall time of that process
(start-up and imports included). The CSV was just written, so both read it from a warm
page cache. The notes under the table give the machine (nproc, RAM, CPU) and its load
average before and after: above nproc, other work shared the cores and times are inflated.

    make bench-scale ROWS=1000000 ENGINE=pandas BENCH_ARGS="--json b.json --markdown b.md"
    python -m tools.bench_scale --rows 3000 --set train.rf.n_estimators=20 --keep

``--set KEY=VALUE`` changes a param of the copy for both sides; ``--keep`` keeps the copy
(it is kept anyway when a run fails, and its path logged).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import STATS_ENV, disk_error, setup_logging

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_scale")

DATASET = "bench"
TARGET = "converted"
POSITIVE_CLASS = "1"
SNAPSHOT = "20250101"
CSV_NAME = "bench.csv"
MIN_ROWS = 200
POSITIVE_SHARE = 0.25  # the intercept of the logistic model is solved for this mean

# Stage kinds in pipeline order, and the plain phase each one is compared with.
# dvc.yaml's order of the phases (a tune stage runs before the train it feeds).
STAGE_ORDER = (
    "check-params",
    "ingest",
    "split",
    "featurize",
    "tune",
    "train",
    "evaluate",
    "plot",
    "report",
)
COUNTERPART = {"ingest": "read", "split": "split", "featurize": "preprocess", "evaluate": "score"}
ALGO_ORDER = ("rf", "xgb", "lr")
DASH = "\u2013"  # en dash: no counterpart, no value
TIMES = "\u00d7"  # the ratio sign


class BenchError(Exception):
    """A problem the user can fix; printed as one ``error:`` line."""


# --- the synthetic dataset ---------------------------------------------------------------

# (name, levels, weight of its level effects in the logit, share missing)
LOW_CARDINALITY = (
    ("region", 5, 0.6, 0.0),
    ("channel", 4, 0.0, 0.02),
    ("plan", 3, 0.5, 0.0),
    ("segment", 6, 0.15, 0.05),
    ("device", 8, 0.5, 0.03),
    ("payment", 4, 0.4, 0.0),
    ("education", 10, 0.2, 0.08),
)
# (name, levels, Zipf exponent, weight of its level effects, share missing)
HIGH_CARDINALITY = (
    ("merchant", 5000, 1.1, 0.7, 0.01),
    ("postcode", 2000, 0.8, 0.0, 0.04),
)


def _zscore(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() or 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _intercept(logit: np.ndarray, share: float) -> float:
    """The shift that makes the mean probability ``share`` (bisection: monotone in b)."""
    low, high = -30.0, 30.0
    for _ in range(40):
        mid = (low + high) / 2
        if _sigmoid(logit + mid).mean() < share:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic frame of ``rows`` rows: 20 inputs and the 0/1 target ``converted``.

    Deterministic for a given (rows, seed): every draw comes from one seeded generator in a
    fixed order. The target follows a logistic model of most columns (true values, before
    missing values are punched in), with a little non-linearity and Gaussian noise.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = rows
    age = np.clip(np.round(rng.normal(45, 14, n)), 18, 90)
    income = np.round(rng.lognormal(10.5, 0.6, n), 2)
    balance = np.round(rng.normal(1000, 3000, n), 2)
    tenure = rng.poisson(30, n).astype("float64")
    products = (rng.poisson(1.5, n) + 1).astype("float64")
    score_a = np.round(rng.normal(0, 1, n), 4)
    score_b = np.round(rng.random(n), 4)
    utilization = np.round(rng.beta(2, 5, n), 4)
    days = np.round(rng.exponential(40, n), 1)
    late = rng.poisson(0.3, n).astype("float64")
    has_card = (rng.random(n) < 0.6).astype("float64")

    logit = (
        -0.25 * _zscore(age)
        + 0.25 * (_zscore(age) ** 2 - 1)
        - 0.35 * _zscore(np.log(income))
        + 0.2 * _zscore(balance)
        - 0.45 * _zscore(tenure)
        - 0.2 * _zscore(products)
        + 0.7 * _zscore(score_a)
        + 0.6 * _zscore(utilization)
        + 0.3 * _zscore(utilization) * _zscore(score_a)
        + 0.25 * _zscore(days)
        + 0.5 * late
        - 0.3 * has_card
    )
    columns: dict[str, Any] = {}
    numeric = (
        ("age", age, 0.02, True),
        ("income", income, 0.10, False),
        ("balance", balance, 0.05, False),
        ("tenure_months", tenure, 0.01, True),
        ("n_products", products, 0.0, True),
        ("score_a", score_a, 0.15, False),
        ("score_b", score_b, 0.08, False),
        ("utilization", utilization, 0.03, False),
        ("days_since_last", days, 0.12, False),
        ("late_payments", late, 0.01, True),
        ("has_card", has_card, 0.0, True),
    )
    for name, values, missing, integer in numeric:
        mask = rng.random(n) < missing
        if integer:
            columns[name] = pd.array(values.astype("int64"), dtype="Int64")
            columns[name][mask] = pd.NA
        else:
            columns[name] = np.where(mask, np.nan, values)

    def categories(name: str, probs: np.ndarray, weight: float, missing: float) -> None:
        nonlocal logit
        codes = rng.choice(len(probs), size=n, p=probs)
        effects = rng.normal(0, 1, len(probs)) * weight
        logit = logit + effects[codes]
        codes[rng.random(n) < missing] = -1  # missing
        levels = [f"{name[:3]}{k}" for k in range(len(probs))]
        columns[name] = pd.Categorical.from_codes(codes, categories=levels)

    for name, levels, weight, missing in LOW_CARDINALITY:
        categories(name, rng.dirichlet(np.full(levels, 2.0)), weight, missing)
    for name, levels, exponent, weight, missing in HIGH_CARDINALITY:
        zipf = 1.0 / np.arange(1, levels + 1) ** exponent
        categories(name, zipf / zipf.sum(), weight, missing)

    logit = logit + rng.normal(0, 0.5, n)
    proba = _sigmoid(logit + _intercept(logit, POSITIVE_SHARE))
    columns[TARGET] = (rng.random(n) < proba).astype("int64")
    return pd.DataFrame(columns)


def write_dataset(frame: pd.DataFrame, path: Path) -> None:
    """The CSV, written by pyarrow (several times faster than pandas' to_csv): no quotes (no
    name or value holds a comma or a quote), missing values as empty cells, floats in their
    shortest round-trip form."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write((",".join(map(str, frame.columns)) + "\n").encode())  # pyarrow quotes it
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, out, options)


# --- the temporary repository ------------------------------------------------------------


def venv_bin() -> Path:
    """This repository's .venv/bin (where `make` installs), else this interpreter's bin."""
    here = REPO / ".venv" / "bin"
    return here if (here / "python").exists() else Path(sys.executable).parent


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("VIRTUAL_ENV", None)
    env.pop(STATS_ENV, None)
    for key in [k for k in env if k.startswith("COV_CORE_")]:
        del env[key]  # pytest-cov would measure (and slow) every stage process
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env.setdefault(key, "bench-scale")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setdefault(key, "bench-scale@example.invalid")
    env.update(extra or {})
    return env


def _git(args: list[str], cwd: Path) -> bytes:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=child_env(), capture_output=True, check=False
    )
    if proc.returncode != 0:
        message = " ".join(proc.stderr.decode(errors="replace").split())
        raise BenchError(f"git {' '.join(args)} failed in {cwd}: {message}")
    return proc.stdout


def copy_repository(src: Path, dest: Path) -> int:
    """Copy what git tracks or would track (working tree state, no DVC cache or outputs)
    into ``dest`` as a new git repository without dvc.lock; returns the files copied."""
    listed = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], src)
    count = 0
    for rel in filter(None, listed.decode().split("\0")):
        path = src / rel
        if path.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
            count += 1
    (dest / "dvc.lock").unlink(missing_ok=True)  # this repository's lock, for other params
    _git(["init", "-q", "-b", "main"], dest)
    _git(["add", "-A"], dest)
    _git(["-c", "commit.gpgsign=false", "commit", "-qm", "bench-scale copy", "--no-verify"], dest)
    return count


def _override(params: Any, setting: str) -> None:
    """Apply one ``--set a.b.c=value`` (the value read as YAML, as ``dvc exp run -S``)."""
    from ruamel.yaml import YAML, YAMLError
    from ruamel.yaml.comments import CommentedMap

    key, sep, text = setting.partition("=")
    names = key.strip().split(".")
    if not sep or not all(names):
        raise BenchError(f"--set {setting!r}: expected KEY=VALUE, e.g. train.rf.n_estimators=50")
    try:
        value = YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        raise BenchError(f"--set {setting!r}: the value is not valid YAML") from None
    node = params
    for name in names[:-1]:
        if not isinstance(node.get(name), dict):
            node[name] = CommentedMap()
        node = node[name]
    node[names[-1]] = value


def write_params(path: Path, csv_rel: str, engine: str, settings: Sequence[str] = ()) -> None:
    """Rewrite params.yaml with one dataset, ``bench`` (comments and the rest kept), then
    the ``--set`` overrides (both sides read them: the plain config comes from this file)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    params = yaml.load(path.read_text(encoding="utf-8"))
    params["datasets"] = CommentedMap(
        {
            DATASET: CommentedMap(
                {
                    "source": csv_rel,
                    "target": TARGET,
                    "positive_class": POSITIVE_CLASS,
                    "snapshot": SNAPSHOT,
                    "engine": engine,
                }
            )
        }
    )
    for setting in settings:
        _override(params, setting)
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(params, out)


def plain_config(params_path: Path) -> dict[str, Any]:
    """The validated sections the plain script needs (defaults filled in, as stages see)."""
    from tabml.errors import PipelineError
    from tabml.params import load_params

    try:
        params = load_params(params_path)
    except PipelineError as exc:
        raise BenchError(f"the benchmark's params.yaml is not valid: {exc}") from None
    return {
        "split": params.split.model_dump(),
        "featurize": params.featurize.model_dump(),
        "train": params.train.model_dump(),
    }


# --- running both sides ------------------------------------------------------------------


def children_peak_rss() -> int:
    """The largest peak RSS of any finished child process (and its waited-for children)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def run_pipeline(repo: Path, stats: Path) -> tuple[float, list[str]]:
    """``dvc repro`` in ``repo``; its output goes to stderr as it comes. Returns the wall
    seconds and the stages dvc said it ran."""
    cmd = [str(venv_bin() / "dvc"), "repro"]
    ran = []
    start = time.perf_counter()
    with subprocess.Popen(
        cmd,
        cwd=repo,
        env=child_env({STATS_ENV: str(stats)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(line)
            if line.startswith("Running stage '"):
                ran.append(line.split("'")[1])
        code = proc.wait()
    seconds = time.perf_counter() - start
    if code != 0:
        raise BenchError(f"dvc repro failed (exit {code}) in {repo}: see its output above")
    return seconds, ran


def read_stats(path: Path) -> dict[str, dict[str, float]]:
    """The lines the stages appended: stage name -> {seconds, peak_rss_bytes} (last wins)."""
    found: dict[str, dict[str, float]] = {}
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            found[entry["stage"]] = {
                "seconds": entry.get("seconds"),
                "peak_rss_bytes": entry.get("peak_rss_bytes"),
            }
    return found


def pipeline_auc(repo: Path) -> dict[str, dict[str, float | None]]:
    """ROC AUC per algorithm from the copy's metrics (None where not written): ``test``
    from the test metrics, ``cv`` (the fold mean) from the leaderboard."""
    from tabml.layout import Layout

    layout = Layout(repo)
    try:
        board = json.loads(layout.leaderboard(DATASET).read_text(encoding="utf-8"))["models"]
    except (OSError, KeyError, ValueError, TypeError):
        board = {}
    auc: dict[str, dict[str, float | None]] = {"test": {}, "cv": {}}
    for algo in ALGO_ORDER:
        path = layout.test_metrics(DATASET, algo)
        try:
            auc["test"][algo] = float(json.loads(path.read_text(encoding="utf-8"))["roc_auc"])
        except (OSError, KeyError, ValueError, TypeError):
            auc["test"][algo] = None
        cv = board.get(algo, {}).get("cv_mean") if isinstance(board, dict) else None
        auc["cv"][algo] = float(cv) if isinstance(cv, int | float) else None
    return auc


def run_plain(csv: Path, config: Path, out: Path, cwd: Path) -> tuple[float, dict[str, Any]]:
    """``python -m tools.bench_plain`` as its own process; (its wall seconds, its result)."""
    cmd = [
        str(venv_bin() / "python"),
        "-m",
        "tools.bench_plain",
        str(csv),
        "--target",
        TARGET,
        "--positive-class",
        POSITIVE_CLASS,
        "--config",
        str(config),
        "--json",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=child_env(), check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"the plain script failed (exit {proc.returncode}): see its output above")
    return seconds, json.loads(out.read_text(encoding="utf-8"))


# --- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    stage: str
    seconds: float | None
    peak_rss_gb: float | None
    plain: str | None  # the plain phase compared with, or None
    plain_seconds: float | None
    plain_peak_rss_gb: float | None = None


def ratio(pipeline: float | None, plain: float | None) -> str:
    """Like ``2.35x`` (times sign), or a dash when a side is missing or the plain one is 0."""
    if pipeline is None or plain is None or plain <= 0:
        return DASH
    return f"{pipeline / plain:.2f}{TIMES}"


def _stage_key(stage: str) -> tuple[int, int, str]:
    kind, _, item = stage.partition("@")
    rank = STAGE_ORDER.index(kind) if kind in STAGE_ORDER else len(STAGE_ORDER)
    algo = item.rsplit("-", 1)[-1] if kind in ("tune", "train") else ""
    return rank, ALGO_ORDER.index(algo) if algo in ALGO_ORDER else len(ALGO_ORDER), stage


def counterpart(stage: str) -> str | None:
    """The plain phase a stage does the work of: train@bench-rf <-> fit rf, etc."""
    kind, _, item = stage.partition("@")
    if kind == "train":
        algo = item.rsplit("-", 1)[-1]
        return f"fit {algo}" if algo in ALGO_ORDER else None
    return COUNTERPART.get(kind)


def _gb(value: float | None) -> float | None:
    return None if value is None else value / 1e9


def compare(
    stats: dict[str, dict[str, float]],
    pipeline_wall: float,
    pipeline_peak: int,
    plain: dict[str, Any],
    plain_wall: float,
) -> list[Row]:
    """One row per stage (pipeline order) with its plain counterpart, an ``overhead`` row
    (pipeline: dvc's own time outside the stage processes; plain: start-up and imports),
    and TOTAL (whole dvc repro against the whole plain process; max peak RSS each side)."""
    phases = plain["phases"]
    rows = []
    for stage in sorted(stats, key=_stage_key):
        entry = stats[stage]
        phase = counterpart(stage)
        rows.append(
            Row(
                stage=stage,
                seconds=entry["seconds"],
                peak_rss_gb=_gb(entry["peak_rss_bytes"]),
                plain=phase,
                plain_seconds=phases[phase]["seconds"] if phase in phases else None,
                plain_peak_rss_gb=_gb(phases[phase]["peak_rss_bytes"]) if phase in phases else None,
            )
        )
    in_stages = sum(entry["seconds"] or 0.0 for entry in stats.values())
    in_phases = sum(phase["seconds"] for phase in phases.values())
    rows.append(
        Row(
            stage="overhead",
            seconds=max(pipeline_wall - in_stages, 0.0),
            peak_rss_gb=None,
            plain="start-up, imports",
            plain_seconds=max(plain_wall - in_phases, 0.0),
        )
    )
    stage_peaks = [entry["peak_rss_bytes"] or 0 for entry in stats.values()]
    rows.append(
        Row(
            stage="TOTAL",
            seconds=pipeline_wall,
            peak_rss_gb=_gb(max([pipeline_peak, *stage_peaks])),
            plain="whole script",
            plain_seconds=plain_wall,
            plain_peak_rss_gb=_gb(plain["peak_rss_bytes"]),
        )
    )
    return rows


HEADER = ("stage", "wall s", "peak RSS GB", "plain phase", "plain s", "plain RSS GB", "ratio")


def _cells(row: Row) -> tuple[str, ...]:
    def num(value: float | None, digits: int) -> str:
        return DASH if value is None else f"{value:.{digits}f}"

    def secs(value: float | None) -> str:  # a sub-second phase is not "0.0"
        return num(value, 2 if value is not None and value < 1 else 1)

    return (
        row.stage,
        secs(row.seconds),
        num(row.peak_rss_gb, 2),
        row.plain or DASH,
        secs(row.plain_seconds),
        num(row.plain_peak_rss_gb, 2),
        ratio(row.seconds, row.plain_seconds),
    )


def text_table(rows: list[Row]) -> str:
    """The table for a terminal: columns aligned, numbers right-aligned."""
    return aligned([HEADER, *(_cells(row) for row in rows)], left={0, 3})


def aligned(cells: Sequence[Sequence[str]], left: set[int]) -> str:
    """Rows of cells (the first the header) as a terminal table: columns aligned, the
    ``left`` columns left-aligned and the rest right-aligned, a rule under the header."""
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = []
    for n, line in enumerate(cells):
        parts = [
            value.ljust(width) if i in left else value.rjust(width)
            for i, (value, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    """The same table as GitHub markdown, TOTAL in bold."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---:", "---:", "---", "---:", "---:", "---:"]) + "|",
    ]
    for row in rows:
        cells = list(_cells(row))
        if row.stage == "TOTAL":
            cells = [f"**{c}**" if c != DASH else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on (and how busy it was when asked)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gb": round(memory / 1e9, 1),
        "cpu": cpu,
        "python": sys.version.split()[0],
    }


def _load(m: dict[str, Any]) -> str:
    """The 1-minute load average around the run. The benchmark's own fits keep up to nproc
    threads busy, so a load of about nproc after the run is its own; above 1 before it, or
    above nproc + 1 after it, other work took cores too."""
    text = f"load average {m['load_before']:.2f} before, {m['load_after']:.2f} after"
    if m["load_before"] > 1 or m["load_after"] > m["nproc"] + 1:
        text += f": other processes shared the {m['nproc']} cores, so times are inflated"
    return text


def describe(summary: dict[str, Any]) -> str:
    """The lines under the table: what the figures include, and on what."""
    m, data = summary["machine"], summary["data"]
    auc = summary["auc"]

    def aucs(side: dict[str, float | None]) -> str:
        return ", ".join(f"{k} {DASH if v is None else f'{v:.4f}'}" for k, v in side.items())

    return "\n".join(
        [
            f"{data['rows']:,} rows x {data['columns']} columns ({data['inputs']} inputs + "
            f"target), {data['csv_mb']:.1f} MB CSV, seed {data['seed']}, engine "
            f"{summary['engine']}; machine: nproc {m['nproc']}, {m['memory_gb']} GB RAM, "
            f"{m['cpu'] or 'cpu unknown'}, python {m['python']}; {_load(m)}.",
            "Pipeline: each stage's wall time from its process start (start-up and imports "
            "included) and its peak RSS; overhead = dvc repro wall minus the stages (dvc's "
            "own start-up, hashing, locking); TOTAL = wall of the whole `dvc repro`, peak = "
            "the largest of any one process of it.",
            "Plain: phases timed inside one process (tools/bench_plain.py); overhead = its "
            "interpreter start-up and imports; TOTAL = wall of that process; plain RSS = its "
            "peak so far after the phase. Both read the CSV from a warm page cache (just "
            "written). Peak RSS is per process, not summed over processes.",
            f"Test ROC AUC, pipeline: {aucs(auc['pipeline'])}; plain: {aucs(auc['plain'])}. "
            f"CV ROC AUC (mean of the folds; both sides cross-validate, as train does), "
            f"pipeline: {aucs(auc['pipeline_cv'])}; plain: {aucs(auc['plain_cv'])}.",
            *(
                [
                    "Dask: a stage's peak RSS is its own process; the workers of its "
                    "LocalCluster are other processes (the largest of them counts in TOTAL)."
                ]
                if summary["engine"] == "dask"
                else []
            ),
        ]
    )


# --- main --------------------------------------------------------------------------------


def bench(
    rows: int,
    engine: str,
    *,
    seed: int = 0,
    keep: bool = False,
    workdir: Path | None = None,
    settings: Sequence[str] = (),
) -> dict[str, Any]:
    """Generate, copy, run both sides; return the summary (table rows included)."""
    load_before = os.getloadavg()[0]
    if load_before > len(os.sched_getaffinity(0)):
        log.warning(
            "the machine is busy (load average %.1f on %d cores): times will be inflated",
            load_before,
            len(os.sched_getaffinity(0)),
        )
    base = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=workdir))
    repo = base / "repo"
    repo.mkdir()
    ok = False
    try:
        files = copy_repository(REPO, repo)
        log.info("copied %d files of %s into %s", files, REPO, repo)
        csv_rel = f"data/external/{DATASET}/{CSV_NAME}"
        start = time.perf_counter()
        frame = generate(rows, seed)
        write_dataset(frame, repo / csv_rel)
        made = time.perf_counter() - start
        shape = frame.shape
        positives = float(frame[TARGET].mean())
        del frame
        csv_mb = (repo / csv_rel).stat().st_size / 1e6
        log.info(
            "generated %s: %d rows x %d columns, %.1f MB, %.1f%% positive, in %.1f s",
            csv_rel, shape[0], shape[1], csv_mb, 100 * positives, made,
        )  # fmt: skip
        write_params(repo / "params.yaml", csv_rel, engine, settings)
        config = plain_config(repo / "params.yaml")
        (base / "plain-config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

        log.info("running dvc repro in %s (engine %s)", repo, engine)
        stats_file = base / "stage-stats.jsonl"
        pipeline_wall, ran = run_pipeline(repo, stats_file)
        pipeline_peak = children_peak_rss()
        stats = read_stats(stats_file)
        unreported = [s for s in ran if s not in stats]
        if unreported:
            log.warning(
                "stages that reported no stats (their time counts as overhead): %s",
                ", ".join(unreported),
            )
        log.info("dvc repro took %.1f s; running the plain script", pipeline_wall)
        plain_wall, plain = run_plain(
            repo / csv_rel, base / "plain-config.json", base / "plain.json", repo
        )
        log.info("plain script took %.1f s", plain_wall)
        table_rows = compare(stats, pipeline_wall, pipeline_peak, plain, plain_wall)
        scores = pipeline_auc(repo)
        ok = True
        return {
            "engine": engine,
            "settings": list(settings),
            "data": {
                "rows": shape[0],
                "columns": shape[1],
                "inputs": shape[1] - 1,
                "seed": seed,
                "positive_share": round(positives, 4),
                "csv_mb": round(csv_mb, 2),
                "generate_seconds": round(made, 2),
                "features": plain.get("features"),
            },
            "machine": machine() | {"load_before": load_before, "load_after": os.getloadavg()[0]},
            "pipeline": {
                "wall_seconds": pipeline_wall,
                "peak_rss_bytes": pipeline_peak,
                "stages": stats,
                "unreported": unreported,
            },
            "plain": {**plain, "wall_seconds": plain_wall},
            "auc": {
                "pipeline": scores["test"],
                "plain": plain["auc"],
                "pipeline_cv": scores["cv"],
                "plain_cv": plain["cv_auc"],
            },
            "table": [
                asdict(row) | {"ratio": ratio(row.seconds, row.plain_seconds)} for row in table_rows
            ],
        }
    finally:
        if keep or not ok:
            log.info("kept the benchmark copy: %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows (default %(default)s)")
    parser.add_argument("--engine", choices=("pandas", "dask"), default="pandas")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default %(default)s)")
    parser.add_argument("--json", type=Path, help="write the numbers here as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table here as markdown")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--workdir", type=Path, help="where to make the temporary copy")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param of the copy for both sides, e.g. train.rf.n_estimators=50",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.rows < MIN_ROWS:
        parser.error(f"--rows must be at least {MIN_ROWS}")
    if args.workdir is not None and not args.workdir.is_dir():
        parser.error(f"--workdir {args.workdir} is not a directory: create it or pick another")
    try:
        summary = bench(
            args.rows,
            args.engine,
            seed=args.seed,
            keep=args.keep,
            workdir=args.workdir,
            settings=args.settings,
        )
    except BenchError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full or read-only disk under --workdir, most likely
        message = disk_error(exc, args.workdir or Path(tempfile.gettempdir()))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    rows = [Row(**{k: v for k, v in r.items() if k != "ratio"}) for r in summary["table"]]
    notes = describe(summary)
    print(text_table(rows))
    print()
    print(notes)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown_table(rows) + "\n\n" + notes + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
