"""`make bench-automl` without FLAML or dvc: the missing-package line, the frames FLAML gets,
the paired comparison and the table (the full run is measured by hand: it takes minutes)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tools import bench_automl
from tools.bench_automl import (
    DASH,
    BenchError,
    describe,
    frames,
    keep_datasets,
    markdown_table,
    missing_automl,
    paired_difference,
    table_rows,
    text_table,
    trials_in_log,
    tune_wired,
    verdict,
)

REPO = Path(__file__).resolve().parents[2]


def test_missing_flaml_is_one_line_naming_the_command() -> None:
    only_flaml = missing_automl(lambda name: None if name == "flaml" else object())
    both = missing_automl(lambda name: None)

    assert only_flaml == (
        "flaml not installed (not project dependencies, by design): run `make bench-automl` "
        'or `uv run --no-sync --with "flaml[automl]" python -m tools.bench_automl`'
    )
    assert both is not None and both.startswith("flaml and lightgbm not installed")
    assert missing_automl(lambda name: object()) is None


@pytest.mark.skipif(
    importlib.util.find_spec("flaml") is not None, reason="flaml is installed in this env"
)
def test_without_flaml_the_cli_stops_at_once_with_the_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.bench_automl", "--json", "never.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {missing_automl()}"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (REPO / "never.json").exists()


def test_frames_are_the_card_columns_with_train_levels_and_the_encoded_target(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data" / "interim" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy-train_interim_20250101.csv").write_text(
        "y,colour,size,id\nyes,red,1.5,a\nno,blue,,b\nyes,red,3,c\n"
    )
    (folder / "toy-test_interim_20250101.csv").write_text("y,colour,size,id\nno,green,2,d\n")
    spec = {"target": "y", "positive_class": "yes", "snapshot": "20250101"}
    columns = [{"name": "colour", "kind": "categorical"}, {"name": "size", "kind": "numeric"}]

    X, y, X_test, y_test = frames(tmp_path, "toy", spec, columns)

    assert list(X.columns) == ["colour", "size"]  # the card's inputs only: no id, no target
    assert list(X["colour"].cat.categories) == ["blue", "red"]
    assert X_test["colour"].dtype == X["colour"].dtype
    assert X_test["colour"].isna().all()  # a level the train split never saw
    assert X["size"].dtype == "float64" and math.isnan(X["size"][1])
    assert y.tolist() == [1, 0, 1] and y_test.tolist() == [0]


def test_trials_are_counted_per_learner_from_the_flaml_log(tmp_path: Path) -> None:
    log = tmp_path / "flaml.log"
    records = [{"record_id": i, "learner": name} for i, name in enumerate(["lgbm", "rf", "lgbm"])]
    log.write_text("\n".join(map(json.dumps, [*records, {"curr_best_record_id": 2}])) + "\n")

    assert trials_in_log(log) == {"lgbm": 2, "rf": 1}
    assert trials_in_log(tmp_path / "absent.log") == {}


def test_paired_difference_and_verdict() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 100)
    perfect = y * 0.8 + 0.1
    noise = rng.random(y.size)

    better = paired_difference(y, perfect, noise, resamples=200)
    same = paired_difference(y, noise, noise, resamples=200)

    assert better["low"] > 0 and better["diff"] > 0.3
    assert same == {"diff": 0.0, "low": 0.0, "high": 0.0}
    assert verdict(better["low"], better["high"]) == "beats"
    assert verdict(-0.03, -0.001) == "behind"
    assert verdict(-0.01, 0.02) == "matches (the interval holds 0)"
    assert verdict(math.nan, math.nan).startswith("undecided")


def test_keep_datasets_and_tune_wired(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("datasets:\n  credit: {target: a}  # kept\n  churn: {target: b}\nsplit: {}\n")
    keep_datasets(params, ["credit"])
    assert "churn" not in params.read_text() and "# kept" in params.read_text()
    with pytest.raises(BenchError, match=r"--datasets web: params\.yaml declares credit"):
        keep_datasets(params, ["web"])

    (tmp_path / "dvc.yaml").write_text("stages:\n  train: {cmd: x}\n")
    assert not tune_wired(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages:\n  tune: {cmd: x}\n  train: {cmd: y}\n")
    assert tune_wired(tmp_path)


def _model(cv: float, test: float, train_s: float, tune_s: float | None = None) -> dict:
    tune = {"trials": 30, "seconds": 299.0, "gain": 0.0061, "params": {}} if tune_s else None
    return {"cv_mean": cv, "cv_std": 0.01, "test": test, "train_seconds": train_s,
            "tune_seconds": tune_s, "tune": tune}  # fmt: skip


def _summary(tuned: bool) -> dict[str, Any]:
    off = {
        "ranking": ["xgb", "lr", "rf"],
        "champion": "lr",
        "compared": "lr",
        "models": {
            "xgb": _model(0.8341, 0.8488, 20.0),
            "lr": _model(0.8334, 0.8468, 8.6),
            "rf": _model(0.8295, 0.8474, 6.0),
        },
        "versus_flaml": {"diff": 0.0123, "low": -0.0059, "high": 0.0299, "verdict": "matches"},
    }
    runs: dict[str, Any] = {"off": {"credit": off}}
    if tuned:
        runs["tuned"] = {
            "credit": off
            | {
                "ranking": ["xgb", "lr", "rf"],
                "champion": "xgb",
                "compared": "xgb",
                "models": off["models"] | {"xgb": _model(0.8402, 0.8551, 12.5, 300.5)},
                "versus_flaml": {"diff": 0.02, "low": 0.001, "high": 0.04, "verdict": "beats"},
            }
        }
    return {
        "datasets": ["credit"],
        "settings": {
            "trials": 30 if tuned else None,
            "budget": 60.0,
            "seed": 42,
            "flaml_version": "2.8.0",
            "lightgbm_version": "4.7.0",
        },
        "machine": {
            "nproc": 2,
            "memory_gb": 25.3,
            "cpu": "AMD EPYC",
            "python": "3.11.7",
            "load": {"start": 3.2, "before_flaml": 4.5, "after_flaml": 4.6, "end": 1.0},
            "threads": {"after_flaml": 6},
            "n_jobs": 1,
        },
        "dvc_repro_seconds": {"off": 92.7, "tuned": 640.0} if tuned else {"off": 92.7},
        "test_rows": {"credit": 1114},
        "runs": runs,
        "flaml": {
            "credit": {
                "best_estimator": "lgbm",
                "validation": 0.8414,
                "eval_method": "cv",
                "trials": 67,
                "seconds": 61.2,
                "test": 0.8345,
            }
        },
        "lightgbm": {"credit": {"seconds": 0.31, "test": 0.8388}},
        "tune_note": None if tuned else "Tuning on: SKIPPED, dvc.yaml has no tune stage yet",
    }


def test_the_table_lists_each_run_in_ranking_order_then_flaml_and_lightgbm() -> None:
    rows = table_rows(_summary(tuned=True))

    assert [(r.run, r.model) for r in rows] == [
        ("pipeline, tuning off", "xgb"),
        ("pipeline, tuning off", "lr*"),
        ("pipeline, tuning off", "rf"),
        ("pipeline, tuned (30 trials)", "xgb*"),
        ("pipeline, tuned (30 trials)", "lr"),
        ("pipeline, tuned (30 trials)", "rf"),
        ("FLAML, 60 s budget", "lgbm (best of 67 trials)"),
        ("LightGBM, defaults", "lgbm"),
    ]
    assert rows[3].seconds == 313.0  # tune + train
    text = text_table(rows).splitlines()
    assert text[0].split() == ["dataset", "run", "model", "CV", "ROC", "AUC", "test", "ROC",
                               "AUC", "search+fit", "s"]  # fmt: skip
    assert set(text[1]) == {"-", " "}
    assert text[3].split()[-4:] == ["0.8334", "\u00b1", "0.0100", "0.8468", "8.6"][-4:]
    assert text[8].endswith("0.8414 (cv)        0.8345          61.2")
    assert text[9].split()[-3:] == [DASH, "0.8388", "0.31"]  # sub-second: 2 decimals
    assert len({len(line) for line in text[:2]}) == 1

    markdown = markdown_table(rows).splitlines()
    assert markdown[0] == "| dataset | run | model | CV ROC AUC | test ROC AUC | search+fit s |"
    assert markdown[1] == "|---|---|---|---:|---:|---:|"
    assert markdown[3] == (
        "| **credit** | **pipeline, tuning off** | **lr*** | **0.8334 \u00b1 0.0100** | "
        "**0.8468** | **8.6** |"
    )
    assert markdown[-1] == "| credit | LightGBM, defaults | lgbm | \u2013 | 0.8388 | 0.31 |"


def test_the_notes_give_the_verdicts_the_load_and_a_skipped_tuning() -> None:
    tuned = describe(_summary(tuned=True)).splitlines()
    skipped = describe(_summary(tuned=False))

    assert tuned[:2] == [
        "credit, pipeline, tuning off: champion lr 0.8468 vs FLAML 0.8345 on 1114 test rows: "
        "difference +0.0123, paired bootstrap 95% interval [-0.0059, +0.0299]: matches",
        "credit, pipeline, tuned (30 trials): champion xgb 0.8551 vs FLAML 0.8345 on 1114 test "
        "rows: difference +0.0200, paired bootstrap 95% interval [+0.0010, +0.0400]: beats",
    ]
    assert tuned[2] == (
        "credit, tune stages: CV ROC AUC gain over params.yaml's values: xgb +0.0061 (30 trials, "
        "300.5 s)"
    )
    notes = "\n".join(tuned)
    assert "pipeline, tuning off 92.7 s, pipeline, tuned (30 trials) 640.0 s" in notes
    assert "3.20 at start, 4.50 before FLAML, 4.60 after it, 1.00 at the end" in notes
    assert "6 threads" in notes and "n_jobs 1" in notes
    assert "other processes shared the 2 cores" in notes
    assert "tuned (30 trials)" not in skipped and "tune stages" not in skipped
    assert skipped.endswith("Tuning on: SKIPPED, dvc.yaml has no tune stage yet")


def test_an_idle_machine_gets_no_load_warning() -> None:
    summary = _summary(tuned=False)
    summary["machine"]["load"] = {"start": 0.1, "before_flaml": 1.5, "after_flaml": 2.0, "end": 1}

    assert "other processes" not in bench_automl.load_note(summary["machine"])
    summary["machine"]["load"]["after_flaml"] = 3.5  # above nproc + 1: not ours alone
    assert "other processes shared" in bench_automl.load_note(summary["machine"])
