"""train: estimators configured from params, fitted on 0/1 labels, safe to pickle."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from stages import featurize as featurize_stage
from stages import ingest, split, train
from stages.train import build_estimator, fit_estimator, training_metrics
from tabml.artifact import library_versions, read_model
from tabml.errors import DataError
from tabml.features import load_features
from tabml.files import md5_file, read_json
from tabml.layout import Layout
from tabml.params import LRParams, RFParams, XGBParams
from tests.naming import MODEL_NAME_RE
from tests.unit.conftest import SNAPSHOT, cli, make_frame, make_project, revalidated

SMALL = {
    "rf": RFParams(n_estimators=20, max_depth=6, n_jobs=1, seed=0),
    "xgb": XGBParams(n_estimators=30, early_stopping_rounds=10, n_jobs=1, seed=0),
    "lr": LRParams(),
}


@pytest.mark.parametrize("algo", ["rf", "xgb", "lr"])
def test_fit_estimator_learns_a_separable_problem(algo, separable):
    X, y = separable(200, 0)
    X_new, y_new = separable(200, 1)

    estimator, _ = fit_estimator(algo, SMALL[algo], X, y)

    assert np.mean(estimator.predict(X_new) == y_new) > 0.9
    proba = estimator.predict_proba(X_new)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("algo", ["rf", "lr"])
def test_non_boosted_algorithms_return_no_curves(algo, separable):
    _, curves = fit_estimator(algo, SMALL[algo], *separable(200, 0))

    assert curves == {}


def test_xgb_returns_per_round_curves_and_drops_callbacks(separable):
    X, y = separable(200, 0)
    params = revalidated(SMALL["xgb"], early_stopping_rounds=None)

    estimator, curves = fit_estimator("xgb", params, X, y)

    assert set(curves) == {"train", "valid"}
    assert len(curves["train"]) == len(curves["valid"]) == params.n_estimators
    assert all(isinstance(v, float) for v in curves["valid"])
    assert curves["train"][-1] < curves["train"][0]  # boosting reduces the train loss
    assert estimator.get_params()["callbacks"] is None
    restored = pickle.loads(pickle.dumps(estimator))  # the progress callback is not picklable
    np.testing.assert_allclose(restored.predict_proba(X), estimator.predict_proba(X))


def test_xgb_early_stopping_keeps_curves_aligned(separable):
    X, y = separable(200, 0)
    params = revalidated(SMALL["xgb"], n_estimators=200, early_stopping_rounds=3)

    estimator, curves = fit_estimator("xgb", params, X, y)

    assert 0 < len(curves["train"]) == len(curves["valid"]) <= params.n_estimators
    assert estimator.best_iteration == int(np.argmin(curves["valid"]))


def test_xgb_validation_uses_a_held_out_fraction(separable, monkeypatch):
    X, y = separable(200, 0)
    seen = {}
    estimator = build_estimator("xgb", SMALL["xgb"])
    original_fit = type(estimator).fit

    def spy(self, X_fit, y_fit, eval_set=None, **kwargs):
        seen["fit"], seen["valid"] = len(X_fit), len(eval_set[1][0])
        return original_fit(self, X_fit, y_fit, eval_set=eval_set, **kwargs)

    monkeypatch.setattr(type(estimator), "fit", spy)
    fit_estimator("xgb", revalidated(SMALL["xgb"], validation_fraction=0.25), X, y)

    assert seen == {"fit": 150, "valid": 50}


@pytest.mark.parametrize("algo", ["rf", "xgb"])
def test_same_seed_same_model(algo, separable):
    X, y = separable(200, 0)

    first, _ = fit_estimator(algo, SMALL[algo], X, y)
    second, _ = fit_estimator(algo, SMALL[algo], X, y)

    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


@pytest.mark.parametrize("algo", ["rf", "xgb", "lr"])
def test_single_class_raises(algo):
    X = np.arange(40, dtype=float).reshape(20, 2)

    with pytest.raises(DataError, match="single class"):
        fit_estimator(algo, SMALL[algo], X, np.ones(20, dtype=int))


def test_build_rf_maps_params():
    params = RFParams(
        n_estimators=7,
        max_depth=None,
        min_samples_leaf=3,
        class_weight="balanced",
        n_jobs=2,
        seed=5,
    )

    got = build_estimator("rf", params).get_params()

    assert got["n_estimators"] == 7
    assert got["max_depth"] is None
    assert got["min_samples_leaf"] == 3
    assert got["class_weight"] == "balanced"
    assert got["n_jobs"] == 2
    assert got["random_state"] == 5


def test_build_xgb_maps_params():
    params = XGBParams(
        n_estimators=11,
        learning_rate=0.3,
        max_depth=3,
        subsample=0.8,
        colsample_bytree=0.7,
        min_child_weight=2.0,
        reg_lambda=0.5,
        early_stopping_rounds=None,
        n_jobs=1,
        seed=9,
    )

    got = build_estimator("xgb", params).get_params()

    assert {k: got[k] for k in ("n_estimators", "learning_rate", "max_depth")} == {
        "n_estimators": 11,
        "learning_rate": 0.3,
        "max_depth": 3,
    }
    assert (got["subsample"], got["colsample_bytree"]) == (0.8, 0.7)
    assert (got["min_child_weight"], got["reg_lambda"]) == (2.0, 0.5)
    assert got["early_stopping_rounds"] is None
    assert (got["n_jobs"], got["random_state"]) == (1, 9)
    assert got["eval_metric"] == "logloss"


def test_build_lr_maps_params():
    got = build_estimator("lr", LRParams(C=0.1, max_iter=50, class_weight="balanced")).get_params()

    assert (got["C"], got["max_iter"], got["class_weight"]) == (0.1, 50, "balanced")


def test_build_unknown_algo():
    with pytest.raises(ValueError, match="'svm'"):
        build_estimator("svm", LRParams())


def test_training_metrics(separable):
    X, y = separable(200, 0)
    estimator, _ = fit_estimator("lr", SMALL["lr"], X, y)

    metrics = training_metrics(estimator, X, y)

    assert set(metrics) == {
        "train_accuracy",
        "train_roc_auc",
        "train_log_loss",
        "n_train",
        "n_features",
    }
    assert (metrics["n_train"], metrics["n_features"]) == (200, 4)
    assert metrics["train_accuracy"] > 0.9 and metrics["train_roc_auc"] > 0.95
    assert 0 < metrics["train_log_loss"] < 0.3


def test_main_writes_model_predicting_raw_rows(project, frame):
    argv = cli(project, dataset="tiny")
    for stage in (ingest, split, featurize_stage):
        assert stage.main(argv) == 0

    code = train.main([*argv, "--algo", "lr"])

    layout = Layout(project)
    assert code == 0
    assert sorted(p.name for p in layout.models_dir.iterdir()) == [
        "lr_tiny_v1.json",
        "lr_tiny_v1.pkl",
    ]
    assert all(MODEL_NAME_RE.match(p.name) for p in layout.models_dir.iterdir())
    assert isinstance(joblib.load(layout.model("lr", "tiny", 1)), Pipeline)
    model = read_model(layout, "lr", "tiny", 1)
    assert (model.model_id, model.classes, model.card.data.snapshot) == (
        "lr_tiny_v1",
        ("no", "yes"),
        SNAPSHOT,
    )
    assert set(model.card.params) == {"dataset", "featurize", "split", "lr"}
    predictions = model.predict(frame.drop(columns="y"))
    assert np.mean(np.array(predictions) == frame["y"].to_numpy()) > 0.9
    metrics = read_json(layout.train_metrics_dir("tiny", "lr") / "metrics.json")
    assert metrics == model.card.train_metrics
    assert metrics["n_train"] == 30
    features, _ = load_features(layout, "tiny", SNAPSHOT)
    assert model.card.columns == features.columns
    assert model.card.check.rows == features.check_rows


def test_main_pipeline_is_the_featurize_transformer_then_the_estimator(trained_project):
    layout = Layout(trained_project)
    _, transformer = load_features(layout, "tiny", SNAPSHOT)
    processed = pd.read_csv(layout.processed("tiny", "train", SNAPSHOT))

    pipeline = joblib.load(layout.model("lr", "tiny", 1))

    preprocess, estimator = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    assert type(estimator).__name__ == "LogisticRegression"
    assert list(preprocess.get_feature_names_out()) == list(transformer.get_feature_names_out())
    X = processed.iloc[:, :-1].to_numpy(dtype="float64")
    card = read_model(layout, "lr", "tiny", 1).card
    assert training_metrics(estimator, X, processed["y"].to_numpy()) == card.train_metrics


def test_main_is_reproducible(trained):
    layout = Layout(trained)
    before = {p.name: md5_file(p) for p in layout.models_dir.iterdir()}

    assert train.main([*cli(trained, dataset="tiny"), "--algo", "rf"]) == 0
    assert train.main([*cli(trained, dataset="tiny"), "--algo", "lr"]) == 0

    assert {p.name: md5_file(p) for p in layout.models_dir.iterdir()} == before


def test_main_xgb_records_its_history_and_xgboost_version(tmp_path):
    root = make_project(tmp_path / "xgb", make_frame(), ("xgb",))
    layout = Layout(root)

    model = read_model(layout, "xgb", "tiny", 1)

    card = model.card
    assert set(card.history) == {"train", "valid"}
    assert len(card.history["train"]) == len(card.history["valid"]) == 30  # n_estimators
    assert card.libraries == library_versions("xgb") and "xgboost" in card.libraries
    assert card.params["xgb"]["n_estimators"] == 30
    assert {"best_iteration", "valid_log_loss"} <= set(card.train_metrics)
    assert card.train_metrics["valid_log_loss"] == min(card.history["valid"])
    assert model.estimator.get_params()["callbacks"] is None
    dvclive = layout.train_metrics_dir("tiny", "xgb")
    assert (dvclive / "metrics.json").is_file()
    assert len((dvclive / "plots/metrics/valid/logloss.tsv").read_text().splitlines()) == 31


def test_main_algo_not_in_train_algos_returns_2(project, capsys):
    code = train.main([*cli(project, dataset="tiny"), "--algo", "rf"])

    assert code == 2
    assert "error: unknown algorithm 'rf': train.algos allows lr" in capsys.readouterr().err
    assert not (project / "models").exists()


def test_main_without_featurize_returns_2(project, capsys):
    code = train.main([*cli(project, dataset="tiny"), "--algo", "lr"])

    assert code == 2
    assert "does not exist: run the stage that writes it first" in capsys.readouterr().err


def test_main_refuses_processed_data_of_another_transformer(trained, capsys):
    layout = Layout(trained)
    path = layout.processed("tiny", "train", SNAPSHOT)
    frame = pd.read_csv(path)
    frame.drop(columns=frame.columns[0]).to_csv(path, index=False)
    before = md5_file(layout.model("lr", "tiny", 1))

    code = train.main([*cli(trained, dataset="tiny"), "--algo", "lr"])

    err = capsys.readouterr().err
    assert code == 2
    assert "error: processed train data of 'tiny' does not match its transformer" in err
    assert md5_file(layout.model("lr", "tiny", 1)) == before


@pytest.mark.parametrize(
    "text",
    [
        '{"dataset": "tiny"}',  # valid JSON of another shape (an older featurize)
        "{",  # damaged
    ],
)
def test_main_refuses_a_damaged_feature_spec_in_one_line(trained, capsys, text):
    """The features JSON is an intermediate file: if it cannot be used the stage says so in
    one line and exits 2, like any other unusable input (tabml.errors.DataError)."""
    layout = Layout(trained)
    layout.processed("tiny", "features", SNAPSHOT, "json").write_text(text, encoding="utf-8")

    code = train.main([*cli(trained, dataset="tiny"), "--algo", "lr"])

    err = capsys.readouterr().err
    assert code == 2
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert "features_processed" in err


def test_card_params_are_what_the_model_was_trained_with(trained_project):
    layout = Layout(trained_project)

    card = read_model(layout, "rf", "tiny", 1).card

    assert card.params["rf"]["n_estimators"] == 20
    assert card.params["split"] == {"test_size": 0.25, "seed": 42}
    assert read_model(layout, "rf", "tiny", 1).estimator.get_params()["n_estimators"] == 20
