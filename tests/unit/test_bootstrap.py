"""Bootstrap intervals of the test metrics: the hand-written weighted metrics must be sklearn's
numbers exactly, the intervals a plain bootstrap's, and 1000 resamples of 250,000 rows quick."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
from sklearn import metrics as m

from tabml import bootstrap
from tabml.bootstrap import bootstrap_intervals, weighted_metrics
from tabml.metrics import METRICS, is_positive, score


def sklearn_metrics(
    y: np.ndarray, proba: np.ndarray, threshold: float, weight: np.ndarray | None = None
) -> dict[str, float]:
    """The reference: score()'s scikit-learn calls, with sample_weight and without rounding."""
    pred = is_positive(proba, threshold).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balanced accuracy of a class never predicted
        values = {
            "accuracy": m.accuracy_score(y, pred, sample_weight=weight),
            "balanced_accuracy": m.balanced_accuracy_score(y, pred, sample_weight=weight),
            "precision": m.precision_score(y, pred, zero_division=0, sample_weight=weight),
            "recall": m.recall_score(y, pred, zero_division=0, sample_weight=weight),
            "f1": m.f1_score(y, pred, zero_division=0, sample_weight=weight),
            "roc_auc": m.roc_auc_score(y, proba, sample_weight=weight),
            "pr_auc": m.average_precision_score(y, proba, sample_weight=weight),
            "log_loss": m.log_loss(y, proba, labels=[0, 1], sample_weight=weight),
            "brier": m.brier_score_loss(y, proba, sample_weight=weight),
        }
    return {k: float(v) for k, v in values.items()}


def dataset(kind: str, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and probabilities that carry some signal, in a few awkward shapes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    proba = 1 / (1 + np.exp(-(1.5 * y - 0.75 + rng.normal(0, 1.2, n))))
    if kind == "ties":  # few distinct values, both classes inside most tied groups
        proba = np.round(proba, 1)
    elif kind == "extremes":  # exact 0 and 1: log loss clips them
        proba = np.where(rng.random(n) < 0.1, y.astype(float), proba)
        proba[:3] = 1 - y[:3]  # confidently wrong
    elif kind == "pair_ties":  # ties of exactly one positive and one negative
        positives, negatives = np.flatnonzero(y == 1)[:40], np.flatnonzero(y == 0)[:40]
        proba[negatives] = proba[positives]
    elif kind == "positive_ties":  # ties among positives only
        positives = np.flatnonzero(y == 1)
        proba[positives[1:40:2]] = proba[positives[0:40:2]]
    elif kind == "float32":  # xgboost's predict_proba dtype: clipping at float32 eps
        proba = proba.astype(np.float32)
        proba[:2] = 1 - y[:2]
    return y, proba


KINDS = ("distinct", "ties", "pair_ties", "positive_ties", "extremes", "float32")
# 0: everything predicted positive; 1.01: nothing predicted positive (precision 0/0);
# 0.3: exactly a tied value in the "ties" data (>= puts the whole tie group positive).
THRESHOLDS = (0.5, 0.0, 0.3, 1.01)


def assert_close(ours: dict[str, float], reference: dict[str, float], tol: float) -> None:
    assert set(ours) == set(METRICS)
    for name in METRICS:
        assert math.isclose(ours[name], reference[name], rel_tol=tol, abs_tol=tol), (
            name,
            ours[name],
            reference[name],
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_weighted_metrics_equal_sklearn_with_sample_weight(kind: str, threshold: float) -> None:
    y, proba = dataset(kind)
    rng = np.random.default_rng(1)
    for _ in range(5):
        weight = rng.integers(0, 4, y.size)  # multiplicities of a resample, zeros included
        assert weight[y == 1].sum() > 0 and weight[y == 0].sum() > 0
        tol = 1e-6 if kind == "float32" else 1e-9  # sklearn sums float32 losses in float32
        ours = weighted_metrics(y, proba, threshold, weight)
        assert_close(ours, sklearn_metrics(y, proba, threshold, weight), tol)


@pytest.mark.parametrize("kind", KINDS)
def test_fractional_weights_equal_sklearn(kind: str) -> None:
    y, proba = dataset(kind)
    weight = np.random.default_rng(5).random(y.size) * 3
    ours = weighted_metrics(y, proba, 0.5, weight)
    assert_close(ours, sklearn_metrics(y, proba, 0.5, weight), 1e-6 if kind == "float32" else 1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_integer_weights_are_repeated_rows(kind: str) -> None:
    y, proba = dataset(kind, n=150)
    weight = np.random.default_rng(2).integers(0, 3, y.size)
    ours = weighted_metrics(y, proba, 0.5, weight)
    repeated = score(np.repeat(y, weight), np.repeat(proba, weight), 0.5)
    for name in METRICS:
        assert ours[name] == pytest.approx(repeated[name], abs=1e-6), name


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_unit_weights_equal_score(kind: str, threshold: float) -> None:
    y, proba = dataset(kind, n=300, seed=3)
    expected = score(y, proba, threshold)
    for ours in (
        weighted_metrics(y, proba, threshold),
        weighted_metrics(y, proba, threshold, np.ones(y.size)),
    ):
        for name in METRICS:
            assert ours[name] == pytest.approx(expected[name], abs=1e-6), name


def test_weighted_metrics_zero_division_and_one_class() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.4])
    nothing = weighted_metrics(y, proba, 0.9)  # no predicted positive: precision 0, like score()
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)
    assert nothing["balanced_accuracy"] == 0.5
    everything = weighted_metrics(y, proba, 0.0)
    assert (everything["precision"], everything["recall"]) == (0.5, 1.0)
    # The positives weighted out: the AUCs are undefined (nan); the rest still computed.
    one_class = weighted_metrics(y, proba, 0.15, np.array([1, 2, 0, 0]))
    assert math.isnan(one_class["roc_auc"]) and math.isnan(one_class["pr_auc"])
    assert one_class["accuracy"] == pytest.approx(1 / 3)
    assert one_class["balanced_accuracy"] == pytest.approx(1 / 3)  # specificity alone (sklearn)
    assert one_class["precision"] == 0.0 and one_class["recall"] == 0.0


def signal(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated model's probabilities and labels drawn from them."""
    rng = np.random.default_rng(seed)
    proba = 1 / (1 + np.exp(-rng.normal(-0.5, 1.5, n)))
    return (rng.random(n) < proba).astype(int), proba


def test_intervals_are_a_plain_bootstrap_with_sklearn() -> None:
    """The same resamples, scored by scikit-learn: each is rng.integers(0, n, n), positions in
    the rows sorted by probability, highest first (here the input order already)."""
    y, proba = dataset("ties", n=120, seed=4)
    order = np.argsort(-proba, kind="stable")
    y, proba = y[order], proba[order]
    resamples, seed = 40, 7
    rng = np.random.default_rng(seed)
    per_metric: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(resamples):
        rows = rng.integers(0, y.size, size=y.size)
        for name, value in sklearn_metrics(y[rows], proba[rows], 0.4).items():
            per_metric[name].append(value)
    got = bootstrap_intervals(y, proba, 0.4, resamples=resamples, seed=seed)
    for name in METRICS:
        low, high = np.percentile(per_metric[name], [2.5, 97.5])
        assert got[name] == pytest.approx((low, high), abs=1e-6), name


def test_intervals_do_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    y, proba = signal(500)
    whole = bootstrap_intervals(y, proba, 0.5, resamples=50)
    monkeypatch.setattr(bootstrap, "CHUNK_CELLS", 1)  # one resample at a time
    assert bootstrap_intervals(y, proba, 0.5, resamples=50) == whole


def test_intervals_contain_the_estimate_are_seeded_and_narrow_with_n() -> None:
    y, proba = signal(2000)
    point = score(y, proba, 0.5)
    got = bootstrap_intervals(y, proba, 0.5)
    assert list(got) == list(METRICS)
    for name in METRICS:
        low, high = got[name]
        assert low < point[name] < high, (name, low, point[name], high)
    assert bootstrap_intervals(y, proba, 0.5) == got
    assert bootstrap_intervals(y, proba, 0.5, seed=43) != got
    half = bootstrap_intervals(y, proba, 0.5, level=0.5)
    for name in METRICS:
        assert got[name][0] <= half[name][0] <= half[name][1] <= got[name][1], name

    y_big, proba_big = signal(32_000, seed=1)
    big = bootstrap_intervals(y_big, proba_big, 0.5, resamples=300)
    for name in METRICS:
        width, big_width = got[name][1] - got[name][0], big[name][1] - big[name][0]
        assert big_width < 0.5 * width, (name, width, big_width)  # ~1/4 expected: 1/sqrt(16)


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_gives_nan_auc_intervals(label: int) -> None:
    y = np.full(50, label)
    proba = np.linspace(0.05, 0.95, 50)
    got = bootstrap_intervals(y, proba, 0.5, resamples=100)
    for name in ("roc_auc", "pr_auc"):
        assert all(math.isnan(v) for v in got[name]), name
    for name in set(METRICS) - {"roc_auc", "pr_auc"}:
        assert all(math.isfinite(v) for v in got[name]), name
    assert got["accuracy"][0] < 0.5 < got["accuracy"][1]


def test_an_undefined_metric_in_half_the_resamples_or_more_has_no_interval() -> None:
    defined = np.arange(10.0)
    assert bootstrap.percentile_interval(defined, 0.95) == pytest.approx(
        tuple(np.percentile(defined, [2.5, 97.5]))
    )
    mostly_defined = np.append(defined, [np.nan] * 10)  # half remain: still an interval
    assert bootstrap.percentile_interval(mostly_defined, 0.95) == pytest.approx(
        tuple(np.percentile(defined, [2.5, 97.5]))
    )
    mostly_undefined = np.append(defined, [np.nan] * 11)
    assert all(math.isnan(v) for v in bootstrap.percentile_interval(mostly_undefined, 0.95))


def test_tiny_inputs_do_not_raise() -> None:
    got = bootstrap_intervals(np.array([1]), np.array([0.7]), 0.5, resamples=20)
    assert got["accuracy"] == (1.0, 1.0) and math.isnan(got["roc_auc"][0])
    got = bootstrap_intervals([0, 1], [0.2, 0.8], 0.5, resamples=200)
    assert got["accuracy"] == (1.0, 1.0)


@pytest.mark.parametrize(
    ("y", "proba"),
    [
        ([], []),
        ([0, 1], [0.5]),
        ([0, 2], [0.1, 0.2]),
        ([0, 1], [0.1, 1.5]),
        ([0, 1], [0.1, np.nan]),
    ],
)
def test_bad_inputs_are_refused(y: list[int], proba: list[float]) -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        bootstrap_intervals(y, proba, 0.5, resamples=10)


def test_1000_resamples_of_250k_rows_are_quick() -> None:
    """Evaluate runs this for every model: seconds, not minutes (sklearn calls: minutes).
    CPU time, so that other processes on the machine do not make it flaky (~4-7 s here)."""
    y, proba = signal(250_000)
    started = time.process_time()
    got = bootstrap_intervals(y, proba, 0.5)
    elapsed = time.process_time() - started
    assert elapsed < 20, f"{elapsed:.1f} s of CPU"
    assert all(high - low < 0.02 for low, high in got.values())
