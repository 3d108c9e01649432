"""evaluate: test metrics, plot data and the leaderboard ranking (tabml.evaluation), and
the per-dataset stage (stages/evaluate.py)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from stages import evaluate, ingest, split, train
from stages import featurize as featurize_stage
from tabml import evaluation
from tabml.errors import DataError, SchemaError
from tabml.evaluation import Entry, curves, evaluate_model, leaderboard, loss_curve
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


def _entry(algo: str, cv_mean: float, cv_std: float, test: float, folds: int = 5) -> Entry:
    """A model as the leaderboard sees it: CV summary (roc_auc and log_loss) and test metrics."""
    cv = {
        "folds": folds,
        "seed": 42,
        "rows": 1000,
        "metrics": {
            "roc_auc": {"mean": cv_mean, "std": cv_std, "values": []},
            "log_loss": {"mean": 1 - cv_mean, "std": cv_std, "values": []},
        },
    }
    ci = {"roc_auc": {"low": test - 0.02, "high": test + 0.02}}
    return Entry(f"{algo}_credit_v1", cv, {"roc_auc": test, "ci95": ci}, 0.5, "fixed: 0.5", "none")


def test_leaderboard_ranks_by_cv_and_never_by_test():
    # xgb is best on the test split but worse on CV than rf: it must not be chosen
    entries = {
        "rf": _entry("rf", 0.86, 0.005, test=0.80),
        "xgb": _entry("xgb", 0.82, 0.005, test=0.95),
        "lr": _entry("lr", 0.70, 0.005, test=0.90),
    }
    board = leaderboard(entries, "roc_auc")

    assert board["ranking"] == ["rf", "xgb", "lr"]
    assert (board["champion"], board["champion_model"]) == ("rf", "rf_credit_v1")
    assert board["reason"] == "best CV roc_auc: rf 0.8600 ± 0.0050"
    assert board["higher_is_better"] is True and board["cv_folds"] == 5
    rf = board["models"]["rf"]
    assert (rf["cv_mean"], rf["cv_std"], rf["test"]) == (0.86, 0.005, 0.80)
    assert rf["cv_se"] == pytest.approx(0.005 / 5**0.5, abs=1e-6)
    assert (rf["test_low"], rf["test_high"]) == (pytest.approx(0.78), pytest.approx(0.82))
    assert list(board["models"]) == ["rf", "xgb", "lr"]


def test_one_standard_error_rule_prefers_the_simpler_model():
    # xgb is best by 0.004, within one standard error (0.02 / sqrt 5 = 0.0089): lr is simpler
    entries = {
        "xgb": _entry("xgb", 0.850, 0.02, test=0.85),
        "lr": _entry("lr", 0.846, 0.02, test=0.84),
        "rf": _entry("rf", 0.848, 0.02, test=0.86),
    }
    board = leaderboard(entries, "roc_auc")

    assert board["ranking"] == ["xgb", "rf", "lr"]
    assert board["champion"] == "lr"
    assert "within one standard error (0.0089) of the best CV roc_auc" in board["reason"]
    assert "simpler (lr < xgb < rf)" in board["reason"]
    # lr out of one standard error: the best stays champion (rf is close but not simpler)
    entries["lr"] = _entry("lr", 0.830, 0.02, test=0.84)
    board = leaderboard(entries, "roc_auc")
    assert board["champion"] == "xgb"
    assert board["reason"] == (
        "best CV roc_auc: xgb 0.8500 ± 0.0200 (rf within one standard error, not simpler)"
    )


def test_losses_rank_ascending():
    entries = {"rf": _entry("rf", 0.80, 0.001, 0.8), "lr": _entry("lr", 0.70, 0.001, 0.7)}
    board = leaderboard(entries, "log_loss")  # log_loss mean is 1 - roc_auc mean here

    assert board["higher_is_better"] is False
    assert board["ranking"] == ["rf", "lr"] and board["champion"] == "rf"


def test_the_gate_removes_the_champion_when_min_score_is_missed():
    entries = {"rf": _entry("rf", 0.66, 0.01, 0.9), "lr": _entry("lr", 0.64, 0.01, 0.9)}
    board = leaderboard(entries, "roc_auc", min_score=0.7)

    assert (board["champion"], board["champion_model"]) == (None, None)
    assert board["min_score"] == 0.7
    assert board["reason"] == (
        "gate: the best CV roc_auc, rf 0.6600 ± 0.0100, is < evaluate.min_score 0.7; "
        "no model is promoted"
    )
    assert board["ranking"] == ["rf", "lr"]  # still ranked, for the report
    passed = leaderboard(entries, "roc_auc", min_score=0.65)
    assert passed["champion"] == "rf" and passed["reason"].endswith(
        "passes evaluate.min_score 0.65"
    )
    loss_gate = leaderboard(entries, "log_loss", min_score=0.30)  # losses must be <= the gate
    assert loss_gate["champion"] is None and "is > evaluate.min_score 0.3" in loss_gate["reason"]


def test_a_simpler_model_under_the_gate_is_skipped():
    entries = {"xgb": _entry("xgb", 0.71, 0.05, 0.8), "lr": _entry("lr", 0.69, 0.05, 0.8)}
    board = leaderboard(entries, "roc_auc", min_score=0.7)
    assert board["champion"] == "xgb"  # lr is within one SE but misses the gate


def test_models_without_cv_are_ranked_last_and_never_champion():
    old = Entry("rf_credit_v1", None, {"roc_auc": 0.99}, 0.5, "fixed: 0.5", "none")
    board = leaderboard({"rf": old, "lr": _entry("lr", 0.7, 0.01, 0.7)}, "roc_auc")
    assert board["ranking"] == ["lr", "rf"] and board["champion"] == "lr"
    assert board["models"]["rf"]["cv_mean"] is None
    none = leaderboard({"rf": old}, "roc_auc")
    assert none["champion"] is None
    assert none["reason"] == "no model has cross-validation results: rerun train"


def test_leaderboard_without_models():
    with pytest.raises(DataError, match="no model to rank"):
        leaderboard({}, "roc_auc")


# --- curves -----------------------------------------------------------------------------


def test_curves_columns_and_confusion_counts():
    proba = np.array([0.1, 0.6, 0.2, 0.4, 0.8, 0.9])

    plots = curves(Y, proba, ("good", "bad"), PARAMS, 0.5)

    assert set(plots) == {"roc", "pr", "confusion", "calibration"}
    assert plots["roc"].columns.tolist() == ["fpr", "tpr", "threshold"]
    assert plots["pr"].columns.tolist() == ["recall", "precision"]
    assert plots["calibration"].columns.tolist() == ["mean_predicted", "fraction_positive"]
    # rows (actual, predicted): (good, good) x2, (good, bad), (bad, good), (bad, bad) x2
    assert plots["confusion"].to_dict("list") == {
        "actual": ["good", "good", "bad", "bad"],
        "predicted": ["good", "bad", "good", "bad"],
        "count": [2, 1, 1, 2],
    }


def test_confusion_is_four_counts_at_any_size_zeros_included():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100_000)
    proba = np.where(y == 1, 0.9, 0.1)  # every row right: the off-diagonal cells are 0

    confusion = curves(y, proba, ("no", "yes"), PARAMS, 0.5)["confusion"]

    assert confusion.columns.tolist() == ["actual", "predicted", "count"]
    assert confusion["count"].tolist() == [int((y == 0).sum()), 0, 0, int((y == 1).sum())]
    assert confusion["count"].sum() == len(y)


def test_confusion_frame_from_a_count_matrix():
    # what an engine that counts by partition (Dask) hands over: rows actual, columns predicted
    frame = evaluation.confusion_frame(np.array([[50, 7], [3, 40]]), ("no", "yes"))

    assert frame.to_dict("list") == {
        "actual": ["no", "no", "yes", "yes"],
        "predicted": ["no", "yes", "no", "yes"],
        "count": [50, 7, 3, 40],
    }
    with pytest.raises(ValueError, match="2x2"):
        evaluation.confusion_frame(np.zeros((3, 3)), ("a", "b"))


def test_curve_frames_from_another_engines_arrays():
    # what an engine that computes curves from histograms (Dask) hands over
    frames = evaluation.curve_frames(
        roc=([0.0, 0.5, 1.0], [0.0, 0.9, 1.0], [np.inf, 0.4, 0.1]),
        pr=([1.0, 0.5, 0.0], [0.3, 0.8, 1.0]),
        calibration=([0.2, 0.8], [0.1, 0.9]),
        confusion=[[5, 1], [2, 4]],
        classes=("no", "yes"),
        curve_points=10,
    )

    assert frames["roc"]["threshold"].tolist() == [1.0, 0.4, 0.1]  # sklearn's inf capped
    assert frames["pr"].to_dict("list") == {"recall": [1.0, 0.5, 0.0], "precision": [0.3, 0.8, 1.0]}
    assert frames["calibration"].columns.tolist() == ["mean_predicted", "fraction_positive"]
    assert frames["confusion"]["count"].tolist() == [5, 1, 2, 4]


def test_curves_on_200k_scores_are_bounded_exact_and_keep_their_shape(monkeypatch):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200_000)
    proba = 1 / (1 + np.exp(-(rng.normal(size=len(y)) + 1.2 * y)))  # overlapping classes
    params = revalidated(PARAMS, curve_points=200)

    small = curves(y, proba, ("no", "yes"), params, 0.5)
    with monkeypatch.context() as patch:  # the same curves with nothing dropped
        patch.setattr(evaluation, "downsample", lambda x, y, n: np.arange(len(x)))
        full = curves(y, proba, ("no", "yes"), params, 0.5)

    for topic, (x, h) in {"roc": ("fpr", "tpr"), "pr": ("recall", "precision")}.items():
        kept, whole = small[topic], full[topic]
        assert len(whole) > 5_000, topic  # the curve really was large
        assert 100 < len(kept) <= 200, topic
        # end points kept, and every kept row is a row of the full curve, in order
        ends = [0, -1]
        pd.testing.assert_frame_equal(kept.iloc[ends], whole.iloc[ends].set_axis(kept.index[ends]))
        merged = kept.merge(whole.reset_index(), how="left", on=list(whole.columns))
        assert len(merged) == len(kept) and merged["index"].notna().all(), topic
        assert merged["index"].is_monotonic_increasing, topic
        # the shape: the area under the kept polyline is the full one's within 0.001
        area = abs(np.trapezoid(kept[h], kept[x]))
        assert area == pytest.approx(abs(np.trapezoid(whole[h], whole[x])), abs=1e-3), topic
    assert small["roc"]["fpr"].is_monotonic_increasing
    assert small["roc"]["tpr"].is_monotonic_increasing
    # the PR figure reads the share of positives from the first point (every row positive)
    assert small["pr"].iloc[0].tolist() == [1.0, round(y.mean(), 6)]
    assert small["roc"].iloc[[0, -1]][["fpr", "tpr"]].to_numpy().tolist() == [[0, 0], [1, 1]]


def test_downsample_keeps_end_points_and_the_corner():
    # An L: 1,000 points up the left edge, then 1,000 along the top. 3 points keep it exactly.
    x = np.r_[np.zeros(1000), np.linspace(0, 1, 1001)[1:]]
    y = np.r_[np.linspace(0, 1, 1000), np.ones(1000)]

    assert evaluation.downsample(x, y, 3).tolist() == [0, 999, 1999]
    assert evaluation.downsample(x, y, 50).tolist() == [0, 999, 1999]  # the rest is collinear
    assert evaluation.downsample(x[:40], y[:40], 50).tolist() == list(range(40))  # fits


def test_downsample_with_a_budget_spends_it_where_the_curve_bends():
    t = np.linspace(0, np.pi / 2, 10_001)
    x, y = 1 - np.cos(t), np.sin(t)  # a quarter circle

    kept = evaluation.downsample(x, y, 20)

    assert len(kept) == 20 and kept[0] == 0 and kept[-1] == 10_000
    gaps = np.diff(kept)
    assert gaps.max() < 3 * gaps.min()  # spread along a uniform bend, not bunched


def test_roc_curve_bounded_and_monotone():
    roc = curves(Y, np.array([0.1, 0.6, 0.2, 0.4, 0.8, 0.9]), ("no", "yes"), PARAMS, 0.5)["roc"]

    assert roc["threshold"].max() <= 1.0  # sklearn's leading inf threshold is capped
    assert (roc[["fpr", "tpr"]].iloc[[0, -1]].to_numpy() == [[0, 0], [1, 1]]).all()
    assert roc["fpr"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing


def test_calibration_respects_bin_count():
    proba = np.linspace(0.05, 0.95, 6)
    for bins in (2, 3):
        params = revalidated(PARAMS, calibration_bins=bins)
        assert len(curves(Y, proba, ("no", "yes"), params, 0.5)["calibration"]) <= bins


# --- evaluate_model ---------------------------------------------------------------------


def test_evaluate_model_end_to_end(tiny_model, frame):
    metrics, plots = evaluate_model(tiny_model, frame, PARAMS)

    assert set(metrics) == {*METRICS, "n_test", "threshold", "ci95"}
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

    code = evaluate.main(argv)

    layout = Layout(project)
    assert code == 0
    metrics = read_json(layout.test_metrics("tiny", "lr"))
    assert metrics["n_test"] == 10 and set(METRICS) <= set(metrics)
    board = read_json(layout.leaderboard("tiny"))
    assert (board["metric"], board["ranking"], board["champion_model"]) == (
        "roc_auc",
        ["lr"],
        "lr_tiny_v1",
    )
    card = read_json(layout.card("lr", "tiny", 1))
    lr = board["models"]["lr"]
    assert (lr["cv_mean"], lr["cv_std"]) == (
        card["cv"]["metrics"]["roc_auc"]["mean"],
        card["cv"]["metrics"]["roc_auc"]["std"],
    )
    assert lr["test"] == metrics["roc_auc"]
    assert (lr["test_low"], lr["test_high"]) == (
        metrics["ci95"]["roc_auc"]["low"],
        metrics["ci95"]["roc_auc"]["high"],
    )
    assert board["reason"].startswith("best CV roc_auc: lr ")
    for topic in evaluation.PLOT_TOPICS:
        path = layout.plot_data(topic, "tiny", "lr", SNAPSHOT)
        assert FIGURE_NAME_RE.match(path.name)
        assert isinstance(read_csv(path), pd.DataFrame)
    confusion = read_csv(layout.plot_data("confusion", "tiny", "lr", SNAPSHOT))
    assert len(confusion) == 4 and confusion["count"].sum() == 10
    # lr trains in one go: no per-round loss curve, but its directory exists (a DVC output)
    assert not layout.plot_data(evaluation.LOSS_TOPIC, "tiny", "lr", SNAPSHOT).exists()
    assert list(layout.plot_data_dir("loss", "tiny").iterdir()) == []


def test_evaluate_model_scores_what_the_model_predicts(tiny_model, frame):
    metrics, plots = evaluate_model(tiny_model, frame, PARAMS)

    y = (frame["y"] == "yes").astype(int).to_numpy()
    proba = tiny_model.predict_proba(frame, strict_categories=False)[:, 1]
    threshold = tiny_model.card.threshold
    ci95 = metrics.pop("ci95")
    assert metrics == {**score(y, proba, threshold), "n_test": len(frame), "threshold": threshold}
    assert set(ci95) == set(METRICS)
    confusion = plots["confusion"].set_index(["actual", "predicted"])["count"]
    predicted = proba >= threshold
    assert confusion["yes", "yes"] == int((predicted & (y == 1)).sum())
    assert confusion["no", "yes"] == int((predicted & (y == 0)).sum())
    assert confusion.sum() == len(frame) and len(confusion) == 4


def test_evaluate_model_predicts_once_per_model(tiny_model, frame, monkeypatch):
    calls = []
    real = Model.predict_proba

    def counted(self, *args, **kwargs):
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Model, "predict_proba", counted)

    evaluate_model(tiny_model, frame, PARAMS)

    assert len(calls) == 1  # metrics, curves and calibration share one array


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
    assert evaluate.main(cli(trained, dataset="tiny")) == 0
    before = read_json(layout.leaderboard("tiny"))
    card = json.loads(layout.card("lr", "tiny", 1).read_text(encoding="utf-8"))
    card["check"]["proba"][0] = 1.0 - card["check"]["proba"][0]
    layout.card("lr", "tiny", 1).write_text(json.dumps(card), encoding="utf-8")

    code = evaluate.main(cli(trained, dataset="tiny"))

    err = capsys.readouterr().err
    assert code == 2
    assert "error: lr_tiny_v1 no longer gives the probabilities recorded in its card" in err
    assert "Traceback" not in err
    assert read_json(layout.leaderboard("tiny")) == before


def test_main_refuses_a_damaged_model_file_in_one_line(trained, capsys):
    path = Layout(trained).model("lr", "tiny", 1)
    path.write_bytes(path.read_bytes()[:100])

    code = evaluate.main(cli(trained, dataset="tiny"))

    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("error:")] != []
    assert str(path) in err


def test_main_ranks_every_model_of_a_dataset(trained):
    assert evaluate.main(cli(trained, dataset="tiny")) == 0  # the project trained lr and rf

    board = read_json(Layout(trained).leaderboard("tiny"))
    assert sorted(board["ranking"]) == ["lr", "rf"]
    assert {a: m["model_id"] for a, m in board["models"].items()} == {
        "lr": "lr_tiny_v1",
        "rf": "rf_tiny_v1",
    }
    # both separate the tiny data perfectly on every fold: within one standard error, the
    # simpler lr is champion
    assert (board["champion"], board["champion_model"]) == ("lr", "lr_tiny_v1")


# --- importance: a bounded, stratified, seeded sample; the same on any number of threads --


def test_stratified_sample_size_shares_and_seed():
    y = np.r_[np.zeros(9_000, dtype=int), np.ones(1_000, dtype=int)]

    picked = evaluation.stratified_sample(y, 500, seed=3)

    assert len(picked) == 500 and len(set(picked)) == 500
    assert np.all(np.diff(picked) > 0)  # ascending: rows keep their file order
    assert int(y[picked].sum()) == 50  # the 10% positives stay 10% of the sample
    assert evaluation.stratified_sample(y, 500, seed=3).tolist() == picked.tolist()
    assert evaluation.stratified_sample(y, 500, seed=4).tolist() != picked.tolist()
    assert evaluation.stratified_sample(y[:300], 500, seed=3).tolist() == list(range(300))


def test_stratified_sample_keeps_a_rare_class():
    y = np.zeros(100_000, dtype=int)
    y[[5, 50_000, 99_999]] = 1  # 3 positives in 100,000

    picked = evaluation.stratified_sample(y, 40_000, seed=0)

    assert len(picked) == 40_000
    assert int(y[picked].sum()) == 1  # round(3 * 0.4): a rare class is not dropped


def test_importance_runs_on_at_most_importance_rows_stratified(tiny_model, monkeypatch):
    from tests.unit.conftest import make_frame

    test = make_frame(400, positives=100, seed=5)
    y = (test["y"] == "yes").astype(int).to_numpy()
    rows = tiny_model.validate(test, strict_categories=False).frame(tiny_model.schema)
    seen = {}
    import sklearn.inspection

    real = sklearn.inspection.permutation_importance

    def spy(estimator, X, y, **kwargs):
        seen.update(rows=len(X), positives=int(np.sum(y)), n_jobs=kwargs["n_jobs"])
        return real(estimator, X, y, **kwargs)

    monkeypatch.setattr(sklearn.inspection, "permutation_importance", spy)
    params = revalidated(PARAMS, importance_rows=40, n_jobs=3)

    frame = evaluation.importance(tiny_model, rows, y, params)

    assert seen == {"rows": 40, "positives": 10, "n_jobs": 3}  # 25% positives, like the test
    assert sorted(frame["feature"]) == ["age", "color", "income"]
    evaluation.importance(tiny_model, rows.iloc[:30], y[:30], params)
    assert seen["rows"] == 30  # fewer rows than the budget: all of them


@pytest.mark.parametrize("algo", ["rf", "lr"])
def test_importance_is_the_same_on_any_number_of_threads(trained_project, algo):
    from tabml.artifact import read_model
    from tabml.model import single_threaded
    from tests.unit.conftest import make_frame

    model = read_model(Layout(trained_project), algo, "tiny", 1)
    single_threaded(model.pipeline)
    test = make_frame(300, seed=7)
    y = (test["y"] == "yes").astype(int).to_numpy()
    rows = model.validate(test, strict_categories=False).frame(model.schema)
    params = revalidated(PARAMS, importance_rows=200, importance_repeats=3)

    one, three = (
        evaluation.importance(model, rows, y, revalidated(params, n_jobs=jobs)) for jobs in (1, 3)
    )

    pd.testing.assert_frame_equal(one, three)
    assert one["importance"].abs().sum() > 0  # something was measured


@pytest.mark.parametrize("algo", ["rf", "lr"])
def test_scoring_in_chunks_on_threads_gives_the_same_bits(trained_project, algo, monkeypatch):
    """Test-set probabilities are scored in fixed row chunks on evaluate.n_jobs threads:
    the same numbers for any thread count, and per row what one whole-batch call gives."""
    from tabml.artifact import read_model
    from tabml.model import single_threaded
    from tests.unit.conftest import make_frame

    monkeypatch.setattr(evaluation, "CHUNK_ROWS", 64)  # 300 rows: 5 chunks
    model = read_model(Layout(trained_project), algo, "tiny", 1)
    single_threaded(model.pipeline)
    batch = model.validate(make_frame(300, seed=11), strict_categories=False)

    one, two = (evaluation.chunked_proba(model, batch, jobs) for jobs in (1, 2))

    np.testing.assert_array_equal(one, two)
    whole = model.predict_proba(batch)[:, 1]
    np.testing.assert_allclose(one, whole, rtol=0, atol=1e-12)
    if algo == "rf":  # trees score each row on its own: bit for bit
        np.testing.assert_array_equal(one, whole)


# --- the stage: one dataset, its own outputs only, one scoring call per engine -----------


def fake_scored(algo: str, plots: dict[str, pd.DataFrame]) -> evaluation.Scored:
    metrics = {**{m: 0.5 for m in METRICS}, "roc_auc": {"lr": 0.7, "rf": 0.8}[algo]}
    return evaluation.Scored(f"{algo}_tiny_v1", metrics, plots)


def test_main_writes_what_the_engine_scored_and_only_this_dataset(trained, monkeypatch):
    project = trained  # its lr and rf cards hold the CV results the board ranks by
    layout = Layout(project)
    others = [
        layout.test_metrics("other", "lr"),
        layout.leaderboard("other"),
        layout.plot_data("roc", "other", "lr", SNAPSHOT),
        layout.plot_data_dir("loss", "tiny") / f"loss_tiny-xgb_{SNAPSHOT}.csv",  # stale
    ]
    for path in others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("kept\n", encoding="utf-8")
    roc = pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "threshold": [1.0, 0.0]})
    scored = {"lr": fake_scored("lr", {"roc": roc}), "rf": fake_scored("rf", {})}
    calls = []

    def engine(name, spec, params, layout_):
        calls.append((name, spec.engine, layout_))
        return scored

    monkeypatch.setattr(evaluate, "score_models", engine)

    assert evaluate.main(cli(project, dataset="tiny")) == 0

    assert calls == [("tiny", "pandas", layout)]
    assert read_json(layout.test_metrics("tiny", "rf"))["roc_auc"] == 0.8
    board = read_json(layout.leaderboard("tiny"))
    assert sorted(board["ranking"]) == ["lr", "rf"]
    assert (board["models"]["rf"]["test"], board["models"]["lr"]["test"]) == (0.8, 0.7)
    written = read_csv(layout.plot_data("roc", "tiny", "lr", SNAPSHOT))
    pd.testing.assert_frame_equal(written, roc)
    for topic in evaluation.TOPICS:  # every declared output directory exists
        assert layout.plot_data_dir(topic, "tiny").is_dir(), topic
    assert [p.name for p in layout.plot_data_dir("roc", "tiny").iterdir()] == [
        f"roc_tiny-lr_{SNAPSHOT}.csv"
    ]
    assert list(layout.plot_data_dir("loss", "tiny").iterdir()) == []  # stale file gone
    assert all(path.exists() for path in others[:3])  # another dataset's outputs untouched


def test_scorer_picks_the_engine_of_the_dataset():
    assert evaluate.scorer("pandas") is evaluate.score_models


def test_main_logs_one_progress_line_per_model(trained, caplog):
    with caplog.at_level(logging.INFO, logger="stages.evaluate"):
        assert evaluate.main(cli(trained, dataset="tiny")) == 0

    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("evaluated")]
    assert [line.split(" (")[0] for line in progress] == [
        "evaluated 1/2 models of tiny",
        "evaluated 2/2 models of tiny",
    ]
    assert "lr_tiny_v1 on 10 test rows: roc_auc" in progress[0]


def test_score_models_validates_the_test_rows_once_per_schema(trained, monkeypatch):
    from tabml.params import load_params

    calls = []
    real = evaluation.validate_test

    def counted(model, test):
        calls.append(model.model_id)
        return real(model, test)

    monkeypatch.setattr(evaluate, "validate_test", counted)
    params = load_params(trained / "params.yaml")

    scored = evaluate.score_models("tiny", params.datasets["tiny"], params, Layout(trained))

    assert calls == ["lr_tiny_v1"]  # rf has the same input schema: its rows are reused
    assert list(scored) == ["lr", "rf"]
    assert scored["rf"].metrics["n_test"] == 10


def test_main_refuses_an_unknown_dataset_in_one_line(project, capsys):
    code = evaluate.main(cli(project, dataset="nope"))

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: unknown dataset 'nope': params.yaml declares tiny"
