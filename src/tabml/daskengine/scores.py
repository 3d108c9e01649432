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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# 10,000 bins: AUCs within about 1e-4 of the exact ones, 160 kB per partition.
HISTOGRAM_BINS = 10_000


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
    )


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
