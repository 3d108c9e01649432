"""A classifier's test scores from statistics that add up across partitions.

Each partition of a test split gives a :class:`ScoreStats` (:func:`score_stats`), small
and of fixed size; :func:`merge` adds them, and the metrics and curves come from the sum, so
no process ever holds every score:

- exact: the counts at the decision threshold (accuracy, balanced accuracy, precision,
  recall, f1, the confusion counts), the log loss and Brier score (sums of per-row terms,
  scikit-learn's own log loss per partition), and the calibration curve (scikit-learn's
  uniform bins, as per-bin sums);
- from a histogram of the scores of each class (:data:`HISTOGRAM_BINS` uniform bins of
  [0, 1]): ROC AUC, PR AUC (average precision) and the ROC and precision-recall curves.
  These are scikit-learn's values for the scores rounded down to a multiple of
  ``1/HISTOGRAM_BINS`` (scores sharing a bin count as tied, as scikit-learn counts equal
  scores); only pairs of rows whose scores fall into one bin are ranked differently.

The metric names, rounding and meaning are :func:`tabml.metrics.score`'s.

:func:`intervals` gives each metric its bootstrap 95% interval from the same statistics: a
bootstrap resample of the test rows is a multinomial draw of counts over the cells (class,
score bin, side of the threshold) that the rows fill, so the resamples need the cell counts,
never the rows. The threshold metrics' intervals are the row bootstrap's own; ROC AUC and PR
AUC are those of the binned scores, as their values; log loss and Brier score give each row
the mean loss of its cell (bins are 1e-4 wide: the spread inside a cell is left out).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# 10,000 bins: AUCs within about 1e-4 of the exact ones, 480 kB per partition.
HISTOGRAM_BINS = 10_000
# Resamples x cells drawn and scored at once by :func:`intervals`: bounds its memory.
CHUNK_CELLS = 1 << 20


@dataclass
class ScoreStats:
    """Additive statistics of positive-class probabilities against 0/1 labels."""

    neg: np.ndarray  # rows of class 0 per score bin (HISTOGRAM_BINS)
    pos: np.ndarray  # rows of class 1 per score bin
    tn: int  # counts at the decision threshold
    fp: int
    fn: int
    tp: int
    log_loss_sum: float
    brier_sum: float
    calibration_total: np.ndarray  # rows per calibration bin
    calibration_proba: np.ndarray  # sum of the probabilities per calibration bin
    calibration_pos: np.ndarray  # positive rows per calibration bin
    log_loss_bins: np.ndarray  # (2, HISTOGRAM_BINS) summed log loss per class and score bin
    brier_bins: np.ndarray  # (2, HISTOGRAM_BINS) summed squared error per class and score bin

    @property
    def n(self) -> int:
        return self.tn + self.fp + self.fn + self.tp


def score_bins(proba: np.ndarray) -> np.ndarray:
    """The histogram bin of each probability: ``floor(p * HISTOGRAM_BINS)``, 1.0 in the last."""
    import numpy as np

    scaled = np.floor(np.clip(proba, 0.0, 1.0) * HISTOGRAM_BINS).astype(np.int64)
    return np.minimum(scaled, HISTOGRAM_BINS - 1)


def score_stats(
    y: np.ndarray, proba: np.ndarray, threshold: float, calibration_bins: int
) -> ScoreStats:
    """The statistics of one partition: labels ``y`` (0/1), probabilities ``proba``."""
    import numpy as np
    from sklearn.metrics import log_loss

    from tabml.metrics import is_positive

    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    bins = score_bins(proba)
    predicted = is_positive(proba, threshold)
    positive = y == 1
    edges = np.linspace(0.0, 1.0, calibration_bins + 1)  # calibration_curve's uniform bins
    calibration = np.searchsorted(edges[1:-1], proba)
    # per-row losses as scikit-learn's log_loss computes them (clipped to [eps, 1 - eps])
    eps = np.finfo(np.float64).eps
    row_log_loss = -np.log(np.clip(np.where(positive, proba, 1 - proba), eps, 1 - eps))
    cell = bins + HISTOGRAM_BINS * y  # class-major (2, HISTOGRAM_BINS) cells
    return ScoreStats(
        neg=np.bincount(bins[~positive], minlength=HISTOGRAM_BINS),
        pos=np.bincount(bins[positive], minlength=HISTOGRAM_BINS),
        tn=int(np.sum(~positive & ~predicted)),
        fp=int(np.sum(~positive & predicted)),
        fn=int(np.sum(positive & ~predicted)),
        tp=int(np.sum(positive & predicted)),
        log_loss_sum=float(log_loss(y, proba, normalize=False, labels=[0, 1])) if len(y) else 0.0,
        brier_sum=float(np.sum((proba - y) ** 2)),
        calibration_total=np.bincount(calibration, minlength=calibration_bins),
        calibration_proba=np.bincount(calibration, weights=proba, minlength=calibration_bins),
        calibration_pos=np.bincount(calibration, weights=y, minlength=calibration_bins),
        log_loss_bins=_per_cell(cell, row_log_loss),
        brier_bins=_per_cell(cell, (proba - y) ** 2),
    )


def _per_cell(cell: np.ndarray, values: np.ndarray) -> np.ndarray:
    import numpy as np

    summed = np.bincount(cell, weights=values, minlength=2 * HISTOGRAM_BINS)
    return summed.reshape(2, HISTOGRAM_BINS)


def merge(parts: Iterable[ScoreStats]) -> ScoreStats:
    """The statistics of the union of the partitions."""
    parts = list(parts)
    if not parts:
        raise ValueError("no statistics to merge")
    total = parts[0]
    for part in parts[1:]:
        total = ScoreStats(
            neg=total.neg + part.neg,
            pos=total.pos + part.pos,
            tn=total.tn + part.tn,
            fp=total.fp + part.fp,
            fn=total.fn + part.fn,
            tp=total.tp + part.tp,
            log_loss_sum=total.log_loss_sum + part.log_loss_sum,
            brier_sum=total.brier_sum + part.brier_sum,
            calibration_total=total.calibration_total + part.calibration_total,
            calibration_proba=total.calibration_proba + part.calibration_proba,
            calibration_pos=total.calibration_pos + part.calibration_pos,
            log_loss_bins=total.log_loss_bins + part.log_loss_bins,
            brier_bins=total.brier_bins + part.brier_bins,
        )
    return total


def _ranked(stats: ScoreStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin, cumulative true positives, cumulative false positives) at each non-empty bin,
    from the highest scores down: the distinct thresholds of the binned scores."""
    import numpy as np

    pos, neg = stats.pos[::-1], stats.neg[::-1]
    occupied = (pos + neg) > 0
    bins = np.arange(HISTOGRAM_BINS)[::-1][occupied]
    return bins, np.cumsum(pos)[occupied], np.cumsum(neg)[occupied]


def roc_curve(stats: ScoreStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, threshold) from the strictest threshold (1.0, nothing positive) down to
    the lowest occupied bin; a bin's threshold is its lower edge."""
    import numpy as np

    bins, tps, fps = _ranked(stats)
    positives, negatives = max(int(stats.pos.sum()), 1), max(int(stats.neg.sum()), 1)
    fpr = np.concatenate([[0.0], fps / negatives])
    tpr = np.concatenate([[0.0], tps / positives])
    threshold = np.concatenate([[1.0], bins / HISTOGRAM_BINS])
    return fpr, tpr, threshold


def pr_curve(stats: ScoreStats) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) in scikit-learn's order: thresholds ascending, ending with
    precision 1 at recall 0."""
    import numpy as np

    _, tps, fps = _ranked(stats)
    positives = max(int(stats.pos.sum()), 1)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / positives
    return np.concatenate([precision[::-1], [1.0]]), np.concatenate([recall[::-1], [0.0]])


def roc_auc(stats: ScoreStats) -> float:
    """Area under the ROC curve of the binned scores (trapezoids: ties count half)."""
    import numpy as np

    fpr, tpr, _ = roc_curve(stats)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(stats: ScoreStats) -> float:
    """Average precision (scikit-learn's PR AUC, no interpolation) of the binned scores."""
    import numpy as np

    _, tps, fps = _ranked(stats)
    positives = max(int(stats.pos.sum()), 1)
    recall = np.concatenate([[0.0], tps / positives])
    precision = tps / np.maximum(tps + fps, 1)
    return float(np.sum(np.diff(recall) * precision))


def calibration(stats: ScoreStats) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of positives, mean probability) per non-empty calibration bin, as
    :func:`sklearn.calibration.calibration_curve` (uniform strategy) returns them."""
    nonzero = stats.calibration_total != 0
    total = stats.calibration_total[nonzero]
    return stats.calibration_pos[nonzero] / total, stats.calibration_proba[nonzero] / total


def metrics(stats: ScoreStats) -> dict[str, float]:
    """The test metrics of :func:`tabml.metrics.score`, same names and rounding."""
    n = max(stats.n, 1)
    tp, fp, tn, fn = stats.tp, stats.fp, stats.tn, stats.fn
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    present = [r for r, k in ((recall, tp + fn), (specificity, tn + fp)) if k]
    values = {
        "accuracy": (tp + tn) / n,
        "balanced_accuracy": sum(present) / len(present) if present else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "roc_auc": roc_auc(stats),
        "pr_auc": average_precision(stats),
        "log_loss": stats.log_loss_sum / n,
        "brier": stats.brier_sum / n,
    }
    return {k: round(float(v), 6) for k, v in values.items()}


# --- bootstrap intervals -------------------------------------------------------------------


@dataclass(frozen=True)
class Cells:
    """The occupied cells (class, score bin, side of the threshold) of the test rows, from
    the highest bin down: what a bootstrap resample redistributes the rows over."""

    count: np.ndarray  # (K,) rows in each cell
    positive: np.ndarray  # (K,) the cell holds class-1 rows
    above: np.ndarray  # (K,) its rows are predicted positive (at or above the threshold)
    bin_start: np.ndarray  # index of the first cell of each distinct score bin
    log_loss: np.ndarray  # (K,) mean log loss of a row of the cell
    brier: np.ndarray  # (K,) mean squared error of a row of the cell


def cells(stats: ScoreStats, threshold: float) -> Cells:
    """The cells of the statistics' rows. Scores at or above the threshold fall in its bin
    or higher ones (rounding is monotone), so the counts at the threshold tell how the
    threshold's own bin splits; every other bin lies wholly on one side."""
    import numpy as np

    top = int(score_bins(np.array([threshold], dtype=np.float64))[0])
    hist = np.vstack([stats.neg, stats.pos]).astype(np.int64)  # (class, bin)
    upper = np.array([stats.fp, stats.tp]) - hist[:, top + 1 :].sum(axis=1)
    if (upper < 0).any() or (upper > hist[:, top]).any():
        raise ValueError("score statistics disagree with their counts at the threshold")
    # one column per bin, and one more for the upper part of the threshold's bin
    counts = np.hstack([hist, upper[:, np.newaxis]])
    counts[:, top] -= upper
    klass = np.repeat([0, 1], HISTOGRAM_BINS + 1)
    bins = np.tile(np.r_[np.arange(HISTOGRAM_BINS), top], 2)
    above = np.tile(np.r_[np.arange(HISTOGRAM_BINS) > top, True], 2)
    count = counts.ravel()
    keep = np.flatnonzero(count > 0)
    keep = keep[np.argsort(-bins[keep], kind="stable")]  # highest bin first
    klass, bins = klass[keep], bins[keep]
    rows = hist[klass, bins]  # rows of the cell's class in its bin: the loss sums' rows
    return Cells(
        count=count[keep],
        positive=klass == 1,
        above=above[keep],
        bin_start=np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]]),
        log_loss=stats.log_loss_bins[klass, bins] / rows,
        brier=stats.brier_bins[klass, bins] / rows,
    )


def cell_metrics(c: Cells, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of METRICS for each row of ``counts`` (rows per cell, one resample a
    row), unrounded: :func:`metrics`' arithmetic, vectorised. ROC AUC and PR AUC are nan
    for a resample holding one class only."""
    import numpy as np

    def total(mask: np.ndarray) -> np.ndarray:
        return counts[:, mask].sum(axis=1)

    tp, fp = total(c.positive & c.above), total(~c.positive & c.above)
    fn, tn = total(c.positive & ~c.above), total(~c.positive & ~c.above)
    n, n_pos, n_neg = tp + fp + fn + tn, tp + fn, tn + fp
    pos = np.add.reduceat(counts * c.positive, c.bin_start, axis=1)  # per bin, highest first
    neg = np.add.reduceat(counts * ~c.positive, c.bin_start, axis=1)
    tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    both = (n_pos > 0) & (n_neg > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # pairs a positive wins (negatives in lower bins), ties in its bin counting half
        pairs = np.einsum("ij,ij->i", pos, n_neg[:, np.newaxis] - fps) + 0.5 * np.einsum(
            "ij,ij->i", pos, neg
        )
        precision_at = tps / np.maximum(tps + fps, 1)
        recall = np.where(n_pos > 0, tp / n_pos, 0.0)
        specificity = np.where(n_neg > 0, tn / n_neg, 0.0)
        present = (n_pos > 0) * 1.0 + (n_neg > 0)
        return {
            "accuracy": (tp + tn) / n,
            "balanced_accuracy": (recall * (n_pos > 0) + specificity * (n_neg > 0)) / present,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": recall,
            "f1": np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            "roc_auc": np.where(both, pairs / (n_pos * n_neg), np.nan),
            "pr_auc": np.where(both, np.einsum("ij,ij->i", pos, precision_at) / n_pos, np.nan),
            "log_loss": counts @ c.log_loss / n,
            "brier": counts @ c.brier / n,
        }


def intervals(
    stats: ScoreStats,
    threshold: float,
    *,
    resamples: int = 1000,
    seed: int = 42,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """For every metric of METRICS, the (low, high) percentiles at ``level`` over
    ``resamples`` bootstrap resamples of the rows (module docstring), rounded as
    :func:`metrics`: each resample a multinomial draw of the rows over the cells. The
    intervals :func:`tabml.bootstrap.bootstrap_intervals` computes from the rows, up to the
    binning (module docstring), with its rule for undefined values
    (:func:`tabml.bootstrap.metric_intervals`). The cost grows with the occupied cells
    (at most 2 x (HISTOGRAM_BINS + 1)), not with the rows: seconds for any test split."""
    import numpy as np

    from tabml.bootstrap import metric_intervals
    from tabml.metrics import METRICS

    c = cells(stats, threshold)
    n = int(c.count.sum())
    if n == 0:
        return {name: (math.nan, math.nan) for name in METRICS}
    rng = np.random.default_rng(seed)
    share = c.count / n
    per_chunk = max(1, min(resamples, CHUNK_CELLS // c.count.size))
    values = {name: np.empty(resamples) for name in METRICS}
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        for name, chunk in cell_metrics(c, rng.multinomial(n, share, size=size)).items():
            values[name][start : start + size] = chunk
    return metric_intervals(values, level)
