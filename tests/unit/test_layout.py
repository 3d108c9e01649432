"""Paths and names (tabml.layout): every path follows the naming conventions (tests/naming.py),
and model ids parse back into (algo, dataset, version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabml.layout import MODEL_ID_RE, NAME_RE, Layout, is_name, model_id, parse_model_id
from tests.naming import DATA_NAME_RE, FIGURE_NAME_RE, MODEL_NAME_RE

DATE = "20251130"


# --- Layout -----------------------------------------------------------------------------


def test_data_paths_follow_naming_convention():
    layout = Layout(Path("/repo"))

    raw = DATA_NAME_RE.match(layout.raw("credit", DATE).name)
    interim = DATA_NAME_RE.match(layout.interim("credit", "train", DATE).name)
    processed = DATA_NAME_RE.match(layout.processed("credit", "test", DATE).name)
    bundle = DATA_NAME_RE.match(layout.processed("credit", "transformer", DATE, "pkl").name)
    features = DATA_NAME_RE.match(layout.processed("credit", "features", DATE, "json").name)

    assert raw and raw["dataset"] == "credit" and raw["phase"] == "raw" and raw["part"] is None
    assert interim and interim["part"] == "train" and interim["phase"] == "interim"
    assert processed and processed["phase"] == "processed" and processed["ext"] == "csv"
    assert bundle and bundle["part"] == "transformer" and bundle["ext"] == "pkl"
    assert features and features["part"] == "features" and features["ext"] == "json"
    assert raw["date"] == interim["date"] == processed["date"] == features["date"] == DATE


def test_data_files_sit_in_their_phase_directory():
    layout = Layout(Path("/repo"))

    assert layout.raw("credit", DATE).parent == Path("/repo/data/raw")
    assert layout.interim("credit", "test", DATE).parent == layout.interim_dir("credit")
    assert layout.interim_dir("credit") == Path("/repo/data/interim/credit")
    assert layout.interim("credit", "test", DATE, "parquet").suffix == ".parquet"
    assert layout.processed("credit", "train", DATE).parent == layout.processed_dir("credit")
    assert layout.processed_dir("credit") == Path("/repo/data/processed/credit")
    npz = layout.processed("credit", "train", DATE, "npz")
    assert npz == Path(f"/repo/data/processed/credit/credit-train_processed_{DATE}.npz")
    match = DATA_NAME_RE.match(npz.name)
    assert match and match["part"] == "train" and match["ext"] == "npz"


def test_model_path_follows_naming_convention():
    path = Layout(Path("/repo")).model("xgb", "churn", 3)

    match = MODEL_NAME_RE.match(path.name)
    assert path.parent == Path("/repo/models/churn")
    assert path.parent == Layout(Path("/repo")).dataset_models_dir("churn")
    assert match and (match["algo"], match["dataset"], match["version"]) == ("xgb", "churn", "3")
    assert match["ext"] == "pkl"


def test_model_card_sits_beside_the_model_file():
    layout = Layout(Path("/repo"))

    card, model = layout.card("xgb", "churn", 3), layout.model("xgb", "churn", 3)

    assert card == Path("/repo/models/churn/xgb_churn_v3.json")
    assert card.parent == model.parent == layout.dataset_models_dir("churn")
    assert layout.dataset_models_dir("churn").parent == layout.models_dir
    assert card.stem == model.stem == model_id("xgb", "churn", 3)
    match = MODEL_NAME_RE.match(card.name)
    assert match and match["ext"] == "json"


def test_figure_and_plot_data_paths_follow_naming_convention():
    layout = Layout(Path("/repo"))

    figure = FIGURE_NAME_RE.match(layout.figure("roc", "credit", DATE).name)
    data_path = layout.plot_data("calibration", "credit", "rf", DATE)
    data = FIGURE_NAME_RE.match(data_path.name)

    assert figure and figure["topic"] == "roc" and figure["ext"] == "png"
    assert layout.figure("roc", "credit", DATE).parent == Path("/repo/plots/figures/credit")
    assert layout.figures_dir("credit") == Path("/repo/plots/figures/credit")
    assert data and data["topic"] == "calibration" and data["part"] == "rf"
    assert data["ext"] == "csv"
    assert data_path.parent == layout.plot_data_dir("calibration", "credit")
    assert data_path.parent == Path("/repo/plots/data/calibration/credit")


def test_metrics_report_and_lock_paths():
    layout = Layout(Path("/repo"))

    assert layout.test_metrics("credit", "rf") == Path("/repo/metrics/test/credit/credit-rf.json")
    assert layout.test_metrics_dir("credit") == Path("/repo/metrics/test/credit")
    assert layout.leaderboard("credit") == Path("/repo/metrics/leaderboard/credit.json")
    assert layout.train_metrics_dir("credit", "xgb") == Path("/repo/metrics/train/credit-xgb")
    assert layout.report == Path("/repo/plots/report.html")
    assert layout.lock == Path("/repo/dvc.lock")


def test_default_layout_is_relative_to_the_working_directory():
    assert Layout().model("lr", "credit", 1) == Path("models/credit/lr_credit_v1.pkl")
    assert str(Layout().card("lr", "credit", 1)) == "models/credit/lr_credit_v1.json"


@pytest.mark.parametrize(
    "name",
    [
        "Credit_raw_20251130.csv",
        "credit_raw_2025113.csv",
        "credit_final_20251130.csv",
        "credit_raw_20251130.parquet",
        "credit_data_raw_20251130.csv",
        "credit-features_processed_20251130.yaml",
    ],
)
def test_data_name_regex_rejects_off_convention_names(name):
    assert DATA_NAME_RE.match(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "rf_credit_v0.pkl",
        "rf_credit_1.pkl",
        "RF_credit_v1.pkl",
        "rf_credit_v1.yaml",
        "rf_credit_v01.json",
        "rf_credit_v1.pkl.json",
    ],
)
def test_model_name_regex_rejects_off_convention_names(name):
    assert MODEL_NAME_RE.match(name) is None


# --- names and model ids ----------------------------------------------------------------


def test_model_id_and_parse_model_id_round_trip():
    assert model_id("xgb", "credit", 12) == "xgb_credit_v12"
    assert parse_model_id("xgb_credit_v12") == ("xgb", "credit", 12)
    assert parse_model_id(model_id("lr", "churn2", 1)) == ("lr", "churn2", 1)
    match = MODEL_ID_RE.fullmatch("rf_churn_v3")
    assert match and (match["algo"], match["dataset"], match["version"]) == ("rf", "churn", "3")


@pytest.mark.parametrize(
    "text",
    [
        "xgb_credit_v0",
        "xgb_credit_v01",
        "xgb_credit",
        "XGB_credit_v1",
        "xgb_credit_v1.pkl",
        "xgb_credit_v1\n",
        "xgb_cre-dit_v1",
        "../xgb_credit_v1",
        "",
        None,
        1,
        b"xgb_credit_v1",
    ],
)
def test_parse_model_id_refuses_malformed_ids_without_raising(text):
    assert parse_model_id(text) is None


@pytest.mark.parametrize("name", ["credit", "c", "credit2", "a1b2"])
def test_is_name_accepts_lowercase_letters_and_digits(name):
    assert is_name(name)
    assert NAME_RE.fullmatch(name)


@pytest.mark.parametrize(
    "name", ["Credit", "credit_data", "1credit", "credit-data", "", "credit\n", "crédit", None, 7]
)
def test_is_name_refuses_anything_else(name):
    assert not is_name(name)


def test_partitions_follow_the_naming_rule_and_list_in_order(tmp_path):
    layout = Layout(tmp_path)
    parts = [layout.interim_part("credit", "train", i, DATE) for i in (10, 2, 0)]
    parts[0].parent.mkdir(parents=True)
    for path in parts:
        path.write_bytes(b"")
    (parts[0].parent / f"credit-test-00000_interim_{DATE}.parquet").write_bytes(b"")

    listed = layout.interim_parts("credit", "train", DATE)

    assert [p.name for p in listed] == [
        f"credit-train-00000_interim_{DATE}.parquet",
        f"credit-train-00002_interim_{DATE}.parquet",
        f"credit-train-00010_interim_{DATE}.parquet",
    ]
    match = DATA_NAME_RE.match(listed[1].name)
    assert match and (match["part"], match["partition"], match["ext"]) == (
        "train",
        "00002",
        "parquet",
    )
    processed = layout.processed_part("credit", "test", 3, DATE)
    assert (
        processed == layout.processed_dir("credit") / f"credit-test-00003_processed_{DATE}.parquet"
    )
    assert layout.processed_parts("credit", "test", DATE) == []
