"""tools.exp_show: `make exp-show` and `make metrics` fit 120 columns and say what matters.

The fixtures in tests/unit/data/ are what a real ``dvc exp show --json`` (DVC 3.67) printed
for a tiny repo built by :func:`build_exp_repo` (a stage writing leaderboards in the issue-10
format from params.yaml): two datasets (``exp_show_2x3.json``) and five (``exp_show_5x3.json``,
the last one below ``evaluate.min_score``: no champion), the workspace, the baseline, two
experiments run with ``-S train.rf.n_estimators=...`` and one queued. Re-record them with
``.venv/bin/python -m tests.unit.test_exp_show``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO, dvc, git, run
from tools import exp_show

DATA = Path(__file__).parent / "data"
TWO = DATA / "exp_show_2x3.json"
FIVE = DATA / "exp_show_5x3.json"
BOARDS = DATA / "leaderboard"
WIDTH = 120

# The stage of the recorded repo: CV scores are a function of train.rf.n_estimators (n):
# n=100 -> xgb champion 0.831; n=300 (baseline) -> xgb 0.833; n=500 -> rf 0.850; dataset
# number i is 0.03 * i lower; one below evaluate.min_score has no champion.
STAGE = """
import json, math, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
n = p["train"]["rf"]["n_estimators"]
gate = p["evaluate"]["min_score"]
out = pathlib.Path("metrics/leaderboard")
out.mkdir(parents=True, exist_ok=True)
simple = ["lr", "xgb", "rf"]
for i, ds in enumerate(p["datasets"]):
    base = {"rf": 0.80 + n / 10000, "xgb": 0.83 + n / 100000, "lr": 0.82 + n / 200000}
    models = {}
    for a in p["train"]["algos"]:
        mean = round(base[a] - 0.03 * i, 4)
        models[a] = {
            "model_id": f"{a}_{ds}_v1", "cv_mean": mean, "cv_std": 0.012,
            "cv_se": round(0.012 / math.sqrt(5), 6), "test": round(mean - 0.004, 4),
            "test_low": round(mean - 0.03, 4), "test_high": round(mean + 0.02, 4),
            "threshold": 0.5 if a != "lr" else 0.3125,
            "threshold_rule": "fixed: evaluate.threshold", "calibration": "none",
        }
    ranking = sorted(models, key=lambda a: (-models[a]["cv_mean"], simple.index(a)))
    best = models[ranking[0]]
    if best["cv_mean"] < gate:
        champion = None
        reason = (f"gate: the best CV roc_auc, {ranking[0]} {best['cv_mean']:.4f} ± 0.0120, "
                  f"is < evaluate.min_score {gate:g}; no model is promoted")
    else:
        close = [a for a in ranking if best["cv_mean"] - models[a]["cv_mean"] <= best["cv_se"]]
        champion = min(close, key=simple.index)
        reason = (f"best CV roc_auc: {champion} {models[champion]['cv_mean']:.4f} ± 0.0120; "
                  f"passes evaluate.min_score {gate:g}")
    board = {
        "metric": "roc_auc", "higher_is_better": True, "cv_folds": 5,
        "rule": "best CV mean; a simpler model (lr < xgb < rf) within one standard error "
                "of it wins",
        "min_score": gate, "champion": champion,
        "champion_model": models[champion]["model_id"] if champion else None,
        "reason": reason, "ranking": ranking, "models": {a: models[a] for a in ranking},
    }
    (out / f"{ds}.json").write_text(json.dumps(board, indent=2) + "\\n")
"""

DVC_YAML = """\
stages:
  evaluate:
    cmd: python stage.py
    deps: [stage.py]
    params: [datasets, train, evaluate]
    metrics:
      - metrics/leaderboard:
          cache: false
"""


def build_exp_repo(root: Path, datasets: list[str]) -> Path:
    """A git + DVC repo at ``root`` whose one stage writes a leaderboard per dataset,
    reproduced and committed (the baseline: n_estimators 300). No experiments yet."""
    root.mkdir(parents=True, exist_ok=True)
    params = {
        "datasets": datasets,
        "train": {
            "algos": ["rf", "xgb", "lr"],
            "rf": {"n_estimators": 300, "max_depth": 12},
            "xgb": {"learning_rate": 0.05},
            "lr": {"C": 1.0},
        },
        "evaluate": {"metric": "roc_auc", "min_score": 0.76},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "stage.py").write_text(STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    git("init", "-q", "-b", "main", cwd=root)
    git("config", "user.name", "pipeline-test", cwd=root)
    git("config", "user.email", "pipeline-test@example.invalid", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("repro", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "baseline", cwd=root)
    return root


def run_experiments(root: Path, *, queue: bool) -> None:
    for n in (100, 500):
        dvc("exp", "run", "-q", "-S", f"train.rf.n_estimators={n}", cwd=root)
    if queue:
        dvc("exp", "run", "-q", "--queue", "-S", "train.rf.n_estimators=700", cwd=root)


def record(work: Path) -> None:
    """Write the fixtures from real dvc runs in ``work`` (an empty directory)."""
    DATA.mkdir(exist_ok=True)
    for name, datasets in (
        (TWO, ["credit", "churn"]),
        (FIVE, ["credit", "churn", "bank", "adult", "heart"]),
    ):
        root = build_exp_repo(work / name.stem, datasets)
        if name == TWO:
            shutil.rmtree(BOARDS, ignore_errors=True)
            shutil.copytree(root / "metrics" / "leaderboard", BOARDS)
        run_experiments(root, queue=True)
        shown = dvc("exp", "show", "--json", cwd=root).stdout
        name.write_text(json.dumps(json.loads(shown), separators=(",", ":")) + "\n")


def recorded(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())


def show(path: Path, *args: str, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """Run the tool's main on a recorded ``dvc exp show --json``."""
    monkeypatch.setattr(exp_show, "dvc_exp_show", lambda root, all_commits=False: recorded(path))
    code = exp_show.main(list(args))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def lines_of(out: str) -> list[str]:
    lines = out.splitlines()
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, too_wide
    return lines


def exp_names(path: Path) -> dict[int, str]:
    """n_estimators -> experiment name in a recording."""
    names = {}
    for baseline in recorded(path):
        for exp in baseline["experiments"] or []:
            rev = exp["revs"][0]
            names[rev["data"]["params"]["params.yaml"]["data"]["train"]["rf"]["n_estimators"]] = (
                exp["name"]
            )
    return names


def table_rows(lines: list[str], first_header: str = "experiment") -> list[list[str]]:
    """The cells (split on 2+ spaces) of the first table block."""
    import re

    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    end = lines.index("", start)
    return [re.split(r" {2,}", line.strip()) for line in lines[start:end]]


# --- experiments ---------------------------------------------------------------------------


def test_two_datasets_fit_120_and_show_the_changed_param(monkeypatch, capsys) -> None:
    code, out = show(TWO, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    lines = lines_of(out)
    header, *rows = table_rows(lines)
    # The one param that differs, full dotted key; unchanged ones (max_depth) are not shown.
    assert header[:2] == ["experiment", "train.rf.n_estimators"]
    assert "train.rf.max_depth" not in out
    # One metric column per model, no other column.
    models = [f"{d}:{a}" for d in ("churn", "credit") for a in ("rf", "xgb", "lr")]
    assert sorted(header[2:]) == sorted(models)
    assert len(header) == 2 + 6
    names = exp_names(TWO)
    baseline = recorded(TWO)[1]["rev"][:7]
    by_name = {row[0]: row for row in rows}
    assert set(by_name) == {"workspace", baseline, names[100], names[500], names[700]}
    assert by_name[baseline][1] == "300"
    assert by_name[names[100]][1] == "100"
    # credit at n_estimators 500: rf champion 0.850 ± 0.012, marked.
    col = header.index("credit:rf")
    assert by_name[names[500]][col] == "0.850±0.012*"
    assert by_name[names[500]][header.index("credit:xgb")] == "0.835±0.012"
    assert by_name[baseline][header.index("credit:xgb")] == "0.833±0.012*"
    assert by_name[baseline][header.index("churn:xgb")] == "0.803±0.012*"
    # Best first (n=500, then the baseline's 300, then 100); the queued one has no metrics.
    order = [row[0] for row in rows]
    assert order[:2] in (["workspace", names[500]], [names[500], "workspace"])
    assert order[2:] == [baseline, names[100], names[700]]
    assert by_name[names[700]][2:] == ["queued"] + ["-"] * 5
    assert "* champion" in out
    assert "roc_auc (higher is better)" in out


def test_sort_by_one_model(monkeypatch, capsys) -> None:
    code, out = show(TWO, "--sort-by", "credit:lr", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    header, *rows = table_rows(lines_of(out))
    col = header.index("credit:lr")
    values = [float(row[col].split("±")[0]) for row in rows if row[col] != "-"]
    assert values == sorted(values, reverse=True) and len(set(values)) == 3
    assert rows[-1][col] == "-"
    assert "Rows best first by credit:lr" in " ".join(out.split())


def test_lower_is_better_boards_sort_ascending() -> None:
    def row(name: str, mean: float) -> exp_show.Row:
        board = exp_show.board_from(
            {
                "metric": "log_loss",
                "higher_is_better": False,
                "champion": "lr",
                "models": {"lr": {"cv_mean": mean, "cv_std": 0.01}},
            }
        )
        return exp_show.Row(name, {"train.lr.C": name}, {"credit": board})

    rows = [row("a", 0.5), row("b", 0.3), exp_show.Row("c"), row("d", 0.4)]
    assert [r.name for r in exp_show.sort_rows(rows)] == ["b", "d", "a", "c"]
    assert [r.name for r in exp_show.sort_rows(rows, ("credit", "lr"))] == ["b", "d", "a", "c"]
    text = "\n".join(exp_show.render_experiments(rows))
    assert "log_loss (lower is better)" in text


def test_unknown_sort_column_is_one_line_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(exp_show, "dvc_exp_show", lambda root, all_commits=False: recorded(TWO))
    assert exp_show.main(["--sort-by", "credit:svm"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: --sort-by credit:svm: no such model with CV results; have ")
    assert "credit:xgb" in err
    assert exp_show.main(["--sort-by", "credit"]) == 2
    assert "expected <dataset>:<algo>" in capsys.readouterr().err


def test_many_models_wrap_into_blocks_that_repeat_the_names(monkeypatch, capsys) -> None:
    code, out = show(FIVE, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    lines = lines_of(out)
    headers = [line.split() for line in lines if line.startswith("experiment")]
    assert len(headers) >= 2  # 15 metric columns do not fit in one block
    columns = [h for header in headers for h in header[1:]]
    datasets = ("adult", "bank", "churn", "credit", "heart")
    models = sorted(f"{d}:{a}" for d in datasets for a in ("rf", "xgb", "lr"))
    assert sorted(c for c in columns if ":" in c) == models  # each model once
    assert columns[0] == "train.rf.n_estimators"  # the param first, in the first block
    blocks = [table_rows(lines[i:]) for i, line in enumerate(lines) if line.startswith("exp")]
    names = [[row[0] for row in block[1:]] for block in blocks]
    assert all(n == names[0] for n in names)  # same rows, same order in every block
    # heart is below evaluate.min_score: no champion marked, yet its best model is shown.
    heart = [row for block in blocks for row in block if "heart:rf" in row]
    assert heart and "*" not in "".join(heart[0])
    for block in blocks:
        header, *rows = block
        for col, name in enumerate(header):
            if name.startswith("heart:"):
                assert all(not row[col].endswith("*") for row in rows)


def test_long_param_headers_are_abbreviated_with_a_legend() -> None:
    def row(name: str, n: int) -> exp_show.Row:
        params = {
            "train.rf.n_estimators": str(n),
            "train.xgb.n_estimators": str(n * 2),
            "featurize.min_category_frequency": str(n % 7),
            "datasets.credit.snapshot": f"2025{n:04d}",
        }
        models = {a: {"cv_mean": 0.8, "cv_std": 0.01} for a in ("rf", "lr")}
        return exp_show.Row(name, params, {"credit": exp_show.board_from({"models": models})})

    lines = exp_show.render_experiments([row("bushy-pads", 100), row("dowdy-flex", 300)])
    assert all(len(line) <= WIDTH for line in lines)
    assert len([line for line in lines if line.startswith("experiment")]) == 1  # no wrap
    header = lines[0].split()
    assert "rf.n_estimators" in header and "xgb.n_estimators" in header
    assert "snapshot" in header and "min_category_frequency" in header
    text = " ".join(" ".join(lines).split())
    assert "rf.n_estimators = train.rf.n_estimators" in text
    assert "snapshot = datasets.credit.snapshot" in text


def test_abbreviations_are_unique_suffixes() -> None:
    keys = ["train.rf.n_estimators", "train.xgb.n_estimators", "evaluate.seed", "split.seed", "x"]
    assert exp_show.abbreviations(keys) == {
        "train.rf.n_estimators": "rf.n_estimators",
        "train.xgb.n_estimators": "xgb.n_estimators",
        "evaluate.seed": "evaluate.seed",
        "split.seed": "split.seed",
        "x": "x",
    }


def test_no_experiments_is_a_one_line_hint_exit_0(monkeypatch, capsys) -> None:
    without = [dict(record, experiments=None) for record in recorded(TWO)]
    monkeypatch.setattr(exp_show, "dvc_exp_show", lambda root, all_commits=False: without)
    assert exp_show.main([]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    assert out.startswith("no experiments yet: run dvc exp run -S ")
    assert len(out) <= WIDTH + 1


def test_dvc_failure_is_one_line_exit_2(tmp_path, capsys) -> None:
    """Real dvc outside any repository."""
    assert exp_show.main(["--root", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: dvc exp show failed in {tmp_path}: ")
    assert "not inside of a DVC repository" in err


def test_all_commits_reaches_dvc_and_bad_output_is_one_line(monkeypatch, tmp_path) -> None:
    calls = []

    def fake(cmd, **kwargs):
        calls.append((cmd, kwargs["cwd"]))
        return subprocess.CompletedProcess(cmd, 0, stdout="WARNING: not json", stderr="")

    monkeypatch.setattr(exp_show.subprocess, "run", fake)
    with pytest.raises(exp_show.ExpShowError, match=r"^dvc exp show --json printed no JSON"):
        exp_show.dvc_exp_show(tmp_path, all_commits=True)
    assert calls == [
        ([sys.executable, "-m", "dvc", "exp", "show", "--json", "--all-commits"], tmp_path)
    ]


# --- workspace -----------------------------------------------------------------------------


def workspace(root: Path, capsys) -> tuple[int, str, str]:
    code = exp_show.main(["--workspace", "--root", str(root)])
    out, err = capsys.readouterr()
    return code, out, err


def test_workspace_tables(tmp_path, capsys) -> None:
    shutil.copytree(BOARDS, tmp_path / "metrics" / "leaderboard")
    code, out, err = workspace(tmp_path, capsys)
    assert (code, err) == (0, "")
    lines = lines_of(out)
    credit = lines.index(next(line for line in lines if line.startswith("credit: roc_auc")))
    assert "5-fold CV" in lines[credit]
    header, *rows = [line.split(None) for line in lines[credit + 1 : credit + 5]]
    assert " ".join(header) == (
        "algo model CV mean±std test roc_auc test 95% interval threshold champion"
    )
    # Ranking order (baseline, n_estimators 300): xgb 0.833, rf 0.830, lr 0.8215.
    assert [r[0] for r in rows] == ["xgb", "rf", "lr"]
    assert rows[0] == [
        "xgb",
        "xgb_credit_v1",
        "0.833±0.012",
        "0.829",
        "[0.803,",
        "0.853]",
        "0.500",
        "*",
    ]
    assert rows[2][-1] == "0.312"  # lr: its own threshold, no champion marker
    assert lines[credit + 5].startswith("champion: xgb_credit_v1 — best CV roc_auc: xgb 0.8330")
    assert any(line.startswith("rule: best CV mean; a simpler model") for line in lines)
    assert lines.index(next(x for x in lines if x.startswith("churn: "))) < credit  # by name
    footer = " ".join(" ".join(lines[-2:]).split())
    assert "dvc metrics show" in footer and "dvc metrics diff" in footer
    assert "dvc exp show --csv" in footer


def test_workspace_without_champion_and_long_reason_wraps(tmp_path, capsys) -> None:
    board = json.loads((BOARDS / "credit.json").read_text())
    board.update(champion=None, champion_model=None, reason="gate: " + "very long reason " * 12)
    (tmp_path / "metrics" / "leaderboard").mkdir(parents=True)
    (tmp_path / "metrics" / "leaderboard" / "credit.json").write_text(json.dumps(board))
    code, out, _ = workspace(tmp_path, capsys)
    assert code == 0
    lines = lines_of(out)
    assert any(line.startswith("champion: none — gate: very long reason") for line in lines)
    assert "*" not in out


def test_workspace_refuses_an_old_leaderboard(tmp_path, capsys) -> None:
    old = {"best_algo": "xgb", "models": {"xgb": "xgb_credit_v1"}, "scores": {"xgb": 0.84}}
    (tmp_path / "metrics" / "leaderboard").mkdir(parents=True)
    (tmp_path / "metrics" / "leaderboard" / "credit.json").write_text(json.dumps(old))
    code, out, err = workspace(tmp_path, capsys)
    assert (code, out) == (2, "")
    assert err == (
        "error: metrics/leaderboard/credit.json has no models.<algo>.cv_mean (an older "
        "evaluate wrote it): rerun make repro\n"
    )
    (tmp_path / "metrics" / "leaderboard" / "credit.json").write_text("{")
    code, out, err = workspace(tmp_path, capsys)
    assert code == 2
    assert err == "error: metrics/leaderboard/credit.json is not JSON (line 1): rerun make repro\n"


def test_workspace_without_leaderboards(tmp_path, capsys) -> None:
    code, out, err = workspace(tmp_path, capsys)
    assert (code, err) == (0, "")
    assert out == "no leaderboard yet (metrics/leaderboard/*.json): run make repro\n"


# --- end to end ----------------------------------------------------------------------------


def tool(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run(
        [sys.executable, "-m", "tools.exp_show", "--root", str(root), *args], REPO, check=False
    )


@pytest.mark.pipeline
def test_real_dvc_exp_show_end_to_end(tmp_path) -> None:
    root = build_exp_repo(tmp_path / "repo", ["credit", "churn"])
    run_experiments(root, queue=False)
    proc = tool(root)
    assert (proc.returncode, proc.stderr) == (0, "")
    lines = lines_of(proc.stdout)
    header, *rows = table_rows(lines)
    assert header[1] == "train.rf.n_estimators" and len(header) == 8
    assert [row[1] for row in rows] in (["500", "500", "300", "100"],)
    assert rows[0][header.index("credit:rf")] == "0.850±0.012*"
    proc = tool(root, "--workspace")
    assert proc.returncode == 0
    champion = "champion: rf_credit_v1 — best CV roc_auc: rf 0.8500 ± 0.0120; passes"
    assert any(line.startswith(champion) for line in lines_of(proc.stdout))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        record(Path(work))
