"""The naming conventions users rely on, checked file by file (tests/naming.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.naming import naming_violations

ROOT = Path(__file__).resolve().parents[2]

GOOD = [
    "data/raw/credit_raw_20251130.csv",
    "data/interim/credit-train_interim_20251130.csv",
    "data/processed/credit/credit-test_processed_20251130.csv",
    "data/processed/credit/credit-transformer_processed_20251130.pkl",
    "data/processed/credit/credit-features_processed_20251130.json",
    "data/external/whatever name.csv",  # user sources: not pipeline outputs
    "data/raw/.gitignore",
    "models/xgb_credit_v1.pkl",
    "models/xgb_credit_v1.json",  # the model card beside the model file
    "models/rf_churn_v12.pkl",
    "models/rf_churn_v12.json",
    "plots/figures/roc_credit_20251130.png",
    "plots/data/roc/roc_credit-xgb_20251130.csv",
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
        ("models/xgb_credit.pkl", "<algo>_<dataset>_v<N>.pkl"),
        ("models/xgb_credit_v0.pkl", "<algo>_<dataset>_v<N>.pkl"),
        ("models/XGB_credit_v1.pkl", "<algo>_<dataset>_v<N>.pkl"),
        ("models/xgb_credit_v1.yaml", "<algo>_<dataset>_v<N>.json"),
        ("models/xgb_credit_v0.json", "<algo>_<dataset>_v<N>.json"),
        ("models/xgb_credit.json", "<algo>_<dataset>_v<N>.json"),
        ("data/processed/credit/credit-features_processed_20251130.yaml", "_<YYYYMMDD>.csv"),
        ("data/processed/credit-features_processed_20251130.json", "data/processed/<dataset>/"),
        ("data/interim/credit-features_processed_20251130.json", "phase 'processed'"),
        ("plots/figures/roc_credit.png", "<topic>_<dataset>_<YYYYMMDD>.png"),
        ("plots/figures/roc_credit_20251130.svg", "<topic>_<dataset>_<YYYYMMDD>.png"),
        ("plots/data/roc/pr_credit-xgb_20251130.csv", "plots/data/<topic>/"),
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
    assert checked == 1 + 2 + 4 + 4
