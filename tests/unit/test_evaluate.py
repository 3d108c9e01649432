"""evaluate: test metrics, plot data and the leaderboard ranking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stages import evaluate, ingest, split, train
from stages import featurize as featurize_stage
from stages.evaluate import curves, evaluate_model, leaderboard, loss_curve
from tabml.errors import DataError, SchemaError
from tabml.files import read_csv, read_json
from tabml.layout import Layout
from tabml.metrics import METRICS, score
from tabml.model import Model
from tabml.params import EvaluateParams
from tests.naming import FIGURE_NAME_RE
from tests.unit.conftest import SNAPSHOT, cli, revalidated

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
        params = revalidated(PARAMS, calibration_bins=bins)
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
    history = {"train": [0.6, 0.5, 0.4], "valid": [0.65, 0.55, 0.56]}
    with_history = Model(
        tiny_model.pipeline, tiny_model.card.model_copy(update={"history": history})
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


def test_evaluate_model_scores_what_the_model_predicts(tiny_model, frame):
    metrics, plots = evaluate_model(tiny_model, frame, PARAMS)

    y = (frame["y"] == "yes").astype(int).to_numpy()
    proba = tiny_model.predict_proba(frame, strict_categories=False)[:, 1]
    assert metrics == {**score(y, proba, PARAMS.threshold), "n_test": len(frame)}
    assert len(plots["confusion"]) == len(frame)


def test_evaluate_model_names_a_bad_test_value(tiny_model, frame):
    test = frame.astype({"income": object})
    test.loc[3, "income"] = "\uff16\uff14"

    with pytest.raises(SchemaError) as info:
        evaluate_model(tiny_model, test, PARAMS)

    assert str(info.value) == "column 'income', row 3: '\uff16\uff14' is not a number"


def test_evaluate_model_blank_values_are_missing(tiny_model, frame):
    test = frame.astype({"income": object, "color": object})
    test.loc[[0, 1], "income"] = ["", "   "]
    test.loc[2, "color"] = " "

    metrics, _ = evaluate_model(tiny_model, test, PARAMS)

    assert metrics["n_test"] == len(frame)


def test_evaluate_model_int_labels_compare_as_text(tiny_model, frame):
    card = tiny_model.card.model_copy(update={"positive_class": "1", "classes": ("0", "1")})
    model = Model(tiny_model.pipeline, card)
    test = frame.assign(y=(frame["y"] == "yes").astype(float))  # 1.0/0.0, as read beside a blank

    metrics, plots = evaluate_model(model, test, PARAMS)

    assert metrics["roc_auc"] > 0.9
    assert set(plots["confusion"]["actual"]) == {"0", "1"}


def test_loss_curve_one_row_per_round():
    frame = loss_curve({"train": [0.5, 0.4], "valid": [0.6, 0.55]})

    assert frame.columns.tolist() == ["step", "train_logloss", "valid_logloss"]
    assert frame["step"].tolist() == [0, 1]


def test_main_refuses_a_model_whose_card_no_longer_matches(trained, capsys):
    layout = Layout(trained)
    assert evaluate.main(cli(trained)) == 0
    before = read_json(layout.leaderboard("tiny"))
    card = json.loads(layout.card("lr", "tiny", 1).read_text(encoding="utf-8"))
    card["check"]["proba"][0] = 1.0 - card["check"]["proba"][0]
    layout.card("lr", "tiny", 1).write_text(json.dumps(card), encoding="utf-8")

    code = evaluate.main(cli(trained))

    err = capsys.readouterr().err
    assert code == 2
    assert "error: lr_tiny_v1 no longer gives the probabilities recorded in its card" in err
    assert "Traceback" not in err
    assert read_json(layout.leaderboard("tiny")) == before


def test_main_refuses_a_damaged_model_file_in_one_line(trained, capsys):
    path = Layout(trained).model("lr", "tiny", 1)
    path.write_bytes(path.read_bytes()[:100])

    code = evaluate.main(cli(trained))

    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("error:")] != []
    assert str(path) in err


def test_main_ranks_every_model_of_a_dataset(trained):
    assert evaluate.main(cli(trained)) == 0  # the shared project trained lr and rf

    board = read_json(Layout(trained).leaderboard("tiny"))
    assert sorted(board["ranking"]) == ["lr", "rf"]
    assert board["models"] == {"lr": "lr_tiny_v1", "rf": "rf_tiny_v1"}
