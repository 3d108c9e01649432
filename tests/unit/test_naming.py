"""The naming conventions users rely on, checked file by file (tests/naming.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.naming import naming_violations

ROOT = Path(__file__).resolve().parents[2]

GOOD = [
    "data/raw/credit_raw_20251130.csv",
    "data/interim/credit/credit-train_interim_20251130.csv",
    "data/processed/credit/credit-test_processed_20251130.npz",
    "data/processed/credit/credit-transformer_processed_20251130.pkl",
    "data/processed/credit/credit-features_processed_20251130.json",
    # partitions of the Dask engine: <dataset>-<part>-<NNNNN>_<phase>_<date>.parquet
    "data/interim/big/big-train-00000_interim_20251130.parquet",
    "data/interim/big/big-test-00012_interim_20251130.parquet",
    "data/processed/big/big-train-00003_processed_20251130.parquet",
    "data/external/whatever name.csv",  # user sources: not pipeline outputs
    "data/raw/.gitignore",
    "models/credit/xgb_credit_v1.pkl",
    "models/credit/xgb_credit_v1.json",  # the model card beside the model file
    "models/credit/xgb_credit_v1.oof.csv",  # its out-of-fold predictions
    "models/churn/rf_churn_v12.pkl",
    "models/churn/rf_churn_v12.json",
    "plots/figures/credit/roc_credit_20251130.png",
    "plots/data/roc/credit/roc_credit-xgb_20251130.csv",
    "plots/report.html",
    "notebooks/01_eda_jdoe.ipynb",
]


def make(root: Path, files: list[str]) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    return root


def test_conforming_tree_passes(tmp_path: Path) -> None:
    checked, problems = naming_violations(make(tmp_path, GOOD))
    assert problems == []
    assert checked == len(GOOD) - 2  # data/external and .gitignore are not outputs


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("data/raw/credit_20251130.csv", "<dataset>[-<part>]_<phase>_<YYYYMMDD>.csv"),
        ("data/raw/credit_raw_2025-11-30.csv", "<YYYYMMDD>"),
        ("data/raw/credit_interim_20251130.csv", "phase 'interim' in the name"),
        ("data/processed/credit-test_processed_20251130.csv", "data/processed/<dataset>/"),
        ("data/processed/churn/credit-test_processed_20251130.csv", "data/processed/<dataset>/"),
        ("data/interim/credit-train_interim_20251130.csv", "data/interim/<dataset>/"),
        ("data/interim/churn/credit-train_interim_20251130.csv", "data/interim/<dataset>/"),
        ("data/raw/credit/credit_raw_20251130.csv", "data/raw/<dataset>_raw_<YYYYMMDD>.csv"),
        ("data/raw/credit-train_raw_20251130.csv", "data/raw/<dataset>_raw_<YYYYMMDD>.csv"),
        # a partition number is five digits, after a part name
        ("data/interim/big/big-train-0_interim_20251130.parquet", "is <part>-<NNNNN>"),
        ("data/interim/big/big-train-000001_interim_20251130.parquet", "is <part>-<NNNNN>"),
        ("data/interim/big/big-train-00000_interim_20251130.feather", ".npz, .parquet;"),
        ("models/credit/xgb_credit.pkl", "<algo>_<dataset>_v<N>.pkl"),
        ("models/credit/xgb_credit_v0.pkl", "<algo>_<dataset>_v<N>.pkl"),
        ("models/credit/XGB_credit_v1.pkl", "<algo>_<dataset>_v<N>.pkl"),
        ("models/credit/xgb_credit_v1.yaml", "<algo>_<dataset>_v<N>.json"),
        ("models/credit/xgb_credit_v0.json", "<algo>_<dataset>_v<N>.json"),
        ("models/credit/xgb_credit.json", "<algo>_<dataset>_v<N>.json"),
        ("models/xgb_credit_v1.pkl", "models/<dataset>/"),
        ("models/churn/xgb_credit_v1.pkl", "models/<dataset>/"),
        ("data/processed/credit/credit-features_processed_20251130.yaml", "_<YYYYMMDD>.csv"),
        ("data/processed/credit-features_processed_20251130.json", "data/processed/<dataset>/"),
        ("data/interim/credit/credit-features_processed_20251130.json", "phase 'processed'"),
        ("plots/figures/credit/roc_credit.png", "<topic>_<dataset>_<YYYYMMDD>.png"),
        ("plots/figures/credit/roc_credit_20251130.svg", "<topic>_<dataset>_<YYYYMMDD>.png"),
        ("plots/figures/roc_credit_20251130.png", "plots/figures/<dataset>/"),
        ("plots/figures/churn/roc_credit_20251130.png", "plots/figures/<dataset>/"),
        ("plots/data/roc/credit/pr_credit-xgb_20251130.csv", "plots/data/<topic>/<dataset>/"),
        ("plots/data/roc/churn/roc_credit-xgb_20251130.csv", "plots/data/<topic>/<dataset>/"),
        ("plots/data/roc/roc_credit-xgb_20251130.csv", "not a place for pipeline files"),
        ("plots/stray.txt", "not a place for pipeline files"),
        ("notebooks/eda.ipynb", "<NN>_<topic>_<author>.ipynb"),
    ],
)
def test_each_broken_rule_is_named(tmp_path: Path, rel: str, reason: str) -> None:
    _, problems = naming_violations(make(tmp_path, [rel]))
    assert len(problems) == 1
    assert problems[0].startswith(rel) and reason in problems[0]


def test_this_repository_follows_the_conventions() -> None:
    """Whatever is on disk now: committed plot data, and outputs after `make repro`."""
    _, problems = naming_violations(ROOT)
    assert problems == []


def test_what_the_stages_write_follows_the_conventions(trained_project: Path) -> None:
    """ingest, split, featurize and train, run for real on a tiny project."""
    checked, problems = naming_violations(trained_project)

    assert problems == []
    # raw, 2 interim, 2 processed CSVs + transformer + features, 2 models with their cards
    # and out-of-fold predictions
    assert checked == 1 + 2 + 4 + 6


def test_layout_names_partitions_by_the_rule(tmp_path: Path) -> None:
    """The Dask engine's Parquet partitions: named by Layout, listed in partition order."""
    from tabml.layout import Layout

    layout = Layout(tmp_path)
    names = [
        layout.interim_part("big", "train", 12, "20251130"),
        layout.interim_part("big", "train", 3, "20251130"),
        layout.interim_part("big", "test", 0, "20251130"),
        layout.processed_part("big", "train", 0, "20251130"),
    ]
    assert names[1].name == "big-train-00003_interim_20251130.parquet"
    stray = [layout.interim("big", "train", "20251130"), layout.interim_dir("big") / "x.parquet"]
    for path in [*names, *stray]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    _, problems = naming_violations(tmp_path)
    assert problems == ["data/interim/big/x.parquet: " + problems[0].split(": ", 1)[1]]
    assert layout.interim_parts("big", "train", "20251130") == [names[1], names[0]]
    assert layout.interim_parts("big", "test", "20251130") == [names[2]]
    assert layout.processed_parts("big", "train", "20251130") == [names[3]]
    assert layout.processed_parts("big", "test", "20251130") == []
