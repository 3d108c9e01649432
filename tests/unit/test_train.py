"""train: estimators configured from params, fitted on 0/1 labels, safe to pickle."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from stages import featurize as featurize_stage
from stages import ingest, split, train
from stages.train import build_estimator, fit_estimator, fit_model, training_metrics
from tabml.artifact import library_versions, read_model
from tabml.cv import CvResult, choose_threshold, cv_summary
from tabml.errors import DataError
from tabml.features import load_features, load_matrix, save_matrix
from tabml.files import md5_file, read_json
from tabml.layout import Layout
from tabml.params import LRParams, RFParams, XGBParams, load_params
from tests.naming import MODEL_NAME_RE
from tests.unit.conftest import (
    SNAPSHOT,
    cli,
    make_frame,
    make_project,
    revalidated,
    write_params,
)

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


def test_xgb_cv_fold_fit_evaluates_only_the_validation_part_and_grows_the_same_trees(separable):
    """A cross-validation fold's fit (final=False) needs no per-round train loss: it evaluates
    the validation part alone, which early stopping reads, and stops at the same round."""
    X, y = separable(300, 0)
    params = revalidated(SMALL["xgb"], n_estimators=200, early_stopping_rounds=3)

    shipped, curves = fit_estimator("xgb", params, X, y)
    fold, fold_curves = fit_estimator("xgb", params, X, y, final=False)

    assert fold_curves == {} and set(curves) == {"train", "valid"}
    assert list(fold.evals_result()) == ["validation_0"]
    assert fold.evals_result()["validation_0"]["logloss"] == curves["valid"]
    assert fold.best_iteration == shipped.best_iteration
    np.testing.assert_array_equal(fold.predict_proba(X), shipped.predict_proba(X))


def test_write_train_metrics_logs_each_round_and_the_summary(tmp_path):
    curves = {"train": [0.6, 0.5, 0.4], "valid": [0.65, 0.6, 0.62]}

    train._write_train_metrics(tmp_path, {"train_roc_auc": 0.9}, curves)

    for part in ("train", "valid"):
        rows = (tmp_path / f"plots/metrics/{part}/logloss.tsv").read_text().splitlines()
        assert rows == ["step\tlogloss", *(f"{i}\t{v}" for i, v in enumerate(curves[part]))]
    summary = read_json(tmp_path / "metrics.json")
    assert summary == {
        "train": {"logloss": 0.4},
        "valid": {"logloss": 0.62},
        "step": 2,  # the last round's
        "train_roc_auc": 0.9,
    }


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

    metrics = training_metrics(estimator, X, y, 1000)

    assert set(metrics) == {
        "train_accuracy",
        "train_roc_auc",
        "train_log_loss",
        "train_metrics_rows",
        "n_train",
        "n_features",
    }
    assert (metrics["n_train"], metrics["n_features"], metrics["train_metrics_rows"]) == (
        200,
        4,
        200,
    )
    assert metrics["train_accuracy"] > 0.9 and metrics["train_roc_auc"] > 0.95
    assert 0 < metrics["train_log_loss"] < 0.3


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_training_metrics_on_a_seeded_sample_of_the_rows(separable, kind):
    import scipy.sparse as sp

    X, y = separable(400, 0)
    estimator, _ = fit_estimator("lr", SMALL["lr"], X, y)
    features = sp.csr_matrix(X) if kind == "csr" else X

    metrics = training_metrics(estimator, features, y, 150)

    assert (metrics["n_train"], metrics["train_metrics_rows"]) == (400, 150)
    assert metrics == training_metrics(estimator, features, y, 150)  # the same rows each time
    rows = np.sort(np.random.default_rng(0).choice(400, size=150, replace=False))
    sample = training_metrics(estimator, X[rows], y[rows], 150)
    assert {k: v for k, v in sample.items() if k != "n_train"} == {
        k: v for k, v in metrics.items() if k != "n_train"
    }


def test_main_writes_model_predicting_raw_rows(project, frame):
    argv = cli(project, dataset="tiny")
    for stage in (ingest, split, featurize_stage):
        assert stage.main(argv) == 0

    code = train.main([*argv, "--algo", "lr"])

    layout = Layout(project)
    assert code == 0
    assert [p.name for p in layout.models_dir.iterdir()] == ["tiny"]
    assert sorted(p.name for p in layout.dataset_models_dir("tiny").iterdir()) == [
        "lr_tiny_v1.json",
        "lr_tiny_v1.oof.csv",
        "lr_tiny_v1.pkl",
    ]
    assert all(MODEL_NAME_RE.match(p.name) for p in layout.dataset_models_dir("tiny").iterdir())
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
    X, y = load_matrix(layout.processed("tiny", "train", SNAPSHOT, "npz"))

    pipeline = joblib.load(layout.model("lr", "tiny", 1))

    preprocess, estimator = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    assert type(estimator).__name__ == "LogisticRegression"
    assert list(preprocess.get_feature_names_out()) == list(transformer.get_feature_names_out())
    card = read_model(layout, "lr", "tiny", 1).card
    metrics_rows = load_params(trained_project / "params.yaml").train.metrics_rows
    assert training_metrics(estimator, X, y, metrics_rows) == card.train_metrics


def test_main_is_reproducible(trained):
    layout = Layout(trained)
    models = layout.dataset_models_dir("tiny")
    before = {p.name: md5_file(p) for p in models.iterdir()}

    assert train.main([*cli(trained, dataset="tiny"), "--algo", "rf"]) == 0
    assert train.main([*cli(trained, dataset="tiny"), "--algo", "lr"]) == 0

    assert {p.name: md5_file(p) for p in models.iterdir()} == before
    assert len(before) == 6  # lr and rf: model, card and out-of-fold predictions each


def test_main_xgb_records_its_history_and_xgboost_version(tmp_path):
    root = make_project(tmp_path / "xgb", make_frame(), ("xgb",))
    layout = Layout(root)

    model = read_model(layout, "xgb", "tiny", 1)

    card = model.card
    assert set(card.history) == {"train", "valid"}
    assert len(card.history["train"]) == len(card.history["valid"]) == 30  # n_estimators
    assert card.libraries == library_versions(model.estimator) and "xgboost" in card.libraries
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


@pytest.mark.parametrize("drop", ["column", "label"])
def test_main_refuses_processed_data_of_another_transformer(trained, capsys, drop):
    layout = Layout(trained)
    path = layout.processed("tiny", "train", SNAPSHOT, "npz")
    X, y = load_matrix(path)
    save_matrix(path, *((X[:, 1:], y) if drop == "column" else (X, y[1:])))
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


def test_main_refuses_damaged_processed_data_in_one_line(trained, capsys):
    layout = Layout(trained)
    path = layout.processed("tiny", "train", SNAPSHOT, "npz")
    path.write_bytes(path.read_bytes()[:100])
    before = md5_file(layout.model("lr", "tiny", 1))

    code = train.main([*cli(trained, dataset="tiny"), "--algo", "lr"])

    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: {path} is not processed data (not an .npz archive): rerun featurize"
    ]
    assert "Traceback" not in err
    assert md5_file(layout.model("lr", "tiny", 1)) == before


def test_xgb_evaluates_sparse_validation_data_on_a_plain_dmatrix(monkeypatch):
    """xgboost predicts an evaluation QuantileDMatrix of sparse data over every feature of
    every row (dmlc/xgboost#10793): with 37,500 one-hot columns each round took 6 s instead of
    0.3. Only the training data is quantised; the model and its curves are the same."""
    import scipy.sparse as sp
    import xgboost
    import xgboost.sklearn
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    n, width = 600, 200
    codes = rng.integers(0, width, n)
    onehot = sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, width))
    X = sp.hstack([sp.csr_matrix(rng.normal(size=(n, 3))), onehot]).tocsr()
    y = ((codes < 60) + X[:, [0]].toarray().ravel() + rng.normal(0, 0.5, n) > 0.5).astype(int)
    params = revalidated(SMALL["xgb"], early_stopping_rounds=None)
    X_fit, X_val, y_fit, y_val = train_test_split(
        X, y, test_size=params.validation_fraction, random_state=params.seed, stratify=y
    )
    reference = build_estimator("xgb", params)
    reference.fit(X_fit, y_fit, eval_set=[(X_fit, y_fit), (X_val, y_val)], verbose=False)
    quantised = []

    class Spy(xgboost.QuantileDMatrix):
        def __init__(self, *args, **kwargs):
            quantised.append(kwargs.get("ref"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(xgboost.sklearn, "QuantileDMatrix", Spy)

    estimator, curves = fit_estimator("xgb", params, X, y)

    assert quantised == [None]  # the training data only
    assert "_create_dmatrix" not in vars(estimator)  # nothing of ours is pickled
    pickle.dumps(estimator)
    assert estimator.get_booster().save_raw("json") == reference.get_booster().save_raw("json")
    history = reference.evals_result()
    assert curves == {
        "train": history["validation_0"]["logloss"],
        "valid": history["validation_1"]["logloss"],
    }
    fit_estimator("xgb", params, X.toarray(), y)  # dense data: as xgboost does by default
    assert len(quantised) == 3


# --- cross-validation, threshold, calibration ---------------------------------------------


def test_main_cross_validates_the_model_on_the_train_split(trained_project):
    layout = Layout(trained_project)
    card = read_model(layout, "lr", "tiny", 1).card
    oof = pd.read_csv(layout.oof("lr", "tiny", 1))
    _, y = load_matrix(layout.processed("tiny", "train", SNAPSHOT, "npz"))

    assert (card.cv["folds"], card.cv["seed"], card.cv["rows"]) == (5, 42, 30)
    assert oof.columns.tolist() == ["row", "fold", "y", "proba"]
    assert oof["row"].tolist() == list(range(30)) and oof["y"].tolist() == y.tolist()
    assert sorted(oof["fold"].unique()) == [0, 1, 2, 3, 4]
    assert card.cv == cv_summary(
        CvResult(oof["row"].to_numpy(), oof["fold"].to_numpy(), y, oof["proba"].to_numpy(), 5, 42),
        card.threshold,
    )
    assert (card.threshold, card.threshold_rule) == (0.5, "fixed: evaluate.threshold 0.5")
    assert card.calibration == "none"


def _retrain(root, edit) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    edit(params)
    write_params(root / "params.yaml", params)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert train.main([*cli(root, dataset="tiny"), "--algo", "lr"]) == 0
    finally:
        os.chdir(cwd)


def test_threshold_auto_is_chosen_from_out_of_fold_predictions(trained):
    layout = Layout(trained)
    _retrain(trained, lambda p: p["evaluate"].update(threshold="auto"))

    card = read_model(layout, "lr", "tiny", 1).card
    oof = pd.read_csv(layout.oof("lr", "tiny", 1))
    assert card.threshold == choose_threshold(oof["y"].to_numpy(), oof["proba"].to_numpy())
    assert card.threshold_rule == "auto: max F1 on out-of-fold predictions"

    costs = {"false_positive": 1.0, "false_negative": 20.0}
    _retrain(trained, lambda p: p["evaluate"].update(threshold="auto", costs=costs))
    cheap_misses = read_model(layout, "lr", "tiny", 1).card
    assert cheap_misses.threshold == choose_threshold(
        oof["y"].to_numpy(), oof["proba"].to_numpy(), costs
    )
    assert cheap_misses.threshold_rule == (
        "auto: least cost (false positive 1, false negative 20) on out-of-fold predictions"
    )


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_wraps_the_model_in_calibrated_classifier_cv(trained, method):
    from sklearn.calibration import CalibratedClassifierCV

    layout = Layout(trained)
    plain = read_model(layout, "lr", "tiny", 1)
    _retrain(trained, lambda p: p["train"]["lr"].update(calibration=method))

    model = read_model(layout, "lr", "tiny", 1)
    pipeline = joblib.load(layout.model("lr", "tiny", 1))  # still a plain library object
    assert isinstance(pipeline.named_steps["model"], CalibratedClassifierCV)
    assert pipeline.named_steps["model"].method == method
    assert len(pipeline.named_steps["model"].calibrated_classifiers_) == 5  # train.cv_folds
    assert model.card.calibration == method
    rows = make_frame().drop(columns="y")
    assert not np.allclose(model.predict_proba(rows), plain.predict_proba(rows))


def test_fit_model_calibrates_xgb_with_early_stopping(separable):
    from sklearn.calibration import CalibratedClassifierCV

    X, y = separable(300)
    params = XGBParams(
        n_estimators=40, early_stopping_rounds=5, n_jobs=1, seed=0, calibration="sigmoid"
    )
    estimator, curves = fit_model("xgb", params, X, y, cv_folds=3, seed=0)

    assert isinstance(estimator, CalibratedClassifierCV) and curves == {}
    assert "xgboost" in library_versions(estimator)
    assert roc_auc_score(y, estimator.predict_proba(X)[:, 1]) > 0.95
