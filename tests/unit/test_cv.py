"""Cross-validation cores (tabml.cv): folds, out-of-fold predictions, threshold choice."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from tabml.cv import (
    SIMPLICITY,
    choose_threshold,
    cross_validate,
    cv_sample,
    cv_summary,
    fold_ids,
)
from tabml.errors import DataError
from tabml.metrics import METRICS, score


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.6).astype(int)
    return X, y


def _fit(X: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression().fit(X, y)


def test_folds_are_stratified_seeded_and_cover_every_row():
    _, y = _data()
    ids = fold_ids(y, 5, seed=42)
    assert sorted(set(ids.tolist())) == [0, 1, 2, 3, 4]
    rate = y.mean()
    for i in range(5):
        assert abs(y[ids == i].mean() - rate) < 0.03  # each fold keeps the class balance
    assert np.array_equal(ids, fold_ids(y, 5, seed=42))
    assert not np.array_equal(ids, fold_ids(y, 5, seed=7))


def test_too_few_rows_of_a_class_for_the_folds_is_one_clear_error():
    y = np.array([0] * 20 + [1] * 3)
    with pytest.raises(DataError, match=r"3 rows of its rarer class, fewer than train.cv_folds=5"):
        fold_ids(y, 5, seed=0)


def test_out_of_fold_predictions_come_from_models_that_did_not_see_the_row():
    X, y = _data()
    result = cross_validate(_fit, X, y, k=4, seed=1)
    assert np.array_equal(result.rows, np.arange(len(y)))
    for i in range(4):
        held = result.fold == i
        model = _fit(X[~held], y[~held])
        assert np.allclose(result.proba[held], model.predict_proba(X[held])[:, 1])
    # and not from a model fitted on every row (which would be optimistic)
    assert not np.allclose(result.proba, _fit(X, y).predict_proba(X)[:, 1])


def test_cv_on_a_stratified_sample_when_the_split_is_large():
    X, y = _data(1000)
    rows = cv_sample(y, 300, seed=3)
    assert len(rows) == 300 and np.all(np.diff(rows) > 0)
    assert abs(y[rows].mean() - y.mean()) < 0.01
    assert np.array_equal(cv_sample(y, None, 3), np.arange(1000))
    result = cross_validate(_fit, X, y, k=3, seed=3, max_rows=300)
    assert np.array_equal(result.rows, rows)
    assert np.array_equal(result.y, y[rows])


def test_summary_has_mean_std_and_fold_values_of_every_metric():
    X, y = _data()
    result = cross_validate(_fit, X, y, k=5, seed=0)
    summary = cv_summary(result, 0.5)
    assert (summary["folds"], summary["seed"], summary["rows"]) == (5, 0, len(y))
    assert set(summary["metrics"]) == set(METRICS)
    auc = summary["metrics"]["roc_auc"]
    expected = [
        score(y[result.fold == i], result.proba[result.fold == i], 0.5)["roc_auc"] for i in range(5)
    ]
    assert auc["values"] == expected
    assert auc["mean"] == pytest.approx(np.mean(expected), abs=1e-6)
    assert auc["std"] == pytest.approx(np.std(expected, ddof=1), abs=1e-6)


def _predicted(proba: np.ndarray, threshold: float) -> np.ndarray:
    return (proba >= threshold).astype(int)


def test_auto_threshold_maximises_f1_over_every_cut():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    proba = np.clip(0.35 * y + rng.uniform(0, 0.65, 300), 0, 1)
    t = choose_threshold(y, proba)
    best = max(f1_score(y, _predicted(proba, c), zero_division=0) for c in np.unique(proba))
    assert f1_score(y, _predicted(proba, t)) == pytest.approx(best)
    assert t not in set(proba.tolist())  # halfway between two rows, not on one


def test_costs_move_the_threshold_toward_the_cheaper_mistake():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 500)
    proba = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    costly_misses = choose_threshold(y, proba, {"false_positive": 1.0, "false_negative": 10.0})
    costly_alarms = choose_threshold(y, proba, {"false_positive": 10.0, "false_negative": 1.0})
    assert costly_misses < costly_alarms

    def cost(t: float, fp: float, fn: float) -> float:
        pred = _predicted(proba, t)
        return fp * int(((pred == 1) & (y == 0)).sum()) + fn * int(((pred == 0) & (y == 1)).sum())

    cuts = [*np.unique(proba).tolist(), 1.01]
    best = min(cost(c, 1.0, 10.0) for c in cuts)
    assert cost(costly_misses, 1.0, 10.0) == best


def test_costs_can_choose_to_predict_nothing_positive():
    y = np.array([0, 0, 0, 0, 1])
    proba = np.array([0.9, 0.8, 0.7, 0.6, 0.5])  # the positive scores lowest
    t = choose_threshold(y, proba, {"false_positive": 5.0, "false_negative": 1.0})
    assert t > 0.9 and not _predicted(proba, t).any()


def test_simplicity_order_is_documented_lr_xgb_rf():
    assert SIMPLICITY == ("lr", "xgb", "rf")
