"""Metrics and curves from per-partition histograms agree with scikit-learn on the rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m
from sklearn.calibration import calibration_curve

from tabml.daskengine import scores
from tabml.metrics import score


def _data(n: int, seed: int, *, binned: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    logit = rng.normal(size=n) + 1.5 * (y - 0.5)
    proba = 1 / (1 + np.exp(-logit))
    proba[:3] = [0.0, 1.0, 0.5]  # the edges and the threshold itself
    if binned:  # bin centres: one score per bin, so the binned metrics are exact
        proba = (scores.score_bins(proba) + 0.5) / scores.HISTOGRAM_BINS
    return y, proba


def _stats(y: np.ndarray, proba: np.ndarray, parts: int = 5) -> scores.ScoreStats:
    """As the engine computes them: one ScoreStats per partition, then merged."""
    cuts = np.array_split(np.arange(len(y)), parts)
    return scores.merge(scores.score_stats(y[c], proba[c], 0.5, 10) for c in cuts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn_on_binned_scores(seed: int) -> None:
    y, proba = _data(5000, seed, binned=True)
    got = scores.metrics(_stats(y, proba))
    assert got == pytest.approx(score(y, proba, 0.5), abs=2e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_close_to_sklearn_on_any_scores(seed: int) -> None:
    y, proba = _data(20000, seed, binned=False)
    got, exact = scores.metrics(_stats(y, proba)), score(y, proba, 0.5)
    for name in ("roc_auc", "pr_auc"):
        assert abs(got[name] - exact[name]) < 1e-3, name
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "log_loss", "brier"):
        assert got[name] == pytest.approx(exact[name], abs=2e-6), name


def test_roc_and_pr_curves_are_sklearns_on_binned_scores() -> None:
    y, proba = _data(3000, 3, binned=True)
    stats = _stats(y, proba)
    fpr, tpr, threshold = scores.roc_curve(stats)
    sk_fpr, sk_tpr, sk_thr = m.roc_curve(y, proba, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    lower_edges = np.floor(sk_thr[1:] * scores.HISTOGRAM_BINS) / scores.HISTOGRAM_BINS
    np.testing.assert_allclose(threshold[1:], lower_edges)
    assert threshold[0] == 1.0
    precision, recall = scores.pr_curve(stats)
    sk_precision, sk_recall, _ = m.precision_recall_curve(y, proba, drop_intermediate=False)
    np.testing.assert_allclose(precision, sk_precision)
    np.testing.assert_allclose(recall, sk_recall)


def test_calibration_and_counts_are_exact() -> None:
    y, proba = _data(4000, 4, binned=False)
    stats = _stats(y, proba, parts=7)
    prob_true, prob_pred = scores.calibration(stats)
    sk_true, sk_pred = calibration_curve(y, proba, n_bins=10)
    np.testing.assert_allclose(prob_true, sk_true)
    np.testing.assert_allclose(prob_pred, sk_pred)
    matrix = m.confusion_matrix(y, proba >= 0.5, labels=[0, 1])
    assert [[stats.tn, stats.fp], [stats.fn, stats.tp]] == matrix.tolist()
    assert stats.n == len(y)


def test_empty_partitions_add_nothing() -> None:
    y, proba = _data(1000, 5, binned=True)
    empty = scores.score_stats(y[:0], proba[:0], 0.5, 10)
    with_empty = scores.merge([empty, scores.score_stats(y, proba, 0.5, 10), empty])
    assert scores.metrics(with_empty) == scores.metrics(_stats(y, proba, parts=1))
