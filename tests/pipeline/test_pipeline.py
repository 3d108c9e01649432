"""End to end: real `dvc repro`, `dvc exp run`, `dvc metrics diff` in a temporary repo copy."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.artifact import read_model
from tabml.layout import Layout, parse_model_id
from tabml.model import single_threaded
from tabml.params import load_params
from tests.helpers import capture, copy_repo, dvc, git, ran_stages, standalone_predictions
from tests.naming import naming_violations

pytestmark = pytest.mark.pipeline

FIGURE_TOPICS = (
    "balance",
    "distributions",
    "categorical",
    "missing",
    "correlations",
    "roc",
    "pr",
    "calibration",
    "confusion",
    "metrics",
    "importance",
    "loss",
)


def test_repro_runs_every_stage_and_writes_every_output(small_repo: Path) -> None:
    log = (small_repo.parent / f"{small_repo.name}-repro.log").read_text()
    stages = {line.split()[0] for line in dvc("stage", "list", cwd=small_repo).stdout.splitlines()}
    assert ran_stages(log) == stages
    # check-params, 5 per-dataset phases (ingest, split, featurize, evaluate, plot), 6 tunes
    # (off: each writes {}), 6 trains, report
    assert len(stages) == 1 + 5 * 2 + 6 + 6 + 1

    params, layout = load_params(small_repo / "params.yaml"), Layout(small_repo)
    for name, spec in params.datasets.items():
        assert layout.raw(name, spec.snapshot).is_file()
        for part in ("train", "test"):
            assert layout.interim(name, part, spec.snapshot).is_file()
            assert layout.processed(name, part, spec.snapshot, "npz").is_file()
        for algo in ("rf", "xgb", "lr"):
            assert layout.model(algo, name, 1).is_file()
            assert layout.card(algo, name, 1).is_file()
            metrics = json.loads(layout.test_metrics(name, algo).read_text())
            assert 0.6 < metrics["roc_auc"] <= 1.0
            for topic in ("roc", "pr", "confusion", "calibration", "importance"):
                assert layout.plot_data(topic, name, algo, spec.snapshot).is_file()
        board = json.loads(layout.leaderboard(name).read_text())
        assert board["champion"] in ("rf", "xgb", "lr") and board["reason"]
        assert sorted(board["ranking"]) == ["lr", "rf", "xgb"]
        for entry in board["models"].values():  # CV mean/std, test metric with its interval
            assert entry["cv_std"] > 0 and entry["test_low"] <= entry["test"] <= entry["test_high"]
        for topic in FIGURE_TOPICS:
            assert layout.figure(topic, name, spec.snapshot).stat().st_size > 5_000
    dvclive_curve = layout.train_metrics_dir("credit", "xgb") / "plots/metrics/valid/logloss.tsv"
    assert len(dvclive_curve.read_text().splitlines()) > 10
    date = params.datasets["credit"].snapshot
    loss = layout.plot_data("loss", "credit", "xgb", date)
    assert loss.read_text().splitlines()[0] == "step,train_logloss,valid_logloss"
    assert not layout.plot_data("loss", "credit", "rf", date).exists()
    assert layout.report.stat().st_size > 50_000


def test_outputs_are_linked_from_the_cache_not_copied(small_repo: Path) -> None:
    """.dvc/config sets cache.type reflink,hardlink,copy: on this file system (no reflinks)
    a cached output is the cache file itself, not a second full copy."""
    lock = yaml.safe_load((small_repo / "dvc.lock").read_text())
    params = load_params(small_repo / "params.yaml")
    raw = Layout(Path()).raw("credit", params.datasets["credit"].snapshot)
    md5 = next(
        out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if out["path"] == str(raw)
    )
    cached = small_repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert (small_repo / raw).stat().st_ino == cached.stat().st_ino


def test_a_change_to_one_dataset_reruns_only_its_own_stages(small_repo: Path) -> None:
    try:
        # a new local file of credit: only credit's ingest (churn has its own folder)
        (small_repo / "data" / "external" / "credit" / "notes.txt").write_text("x\n")
        assert set(json.loads(dvc("status", "--json", cwd=small_repo).stdout)) == {"ingest@credit"}
        # a churn setting: churn's stages and the report over every dataset, no credit stage
        params = yaml.safe_load((small_repo / "params.yaml").read_text())
        params["datasets"]["churn"]["drop_columns"] = ["tenure"]
        (small_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        changed = set(json.loads(dvc("status", "--json", cwd=small_repo).stdout))
        assert not {s for s in changed if "credit" in s} - {"ingest@credit"}
        assert {"ingest@churn", "evaluate@churn", "plot@churn", "report"} <= changed
    finally:
        (small_repo / "data" / "external" / "credit" / "notes.txt").unlink(missing_ok=True)
        git("checkout", "--", "params.yaml", cwd=small_repo)


def test_status_clean_and_noop_repro(small_repo: Path) -> None:
    assert "up to date" in dvc("status", cwd=small_repo).stdout
    assert ran_stages(dvc("repro", cwd=small_repo).stdout) == set()
    assert git("status", "--porcelain", cwd=small_repo).stdout == ""


def test_every_output_follows_the_naming_conventions(small_repo: Path) -> None:
    checked, problems = naming_violations(small_repo)
    assert problems == []
    # per dataset 7 data files (raw, 2 interim, 2 processed, transformer, feature spec);
    # 6 models with their cards and out-of-fold predictions; 5 plot data files per model and
    # 2 xgb loss curves; the figures; the report; the example notebook
    assert checked == 2 * 7 + 6 * 3 + 6 * 5 + 2 + 2 * len(FIGURE_TOPICS) + 1 + 1


def test_dvc_plots_and_metrics_commands_work(small_repo: Path) -> None:
    shown = dvc("metrics", "show", "--json", cwd=small_repo).stdout
    assert "credit-rf.json" in shown and "leaderboard" in shown
    out = small_repo.parent / "dvc_plots"
    proc = dvc("plots", "show", "-o", str(out), cwd=small_repo)
    assert "WARNING" not in proc.stdout + proc.stderr  # every plot definition matches its data
    page = (out / "index.html").read_text()
    for topic in ("roc", "pr", "confusion", "calibration", "importance", "loss"):
        assert f"plots/data/{topic}/" in page


def test_exp_run_reruns_only_what_depends_on_the_changed_key(small_repo: Path) -> None:
    proc = dvc("exp", "run", "-S", "train.rf.n_estimators=25", cwd=small_repo)
    assert ran_stages(proc.stdout) == {
        "check-params",
        "tune@credit-rf",  # reads train.rf: off, it writes {} again and train sees no change
        "tune@churn-rf",
        "train@credit-rf",
        "train@churn-rf",
        "evaluate@credit",
        "evaluate@churn",
        "plot@credit",
        "plot@churn",
        "report",
    }
    diff = json.loads(dvc("metrics", "diff", "--json", cwd=small_repo).stdout)
    changed = {Path(path).name for path, values in diff.items() if values}
    assert {"credit-rf.json", "churn-rf.json"} <= changed
    assert not changed & {"credit-xgb.json", "churn-xgb.json", "credit-lr.json", "churn-lr.json"}
    assert "roc_auc" in diff["metrics/test/credit/credit-rf.json"]
    exps = dvc("exp", "show", "--json", cwd=small_repo).stdout
    assert "train.rf.n_estimators" in exps or "n_estimators" in exps
    assert_exp_show_is_readable(small_repo)
    git("checkout", "--", ".", cwd=small_repo)
    dvc("checkout", "--force", cwd=small_repo)


def assert_exp_show_is_readable(repo: Path) -> None:
    """`make exp-show`'s script after an experiment: at most 120 characters a line, the changed
    param and one CV column per model, rows best first (by the champions' mean CV score)."""
    proc = capture([sys.executable, "-m", "tools.exp_show"], cwd=repo)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 120, proc.stdout
    assert "train.rf.n_estimators" in proc.stdout, proc.stdout
    models = [f"{ds}:{algo}" for ds in ("credit", "churn") for algo in ("rf", "xgb", "lr")]
    assert all(model in proc.stdout for model in models), proc.stdout
    champions = champion_scores(lines)
    assert len(champions) >= 2, proc.stdout  # the workspace or baseline, and the experiment
    assert all(len(found) == 2 for found in champions.values()), proc.stdout  # one per dataset
    scores = [float(np.mean(found)) for found in champions.values()]
    assert scores == sorted(scores, reverse=True), proc.stdout


def champion_scores(lines: list[str]) -> dict[str, list[float]]:
    """Each experiment row's champion cells (``0.834±0.019*``), in row order, gathered over
    the table's blocks (a blank line and the header again start a block; the legend ends it)."""
    out: dict[str, list[float]] = {}
    header_next = True
    for line in lines:
        if not line:
            header_next = True
        elif header_next:
            if not line.startswith("experiment"):
                break  # the legend
            header_next = False
        else:
            name, *cells = line.split()
            found = out.setdefault(name, [])
            found += [float(c.split("±")[0]) for c in cells if "±" in c and c.endswith("*")]
    return out


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        # DVC itself refuses -S of a key the file lacks; `+key=` adds it, and then we refuse.
        ("train.rf.n_estimatorz=50", "n_estimatorz"),
        ("+train.rf.n_estimatorz=50", "unknown key 'n_estimatorz'"),
        ("+trian.rf.n_estimators=50", "unknown key 'trian'"),
        ("split.test_size=1.5", "split.test_size = 1.5: out of range"),
        ("train.algos=[rf,svm]", "unknown algorithm 'svm' (allowed: rf, xgb, lr)"),
    ],
)
def test_bad_set_param_stops_the_experiment_naming_the_key(
    small_repo: Path, setting: str, message: str
) -> None:
    proc = dvc("exp", "run", "-S", setting, cwd=small_repo, check=False)
    try:
        assert proc.returncode != 0
        assert message in proc.stdout + proc.stderr
        if not setting.startswith("train.rf.n_estimatorz"):  # refused by DVC, not check-params
            # the bad value stays in params.yaml, and check-params says how to revert it
            assert git("status", "--porcelain", cwd=small_repo).stdout.strip() == "M params.yaml"
            assert "`git checkout params.yaml` reverts it" in proc.stdout + proc.stderr
    finally:
        git("checkout", "--", ".", cwd=small_repo)
        git("clean", "-fdq", "--", "data", "models", "metrics", "plots", cwd=small_repo)
        dvc("checkout", "--force", cwd=small_repo)


def test_queued_grid_runs_and_is_compared(small_repo: Path) -> None:
    dvc("exp", "run", "--queue", "-S", "train.lr.C=0.1,10", cwd=small_repo)
    dvc("queue", "start", "-j", "1", cwd=small_repo)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = dvc("queue", "status", cwd=small_repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    dvc("queue", "stop", "--kill", cwd=small_repo, check=False)
    assert status.count("Success") == 2, status
    shown = json.loads(dvc("exp", "show", "--json", cwd=small_repo).stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    cs = set()
    for exp in exps:
        for rev in exp.get("revs", []):
            params = rev["data"]["params"]["params.yaml"]["data"]
            cs.add(params["train"]["lr"]["C"])
            metrics = rev["data"]["metrics"]["metrics/test/credit/credit-lr.json"]
            assert metrics["data"]["roc_auc"] > 0.6
    assert {0.1, 10} <= cs


def test_fresh_clone_repro_reproduces_the_committed_lock(tmp_path: Path) -> None:
    """Acceptance: on a fresh copy with the real params, `dvc repro` matches dvc.lock exactly."""
    repo = copy_repo(tmp_path)
    committed = yaml.safe_load((repo / "dvc.lock").read_text())
    assert committed["stages"], "dvc.lock is committed"
    dvc("repro", cwd=repo)
    changed = git("status", "--porcelain", cwd=repo).stdout
    # A stale dvc.lock (code or params changed, `dvc repro` not rerun and committed) shows here.
    assert changed == "", changed + git("diff", "--stat", cwd=repo).stdout[-3000:]
    assert "up to date" in dvc("status", cwd=repo).stdout
    assert_models_stand_alone(repo, tmp_path / "empty")


def assert_models_stand_alone(repo: Path, empty: Path) -> None:
    """Every model file loads with joblib where no module of this repository is importable,
    and gives what the project's own loader gives; each has its JSON card."""
    empty.mkdir()
    layout, params = Layout(repo), load_params(repo / "params.yaml")
    models = sorted(layout.models_dir.glob("*/*.pkl"))
    assert len(models) == len(params.datasets) * len(params.train.algos)
    for path in models:
        algo, dataset, version = parse_model_id(path.stem)
        rows = layout.interim(dataset, "test", params.datasets[dataset].snapshot)
        got = standalone_predictions(path, layout.card(algo, dataset, version), rows, empty)
        assert got["type"] == "sklearn.pipeline.Pipeline" and got["ours_loaded"] == []
        model = read_model(layout, algo, dataset, version)
        single_threaded(model.pipeline)
        expected = model.predict_proba(pd.read_csv(rows), strict_categories=False)
        np.testing.assert_array_equal(got["proba"], expected)
