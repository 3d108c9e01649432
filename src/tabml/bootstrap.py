"""Bootstrap percentile intervals of every test metric, fast enough to run for every model.

Evaluate reports each metric of :func:`tabml.metrics.score` with the percentiles of that metric
over bootstrap resamples of the test rows. A resample is a vector of multiplicities of the
rows; every metric is computed from weighted cumulative sums in one sorted order, exactly as
scikit-learn computes it with ``sample_weight`` (:func:`weighted_metrics` is tested against it).

numpy loads inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabml.metrics import METRICS, is_positive

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy as np

# Resample x row counts handled at once: bounds memory, and keeps each array in cache.
CHUNK_CELLS = 1 << 18


@dataclass(frozen=True)
class _Table:
    """The rows sorted by probability, highest first (stable). A group of tied probabilities
    is one threshold of the ROC and PR curves; only the groups holding a positive row (the
    "steps", where recall rises) enter ROC AUC and average precision. The rows predicted
    positive are a prefix."""

    order: np.ndarray  # (n,) input row of each sorted position
    positive_rows: np.ndarray  # (P,) sorted positions of the positive rows
    step_last: np.ndarray | None  # (S,) last positive row (index in positive_rows) per step;
    # None: each positive row is a step of its own
    step_end: np.ndarray  # (S,) last sorted position of each step's group
    step_before: np.ndarray | None  # (S,) sorted position just above each step's group, when
    # some group holds both classes (such pairs count 1/2 in ROC AUC); else None
    predicted: int  # rows at or above the threshold (tabml.metrics.is_positive)
    predicted_positive_rows: int  # positive rows among them
    losses: np.ndarray  # (2, n) log loss and squared error of each sorted row


def _table(
    y: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray, threshold: float
) -> _Table:
    import numpy as np

    labels, p = np.asarray(y), np.asarray(proba)
    if labels.ndim != 1 or p.shape != labels.shape or labels.size == 0:
        raise ValueError(
            "bootstrap: y and proba must be non-empty 1-D arrays of one length, "
            f"got shapes {labels.shape} and {p.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("bootstrap: y must hold 0/1 labels only")
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    if not (np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1):
        raise ValueError("bootstrap: proba must hold probabilities in [0, 1]")

    order = np.argsort(-p, kind="stable")
    p, positive = p[order], labels[order].astype(bool)
    new_group = np.append(True, p[1:] != p[:-1])
    group_of_row = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:] - 1, p.size - 1)
    positive_rows = np.flatnonzero(positive)
    group_of_positive = group_of_row[positive_rows]
    step_last = np.flatnonzero(np.diff(group_of_positive, append=p.size))  # p.size: no group
    step_groups = group_of_positive[step_last]
    positives_per_step = np.diff(step_last, prepend=-1)
    mixed = bool((positives_per_step < ends[step_groups] - starts[step_groups] + 1).any())
    predicted = int(np.count_nonzero(is_positive(p, threshold)))

    # Per-row losses as scikit-learn computes them, in the probabilities' own dtype: log loss
    # clips [1 - p, p] to [eps, 1 - eps] (eps of that dtype: float32 clips at 1.2e-7).
    eps = np.finfo(p.dtype).eps
    log_loss = -np.log(np.clip(np.where(positive, p, 1 - p), eps, 1 - eps))
    brier = (positive.astype(p.dtype) - p) ** 2
    return _Table(
        order=order,
        positive_rows=positive_rows,
        step_last=None if step_last.size == positive_rows.size else step_last,
        step_end=ends[step_groups],
        step_before=starts[step_groups] - 1 if mixed else None,
        predicted=predicted,
        predicted_positive_rows=int(np.searchsorted(positive_rows, predicted)),
        losses=np.vstack([log_loss, brier]).astype(np.float64),
    )


# Hand-written, not sklearn: its per-call validation and sorting, 9 metrics x 1000 resamples,
# would cost seconds to minutes per model; here one sort serves every resample.
def _metrics(
    table: _Table,
    counts: np.ndarray,
    scratch: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric for each row of ``counts`` (weights of the sorted rows), from cumulative
    sums; ``counts`` is overwritten. ``scratch``, 4 x counts.size of counts' dtype and
    counts.size floats, is reused across chunks: fresh multi-megabyte temporaries page-fault
    on every call. Integer counts (resamples) keep the sums exact and fast.
    """
    import numpy as np

    m, n = counts.shape
    if scratch is None:
        scratch = (np.empty((4, counts.size), counts.dtype), np.empty(counts.size))
    same, floats = scratch

    def buffer(i: int, width: int) -> np.ndarray:
        return (same[i] if i < 4 else counts.reshape(-1))[: m * width].reshape(m, width)

    as_float = floats[: counts.size].reshape(m, n)
    np.copyto(as_float, counts)
    # einsum, not matmul: a threaded BLAS call costs milliseconds on a busy machine.
    log_loss_sum = np.einsum("ij,j->i", as_float, table.losses[0])
    brier_sum = np.einsum("ij,j->i", as_float, table.losses[1])

    positives = table.positive_rows.size
    seen_rows = np.cumsum(counts, axis=1, out=buffer(0, n))  # weight at or above each row
    pos_rows = np.take(counts, table.positive_rows, axis=1, out=buffer(1, positives), mode="clip")
    tp_rows = np.cumsum(pos_rows, axis=1, out=buffer(2, positives))  # positives at or above
    total = seen_rows[:, -1].copy()
    n_pos = tp_rows[:, -1].copy() if positives else np.zeros(m, counts.dtype)
    n_neg = total - n_pos
    k, kp = table.predicted, table.predicted_positive_rows
    tp_t = tp_rows[:, kp - 1].copy() if kp else np.zeros(m, counts.dtype)
    seen_t = seen_rows[:, k - 1].copy() if k else np.zeros(m, counts.dtype)

    # The steps: tp and seen at the end of each group holding positives, pos its positives.
    steps = table.step_end.size
    if table.step_last is None:
        tp, pos = tp_rows, pos_rows
    else:
        tp = np.take(tp_rows, table.step_last, axis=1, out=buffer(3, steps), mode="clip")
        pos = buffer(1, steps)
        if steps:
            pos[:, 0] = tp[:, 0]
            np.subtract(tp[:, 1:], tp[:, :-1], out=pos[:, 1:])
    seen = np.take(seen_rows, table.step_end, axis=1, out=buffer(4, steps), mode="clip")
    both = (n_pos > 0) & (n_neg > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # ROC AUC: P(a positive scores above a negative), a tie counting 1/2 -- the area under
        # sklearn's ROC curve. A step's positives beat the negatives below its group:
        # n_neg - (seen - tp), and tie with the negatives inside it: seen - before - pos.
        pos_seen = np.einsum("ij,ij->i", pos, seen)
        pos_tp = np.einsum("ij,ij->i", pos, tp)
        pairs = (n_pos * n_neg - pos_seen + pos_tp).astype(np.float64)
        if table.step_before is not None:
            spare = buffer(3 if table.step_last is None else 2, steps)  # tp is in the other
            before = np.take(seen_rows, table.step_before, axis=1, out=spare, mode="clip")
            before[:, table.step_before < 0] = 0
            tied = pos_seen - np.einsum("ij,ij->i", pos, before) - np.einsum("ij,ij->i", pos, pos)
            pairs += 0.5 * tied
        roc_auc = np.where(both, pairs / (n_pos * n_neg), np.nan)
        # Average precision: the sum over steps of recall step x precision there.
        floor = np.finfo(np.float64).tiny if counts.dtype.kind == "f" else 1
        seen_at_least = np.maximum(seen, floor, out=buffer(0, steps))
        precision_at = np.divide(tp, seen_at_least, out=as_float[:, :steps])
        pr_auc = np.where(both, np.einsum("ij,ij->i", pos, precision_at) / n_pos, np.nan)

        fp_t = seen_t - tp_t
        fn_t, tn_t = n_pos - tp_t, n_neg - fp_t
        recall = np.where(n_pos > 0, tp_t / n_pos, 0.0)
        specificity = np.where(n_neg > 0, tn_t / n_neg, 0.0)
        # sklearn averages the recalls of the classes present (weight > 0) only.
        present = (n_pos > 0) * 1.0 + (n_neg > 0)
        balanced = (recall * (n_pos > 0) + specificity * (n_neg > 0)) / present
        precision = np.where(seen_t > 0, tp_t / seen_t, 0.0)  # zero_division=0
        f1_denominator = 2 * tp_t + fp_t + fn_t
        f1 = np.where(f1_denominator > 0, 2 * tp_t / f1_denominator, 0.0)
    return {
        "accuracy": (tp_t + tn_t) / total,
        "balanced_accuracy": balanced,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "log_loss": log_loss_sum / total,
        "brier": brier_sum / total,
    }


def weighted_metrics(
    y: Sequence[int] | np.ndarray,
    proba: Sequence[float] | np.ndarray,
    threshold: float,
    sample_weight: Sequence[float] | np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of :func:`tabml.metrics.score` with rows weighted as scikit-learn's
    ``sample_weight`` weights them (unrounded). ROC AUC and PR AUC are nan when the weighted
    rows hold one class only. The bootstrap's arithmetic, exposed so it can be checked."""
    import numpy as np

    table = _table(y, proba, threshold)
    weights = (
        np.ones(table.order.size, np.int64) if sample_weight is None else np.asarray(sample_weight)
    )
    if (
        weights.shape != table.order.shape
        or weights.dtype.kind not in "biuf"
        or (weights < 0).any()
    ):
        raise ValueError("bootstrap: sample_weight must be one non-negative weight per row")
    # Integer weights (multiplicities) take the resamples' exact integer path.
    dtype = np.float64 if weights.dtype.kind == "f" else np.int64
    values = _metrics(table, weights[table.order].astype(dtype)[np.newaxis, :])
    return {name: float(values[name][0]) for name in METRICS}


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the defined (non-nan) values; (nan, nan)
    when fewer than half of them are defined, too few to say anything."""
    import numpy as np

    defined = values[~np.isnan(values)]
    if defined.size == 0 or 2 * defined.size < values.size:
        return (math.nan, math.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return (float(low), float(high))


def metric_intervals(
    values: Mapping[str, np.ndarray], level: float
) -> dict[str, tuple[float, float]]:
    """{metric: (low, high)} of each metric's resampled values, in METRICS order, rounded to
    6 decimals as the metrics are (the Dask engine's intervals end here too)."""
    intervals = {}
    for name in METRICS:
        low, high = percentile_interval(values[name], level)
        intervals[name] = (round(low, 6), round(high, 6))
    return intervals


def bootstrap_intervals(
    y: Sequence[int] | np.ndarray,
    proba: Sequence[float] | np.ndarray,
    threshold: float,
    *,
    resamples: int = 1000,
    seed: int = 42,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """For every metric of METRICS, the (low, high) percentiles at ``level`` of that metric over
    ``resamples`` bootstrap resamples of the rows (n draws with replacement each, positions in
    the rows sorted by probability), rounded like
    :func:`tabml.metrics.score`. A resample with one class leaves ROC AUC / PR AUC out;
    (nan, nan) when fewer than half the resamples define them. Deterministic for a seed."""
    import numpy as np

    if resamples < 1 or not 0 < level < 1:
        raise ValueError(
            f"bootstrap: resamples must be >= 1 and level in (0, 1), got {resamples}, {level}"
        )
    table = _table(y, proba, threshold)
    n = table.order.size
    per_chunk = max(1, min(resamples, CHUNK_CELLS // n))
    rng = np.random.default_rng(seed)
    values = {name: np.empty(resamples) for name in METRICS}
    counts = np.empty((per_chunk, n), dtype=np.int64)
    scratch = (np.empty((4, counts.size), dtype=np.int64), np.empty(counts.size))
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        for i in range(size):  # a resample: n sorted positions drawn with replacement, counted
            counts[i] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        for name, chunk in _metrics(table, counts[:size], scratch).items():
            values[name][start : start + size] = chunk
    return metric_intervals(values, level)
