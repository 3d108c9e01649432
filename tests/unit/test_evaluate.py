"""evaluate: test metrics, plot data and the leaderboard ranking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from stages import evaluate, ingest, split, train
from stages import featurize as featurize_stage
from stages.common import FIGURE_NAME_RE, Layout, read_csv, read_json
from stages.errors import DataError
from stages.evaluate import curves, evaluate_model, leaderboard, score
from stages.params import METRICS, EvaluateParams
from tests.unit.conftest import SNAPSHOT, cli

Y = np.array([0, 0, 0, 1, 1, 1])
PARAMS = EvaluateParams(importance_repeats=2, calibration_bins=3, seed=0)


# --- score ------------------------------------------------------------------------------


def test_score_perfect_predictions():
    metrics = score(Y, np.array([0.0, 0.1, 0.2, 0.8, 0.9, 1.0]), 0.5)

    assert set(metrics) == set(METRICS)
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc"):
        assert metrics[name] == 1.0, name
    assert metrics["pr_auc"] == 1.0
    assert metrics["brier"] == pytest.approx((0.01 + 0.04) * 2 / 6, abs=1e-6)
    assert 0 < metrics["log_loss"] < 0.2
    certain = score(Y, Y.astype(float), 0.5)
    assert (certain["brier"], certain["log_loss"]) == (0.0, 0.0)


def test_score_reversed_predictions_are_worst():
    good = score(Y, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), 0.5)
    bad = score(Y, np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), 0.5)

    assert (bad["accuracy"], bad["roc_auc"], bad["recall"]) == (0.0, 0.0, 0.0)
    assert bad["log_loss"] > good["log_loss"]
    assert bad["brier"] > good["brier"]
    assert bad["brier"] == pytest.approx((0.81 + 0.64 + 0.49) * 2 / 6, abs=1e-6)


def test_score_threshold_moves_labels_not_ranking():
    proba = np.array([0.1, 0.2, 0.6, 0.7, 0.8, 0.9])

    default = score(Y, proba, 0.5)
    strict = score(Y, proba, 0.65)

    assert default["accuracy"] == pytest.approx(5 / 6, abs=1e-6)
    assert default["precision"] == pytest.approx(0.75)
    assert strict["accuracy"] == 1.0
    assert default["roc_auc"] == strict["roc_auc"] == 1.0


def test_score_no_positive_prediction_gives_zero_precision():
    metrics = score(Y, np.full(6, 0.2), 0.5)

    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (0.0, 0.0, 0.0)
    assert metrics["roc_auc"] == 0.5


# --- leaderboard ------------------------------------------------------------------------


SCORES = {
    "rf": {"roc_auc": 0.80, "log_loss": 0.45, "brier": 0.15},
    "xgb": {"roc_auc": 0.90, "log_loss": 0.50, "brier": 0.12},
    "lr": {"roc_auc": 0.70, "log_loss": 0.40, "brier": 0.12},
}
IDS = {algo: f"{algo}_credit_v1" for algo in SCORES}


def test_leaderboard_ranks_higher_is_better_descending():
    board = leaderboard(SCORES, "roc_auc", IDS)

    assert board["ranking"] == ["xgb", "rf", "lr"]
    assert board["higher_is_better"] is True
    assert (board["best_algo"], board["best_model"], board["best_score"]) == (
        "xgb",
        "xgb_credit_v1",
        0.90,
    )
    assert list(board["scores"]) == ["xgb", "rf", "lr"]
    assert board["scores"]["lr"] == 0.70


def test_leaderboard_ranks_log_loss_ascending():
    board = leaderboard(SCORES, "log_loss", IDS)

    assert board["ranking"] == ["lr", "rf", "xgb"]
    assert board["higher_is_better"] is False
    assert board["best_model"] == "lr_credit_v1"


def test_leaderboard_breaks_ties_by_name():
    assert leaderboard(SCORES, "brier", IDS)["ranking"] == ["lr", "xgb", "rf"]
    tied = {algo: {"roc_auc": 0.5} for algo in ("xgb", "lr", "rf")}
    assert leaderboard(tied, "roc_auc", IDS)["ranking"] == ["lr", "rf", "xgb"]


def test_leaderboard_without_models():
    with pytest.raises(DataError, match="no model to rank"):
        leaderboard({}, "roc_auc", {})


# --- curves -----------------------------------------------------------------------------


def test_curves_columns_and_confusion_labels():
    proba = np.array([0.1, 0.6, 0.2, 0.4, 0.8, 0.9])

    plots = curves(Y, proba, ("good", "bad"), PARAMS)

    assert set(plots) == {"roc", "pr", "confusion", "calibration"}
    assert plots["roc"].columns.tolist() == ["fpr", "tpr", "threshold"]
    assert plots["pr"].columns.tolist() == ["recall", "precision"]
    assert plots["calibration"].columns.tolist() == ["mean_predicted", "fraction_positive"]
    assert plots["confusion"].to_dict("list") == {
        "actual": ["good", "good", "good", "bad", "bad", "bad"],
        "predicted": ["good", "bad", "good", "good", "bad", "bad"],
    }


def test_roc_curve_bounded_and_monotone():
    roc = curves(Y, np.array([0.1, 0.6, 0.2, 0.4, 0.8, 0.9]), ("no", "yes"), PARAMS)["roc"]

    assert roc["threshold"].max() <= 1.0  # sklearn's leading inf threshold is capped
    assert (roc[["fpr", "tpr"]].iloc[[0, -1]].to_numpy() == [[0, 0], [1, 1]]).all()
    assert roc["fpr"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing


def test_calibration_respects_bin_count():
    proba = np.linspace(0.05, 0.95, 6)
    for bins in (2, 3):
        params = dataclasses.replace(PARAMS, calibration_bins=bins)
        assert len(curves(Y, proba, ("no", "yes"), params)["calibration"]) <= bins


# --- evaluate_model ---------------------------------------------------------------------


def test_evaluate_model_end_to_end(tiny_model, frame):
    metrics, plots = evaluate_model(tiny_model, frame, PARAMS)

    assert set(metrics) == {*METRICS, "n_test"}
    assert metrics["n_test"] == len(frame)
    assert metrics["roc_auc"] > 0.9 and metrics["accuracy"] > 0.9
    assert set(plots) == {"roc", "pr", "confusion", "calibration", "importance"}
    assert set(plots["confusion"]["actual"]) == {"no", "yes"}
    importance = plots["importance"]
    assert importance.columns.tolist() == ["feature", "importance", "std"]
    assert sorted(importance["feature"]) == ["age", "color", "income"]
    strongest = importance.loc[importance["importance"].idxmax(), "feature"]
    assert strongest in {"income", "color"}  # the columns y was generated from


def test_evaluate_model_writes_loss_curve_only_for_models_with_history(tiny_model, frame):
    with_history = dataclasses.replace(
        tiny_model, history={"train": [0.6, 0.5, 0.4], "valid": [0.65, 0.55, 0.56]}
    )

    _, plots = evaluate_model(with_history, frame, PARAMS)

    assert plots["loss"].to_dict("list") == {
        "step": [0, 1, 2],
        "train_logloss": [0.6, 0.5, 0.4],
        "valid_logloss": [0.65, 0.55, 0.56],
    }
    assert "loss" not in evaluate_model(tiny_model, frame, PARAMS)[1]


def test_evaluate_model_accepts_unseen_category_and_extra_columns(tiny_model, frame):
    test = frame.assign(color=frame["color"].replace("green", "purple"), extra=1)

    metrics, plots = evaluate_model(tiny_model, test, PARAMS)

    assert metrics["n_test"] == len(frame)
    assert "extra" not in set(plots["importance"]["feature"])


def test_evaluate_model_missing_target(tiny_model, frame):
    with pytest.raises(DataError) as info:
        evaluate_model(tiny_model, frame.drop(columns="y"), PARAMS)

    assert "test data of 'tiny' has no target column 'y'" in str(info.value)


def test_evaluate_model_missing_input_column(tiny_model, frame):
    with pytest.raises(DataError, match="missing column 'income'"):
        evaluate_model(tiny_model, frame.drop(columns="income"), PARAMS)


def test_main_writes_metrics_leaderboard_and_plot_data(project):
    argv = cli(project, dataset="tiny")
    for stage in (ingest, split, featurize_stage):
        assert stage.main(argv) == 0
    assert train.main([*argv, "--algo", "lr"]) == 0

    code = evaluate.main(cli(project))

    layout = Layout(project)
    assert code == 0
    metrics = read_json(layout.test_metrics("tiny", "lr"))
    assert metrics["n_test"] == 10 and set(METRICS) <= set(metrics)
    board = read_json(layout.leaderboard("tiny"))
    assert (board["metric"], board["ranking"], board["best_model"]) == (
        "roc_auc",
        ["lr"],
        "lr_tiny_v1",
    )
    for topic in evaluate.PLOT_TOPICS:
        path = layout.plot_data(topic, "tiny", "lr", SNAPSHOT)
        assert FIGURE_NAME_RE.match(path.name)
        assert isinstance(read_csv(path), pd.DataFrame)
    assert len(read_csv(layout.plot_data("confusion", "tiny", "lr", SNAPSHOT))) == 10
    # lr trains in one go: no per-round loss curve
    assert not layout.plot_data(evaluate.LOSS_TOPIC, "tiny", "lr", SNAPSHOT).exists()
