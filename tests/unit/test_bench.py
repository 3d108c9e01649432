"""`make bench-scale` without dvc: the synthetic data, the plain script, the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabml.params import load_params
from tools import bench_plain, bench_scale
from tools.bench_scale import (
    DASH,
    HIGH_CARDINALITY,
    LOW_CARDINALITY,
    TARGET,
    compare,
    copy_repository,
    generate,
    markdown_table,
    ratio,
    read_stats,
    text_table,
    write_dataset,
    write_params,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 rows written as the benchmark writes them."""
    path = tmp_path_factory.mktemp("bench") / "bench.csv"
    write_dataset(generate(20_000, seed=0), path)
    return path


def test_same_rows_and_seed_give_the_same_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_dataset(generate(3_000, seed=seed), tmp_path / f"{name}.csv")
    a, b, c = ((tmp_path / f"{n}.csv").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_the_csv_has_the_promised_columns(sample: Path) -> None:
    frame = pd.read_csv(sample)
    assert frame.shape == (20_000, 21)
    assert frame.columns[-1] == TARGET
    inputs = frame.drop(columns=[TARGET])
    numeric = inputs.select_dtypes("number").columns
    text = [c for c in inputs.columns if c not in numeric]
    assert len(numeric) == 11 and len(text) == 9
    assert (inputs[numeric].isna().mean() > 0.005).sum() >= 8  # most numbers have holes
    low = {name: levels for name, levels, *_ in LOW_CARDINALITY}
    for name, levels in low.items():
        assert 3 <= frame[name].nunique() == levels <= 10, name
    for name, *_ in HIGH_CARDINALITY:
        counts = frame[name].value_counts()
        assert len(counts) > 1_000, name  # thousands of levels (not all seen in 20k rows)
        assert counts.iloc[0] > 50 * counts.median(), name  # Zipf-like: a few dominate
    assert {"mer0", "pos0"} <= set(frame["merchant"]) | set(frame["postcode"])
    # The first line is the plain header; no value is quoted.
    head = sample.read_text().split("\n", 2)
    assert head[0] == ",".join(frame.columns)
    assert '"' not in head[1]


def test_the_target_has_signal_from_several_columns(sample: Path) -> None:
    frame = pd.read_csv(sample)
    y = frame[TARGET].to_numpy()
    assert set(np.unique(y)) == {0, 1}
    assert 0.2 <= y.mean() <= 0.3

    def auc(column: str) -> float:
        values = frame[column].fillna(frame[column].median()).to_numpy()
        score = roc_auc_score(y, values)
        return max(score, 1 - score)

    for column, least in (("score_a", 0.6), ("utilization", 0.6), ("tenure_months", 0.55)):
        assert auc(column) > least, column
    assert auc("score_b") < 0.52  # a pure noise column

    def spread(column: str) -> float:
        rate = frame.groupby(column)[TARGET].mean()
        return rate.max() - rate.min()

    assert spread("region") > 0.08 and spread("device") > 0.08  # categories carry signal
    assert spread("channel") < 0.04  # and a noise category does not


def _small_config() -> dict:
    params = load_params(REPO / "params.yaml")
    train = params.train.model_dump()
    train["rf"]["n_estimators"] = 10
    train["xgb"]["n_estimators"] = 10
    return {
        "split": params.split.model_dump(),
        "featurize": params.featurize.model_dump() | {"max_categories": 20},
        "train": train,
    }


def test_the_plain_script_fits_only_the_algorithms_the_pipeline_trains(tmp_path: Path) -> None:
    """With ``--set train.algos=[lr]`` the pipeline trains lr only: so must the baseline, or
    the TOTAL ratio prices one fit against three."""
    csv = tmp_path / "bench.csv"
    write_dataset(generate(1_000, seed=2), csv)
    config = _small_config()
    config["train"]["algos"] = ["lr"]

    result = bench_plain.run(csv, TARGET, "1", config)

    assert list(result["phases"]) == ["read", "split", "preprocess", "fit lr", "score"]
    assert set(result["auc"]) == set(result["cv_auc"]) == {"lr"}


def test_the_plain_script_reports_every_phase(tmp_path: Path) -> None:
    csv = tmp_path / "bench.csv"
    write_dataset(generate(2_000, seed=1), csv)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_small_config()))
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "tools.bench_plain", str(csv)),
            *("--target", TARGET, "--positive-class", "1", "--config", str(config)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # stdout is the JSON only; progress goes to stderr
    assert list(result["phases"]) == list(bench_plain.PHASES)
    for phase in result["phases"].values():
        assert phase["seconds"] > 0
        assert phase["peak_rss_bytes"] > 10**7
    assert (result["rows"], result["columns"]) == (2_000, 21)
    assert set(result["auc"]) == {"rf", "xgb", "lr"}
    assert all(0.6 < auc <= 1.0 for auc in result["auc"].values())
    assert set(result["cv_auc"]) == {"rf", "xgb", "lr"}
    assert all(0.6 < auc <= 1.0 for auc in result["cv_auc"].values())
    assert "fit xgb:" in proc.stderr and "test ROC AUC" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_plain_encoding_is_sparse_and_bounded_by_max_categories() -> None:
    frame = generate(2_000, seed=2).drop(columns=[TARGET])
    numeric = frame.select_dtypes("number").columns.tolist()
    text = [c for c in frame.columns if c not in numeric]
    with_holes = sum(frame[c].isna().any() for c in numeric)
    for most in (100, 6):
        featurize = {"min_category_frequency": 1, "max_categories": most}
        matrix = bench_plain.build_preprocessor(numeric, text, featurize).fit_transform(frame)
        # each text column: at most `most` columns (the rarest levels share "infrequent")
        assert matrix.shape[1] <= len(numeric) + with_holes + most * len(text)
        assert matrix.shape[1] > len(numeric) + with_holes + min(most, 10) // 2 * len(text)
        if most == 100:
            assert matrix.format == "csr"  # the one-hot part stays sparse


def test_ratio() -> None:
    assert ratio(10.0, 4.0) == "2.50\u00d7"
    assert ratio(1.0, 3.0) == "0.33\u00d7"
    assert ratio(None, 4.0) == ratio(4.0, None) == ratio(1.0, 0.0) == DASH


STATS = {
    "report": {"seconds": 1.0, "peak_rss_bytes": 1e8},
    "train@bench-lr": {"seconds": 3.0, "peak_rss_bytes": 3e8},
    "evaluate@bench": {"seconds": 4.0, "peak_rss_bytes": 6e8},
    "ingest@bench": {"seconds": 2.0, "peak_rss_bytes": 2e8},
    "train@bench-rf": {"seconds": 10.0, "peak_rss_bytes": 5e8},
    "check-params": {"seconds": 0.5, "peak_rss_bytes": 1e8},
    "plot@bench": {"seconds": 2.0, "peak_rss_bytes": 2e8},
    "featurize@bench": {"seconds": 5.0, "peak_rss_bytes": 4e8},
    "train@bench-xgb": {"seconds": 6.0, "peak_rss_bytes": 3e8},
    "split@bench": {"seconds": 1.5, "peak_rss_bytes": 2e8},
    "tune@bench-xgb": {"seconds": 0.5, "peak_rss_bytes": 1e8},
    "tune@bench-rf": {"seconds": 0.5, "peak_rss_bytes": 1e8},
}
PLAIN = {
    "phases": {
        "read": {"seconds": 1.0, "peak_rss_bytes": 1e8},
        "split": {"seconds": 0.5, "peak_rss_bytes": 1e8},
        "preprocess": {"seconds": 2.0, "peak_rss_bytes": 2e8},
        "fit rf": {"seconds": 8.0, "peak_rss_bytes": 3e8},
        "fit xgb": {"seconds": 5.0, "peak_rss_bytes": 3e8},
        "fit lr": {"seconds": 1.5, "peak_rss_bytes": 3e8},
        "score": {"seconds": 1.0, "peak_rss_bytes": 3.5e8},
    },
    "peak_rss_bytes": 3.5e8,
}


def test_compare_orders_stages_and_pairs_them_with_plain_phases() -> None:
    rows = compare(STATS, pipeline_wall=45.0, pipeline_peak=int(7e8), plain=PLAIN, plain_wall=21.0)
    assert [r.stage for r in rows] == [
        "check-params",
        "ingest@bench",
        "split@bench",
        "featurize@bench",
        "tune@bench-rf",
        "tune@bench-xgb",
        "train@bench-rf",
        "train@bench-xgb",
        "train@bench-lr",
        "evaluate@bench",
        "plot@bench",
        "report",
        "overhead",
        "TOTAL",
    ]
    pairs = {r.stage: (r.plain, r.plain_seconds) for r in rows}
    assert pairs["check-params"] == pairs["plot@bench"] == pairs["report"] == (None, None)
    assert pairs["tune@bench-rf"] == (None, None)  # tuning off: the plain script has none
    assert pairs["ingest@bench"] == ("read", 1.0)
    assert pairs["split@bench"] == ("split", 0.5)
    assert pairs["featurize@bench"] == ("preprocess", 2.0)
    assert pairs["train@bench-xgb"] == ("fit xgb", 5.0)
    assert pairs["evaluate@bench"] == ("score", 1.0)
    overhead, total = rows[-2], rows[-1]
    assert overhead.seconds == pytest.approx(45.0 - 36.0)  # dvc outside the stages
    assert overhead.plain_seconds == pytest.approx(21.0 - 19.0)  # start-up and imports
    assert (total.seconds, total.plain_seconds) == (45.0, 21.0)
    assert total.peak_rss_gb == pytest.approx(0.7)  # dvc's children peak beats the stages'
    assert total.plain_peak_rss_gb == pytest.approx(0.35)


def test_the_tables_show_every_row_with_its_ratio() -> None:
    rows = compare(STATS, pipeline_wall=45.0, pipeline_peak=0, plain=PLAIN, plain_wall=20.0)
    text = text_table(rows).splitlines()
    assert text[0].split() == [
        "stage", "wall", "s", "peak", "RSS", "GB", "plain", "phase", "plain", "s", "plain",
        "RSS", "GB", "ratio",
    ]  # fmt: skip
    assert set(text[1]) <= {"-", " "}
    assert len(text) == 2 + len(rows)
    by_stage = {line.split()[0]: line for line in text[2:]}
    rf = ["10.0", "0.50", "fit", "rf", "8.0", "0.30", "1.25\u00d7"]
    assert by_stage["train@bench-rf"].split()[1:] == rf
    assert by_stage["report"].split()[1:] == ["1.0", "0.10", DASH, DASH, DASH, DASH]
    # under a second, two decimals: a fast phase is not shown as 0.0
    assert by_stage["check-params"].split()[1] == "0.50"
    assert by_stage["split@bench"].split()[1:6] == ["1.5", "0.20", "split", "0.50", "0.10"]
    total = ["45.0", "0.60", "whole", "script", "20.0", "0.35", "2.25\u00d7"]
    assert by_stage["TOTAL"].split()[1:] == total
    # numbers are right-aligned: every ratio ends in the same column
    assert len({len(line) for line in text[2:] if line.endswith("\u00d7")}) == 1

    md = markdown_table(rows).splitlines()
    assert len(md) == 2 + len(rows)
    header = "| stage | wall s | peak RSS GB | plain phase | plain s | plain RSS GB | ratio |"
    assert md[0] == header
    assert md[1] == "|---|---:|---:|---|---:|---:|---:|"
    assert md[-1] == (
        "| **TOTAL** | **45.0** | **0.60** | **whole script** | **20.0** | **0.35** "
        "| **2.25\u00d7** |"
    )
    assert "| evaluate@bench | 4.0 | 0.60 | score | 1.0 | 0.35 | 4.00\u00d7 |" in md


def test_read_stats_keeps_the_last_line_of_each_stage(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    lines = [
        {"stage": "split@bench", "seconds": 1.0, "peak_rss_bytes": 5},
        {"stage": "ingest@bench", "seconds": 2.0, "peak_rss_bytes": 6},
        {"stage": "split@bench", "seconds": 3.0, "peak_rss_bytes": 7},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert read_stats(path) == {
        "split@bench": {"seconds": 3.0, "peak_rss_bytes": 7},
        "ingest@bench": {"seconds": 2.0, "peak_rss_bytes": 6},
    }
    assert read_stats(tmp_path / "absent.jsonl") == {}


def test_the_copy_has_one_bench_dataset_and_the_rest_of_params(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    write_params(
        path,
        "data/external/bench/bench.csv",
        "dask",
        ["train.rf.n_estimators=7", "evaluate.importance_repeats=1"],
    )
    ours, theirs = load_params(path), load_params(REPO / "params.yaml")
    assert list(ours.datasets) == ["bench"]
    bench = ours.datasets["bench"]
    assert (bench.source, bench.target, bench.positive_class, bench.engine) == (
        "data/external/bench/bench.csv",
        TARGET,
        "1",
        "dask",
    )
    assert ours.train.rf.n_estimators == 7
    assert ours.train.xgb == theirs.train.xgb and ours.train.algos == theirs.train.algos
    assert ours.featurize == theirs.featurize and ours.split == theirs.split
    assert ours.evaluate.importance_repeats == 1
    assert "# Every choice the pipeline makes" in path.read_text()  # comments kept


def test_a_bad_override_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    with pytest.raises(bench_scale.BenchError, match=r"--set 'train': expected KEY=VALUE"):
        write_params(path, "x.csv", "pandas", ["train"])


def test_copy_repository_takes_tracked_and_untracked_files_not_ignored(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "data" / "raw").mkdir(parents=True)
    dest.mkdir()
    env = bench_scale.child_env()
    subprocess.run(["git", "init", "-q"], cwd=src, check=True, env=env)
    (src / ".gitignore").write_text("data/raw/*.csv\n")
    (src / "tracked.py").write_text("x = 1\n")
    (src / "dvc.lock").write_text("schema: '2.0'\n")
    subprocess.run(["git", "add", "-A"], cwd=src, check=True, env=env)
    (src / "untracked.py").write_text("y = 2\n")
    (src / "data" / "raw" / "big.csv").write_text("a\n1\n")
    assert copy_repository(src, dest) == 4  # .gitignore, tracked.py, dvc.lock, untracked.py
    assert (dest / "tracked.py").read_text() == "x = 1\n"
    assert (dest / "untracked.py").exists()
    assert not (dest / "data" / "raw" / "big.csv").exists()
    assert not (dest / "dvc.lock").exists()  # the copy starts its own lock
    log = subprocess.run(
        ["git", "log", "--oneline"], cwd=dest, capture_output=True, text=True, check=True
    )
    assert "bench-scale copy" in log.stdout


def test_too_few_rows_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_scale.main(["--rows", "10"])
    assert exc.value.code == 2
    assert "--rows must be at least 200" in capsys.readouterr().err


def test_a_missing_workdir_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_scale.main(["--rows", "1000", "--workdir", str(tmp_path / "absent")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--workdir {tmp_path / 'absent'} is not a directory" in err
    assert "Traceback" not in err


def test_the_notes_say_what_the_figures_include_and_how_busy_the_machine_was() -> None:
    summary = {
        "engine": "pandas",
        "data": {"rows": 100_000, "columns": 21, "inputs": 20, "csv_mb": 10.04, "seed": 0},
        "machine": {
            "nproc": 2,
            "memory_gb": 25.3,
            "cpu": "AMD EPYC",
            "python": "3.11.7",
            "load_before": 6.44,
            "load_after": 7.66,
        },
        "auc": {
            "pipeline": {"rf": 0.78951, "xgb": 0.807, "lr": None},
            "plain": {"rf": 0.78951, "xgb": 0.807, "lr": 0.8044},
            "pipeline_cv": {"rf": 0.7801, "xgb": 0.8012, "lr": None},
            "plain_cv": {"rf": 0.7801, "xgb": 0.8012, "lr": 0.7996},
        },
    }
    notes = bench_scale.describe(summary)
    assert notes.startswith("100,000 rows x 21 columns (20 inputs + target), 10.0 MB CSV")
    assert "machine: nproc 2, 25.3 GB RAM, AMD EPYC, python 3.11.7" in notes
    assert "load average 6.44 before, 7.66 after: other processes shared the 2 cores" in notes
    assert "dvc's own start-up" in notes and "warm page cache" in notes
    assert f"pipeline: rf 0.7895, xgb 0.8070, lr {DASH}; plain: rf 0.7895" in notes
    assert f"pipeline: rf 0.7801, xgb 0.8012, lr {DASH}; plain: rf 0.7801" in notes
    assert "Dask" not in notes
    machine = {**summary["machine"], "load_before": 0.3, "load_after": 1.5}
    notes = bench_scale.describe({**summary, "engine": "dask", "machine": machine})
    assert "load average 0.30 before, 1.50 after." in notes and "shared" not in notes
    assert "Dask: a stage's peak RSS is its own process" in notes
