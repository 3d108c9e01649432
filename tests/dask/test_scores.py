"""Metrics and curves from per-partition histograms agree with scikit-learn on the rows, and
their bootstrap intervals with :mod:`tabml.bootstrap`'s on the rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m
from sklearn.calibration import calibration_curve

from tabml.bootstrap import bootstrap_intervals
from tabml.daskengine import scores
from tabml.metrics import METRICS, score


def _data(n: int, seed: int, *, binned: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    logit = rng.normal(size=n) + 1.5 * (y - 0.5)
    proba = 1 / (1 + np.exp(-logit))
    proba[:3] = [0.0, 1.0, 0.5]  # the edges and the threshold itself
    if binned:  # bin centres: one score per bin, so the binned metrics are exact
        proba = (scores.score_bins(proba) + 0.5) / scores.HISTOGRAM_BINS
    return y, proba


def _stats(
    y: np.ndarray, proba: np.ndarray, parts: int = 5, threshold: float = 0.5
) -> scores.ScoreStats:
    """As the engine computes them: one ScoreStats per partition, then merged."""
    cuts = np.array_split(np.arange(len(y)), parts)
    return scores.merge(scores.score_stats(y[c], proba[c], threshold, 10) for c in cuts)


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


# --- bootstrap intervals -------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.5, 0.37, 0.00005, 0.99995, 1.0])
def test_the_interval_arithmetic_at_the_observed_counts_gives_the_metrics(
    threshold: float,
) -> None:
    """The resamples' metric code, fed the rows' own cell counts, computes :func:`metrics`
    exactly: whichever bin the threshold splits, and the losses summed per cell."""
    y, proba = _data(6000, 6, binned=False)
    proba[3:6] = [threshold, np.nextafter(threshold, 0), min(threshold + 1e-5, 1.0)]
    stats = _stats(y, proba, threshold=threshold)
    assert stats.log_loss_bins.sum() == pytest.approx(stats.log_loss_sum, rel=1e-12)
    assert stats.brier_bins.sum() == pytest.approx(stats.brier_sum, rel=1e-12)
    cells = scores.cells(stats, threshold)
    assert cells.count.sum() == len(y)
    observed = scores.cell_metrics(cells, cells.count[np.newaxis, :])
    expected = scores.metrics(stats)
    assert {name: round(float(v[0]), 6) for name, v in observed.items()} == expected


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_intervals_are_the_row_bootstraps_on_binned_scores(threshold: float) -> None:
    """With one score per bin, a multinomial draw over the cells is a row resample: the
    intervals agree with tabml.bootstrap's from the rows, up to Monte Carlo noise."""
    y, proba = _data(3000, 7, binned=True)
    stats = _stats(y, proba, threshold=threshold)
    got = scores.intervals(stats, threshold, resamples=2000, seed=1)
    rows = bootstrap_intervals(y, proba, threshold, resamples=2000, seed=1)
    value = scores.metrics(stats)
    assert list(got) == list(METRICS)
    for name in METRICS:
        (low, high), (row_low, row_high) = got[name], rows[name]
        width = row_high - row_low
        assert 0 < width < 0.1, name
        assert abs(low - row_low) < 0.1 * width and abs(high - row_high) < 0.1 * width, name
        assert low < value[name] < high, name


def test_intervals_are_seeded() -> None:
    y, proba = _data(2000, 8, binned=False)
    stats = _stats(y, proba)
    once = scores.intervals(stats, 0.5, resamples=300, seed=3)
    assert scores.intervals(stats, 0.5, resamples=300, seed=3) == once
    assert scores.intervals(stats, 0.5, resamples=300, seed=4) != once


def test_intervals_of_one_class_leave_the_aucs_undefined_as_the_rows_do() -> None:
    y, proba = _data(500, 9, binned=True)
    y[:] = 0
    got = scores.intervals(_stats(y, proba), 0.5, resamples=200, seed=0)
    rows = bootstrap_intervals(y, proba, 0.5, resamples=200, seed=0)
    for name in ("roc_auc", "pr_auc"):
        assert np.isnan(got[name]).all() and np.isnan(rows[name]).all()
    assert got["recall"] == rows["recall"] == (0.0, 0.0)
    assert not np.isnan(got["accuracy"]).any()
