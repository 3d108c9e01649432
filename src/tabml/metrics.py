"""The test metrics: their names, which way is better, and how they are computed.

The evaluate stage writes them to ``metrics/test/``; ``POST /validate`` computes the same
numbers for an uploaded file. scikit-learn loads only when scoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
)
# Metrics where a smaller value is better; leaderboards sort these ascending.
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "brier"})
# The scikit-learn scorer of each metric (permutation importance scores with it).
SCORERS: dict[str, str] = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
    "log_loss": "neg_log_loss",
    "brier": "neg_brier_score",
}


def is_positive(proba: np.ndarray, threshold: float) -> np.ndarray:
    """The decision rule: the positive class where its probability reaches ``threshold``."""
    return proba >= threshold


def score(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Every test metric of positive-class probabilities ``proba`` against 0/1 labels ``y``."""
    from sklearn import metrics as m

    pred = is_positive(proba, threshold).astype(int)
    values = {
        "accuracy": m.accuracy_score(y, pred),
        "balanced_accuracy": m.balanced_accuracy_score(y, pred),
        "precision": m.precision_score(y, pred, zero_division=0),
        "recall": m.recall_score(y, pred, zero_division=0),
        "f1": m.f1_score(y, pred, zero_division=0),
        "roc_auc": m.roc_auc_score(y, proba),
        "pr_auc": m.average_precision_score(y, proba),
        "log_loss": m.log_loss(y, proba, labels=[0, 1]),
        "brier": m.brier_score_loss(y, proba),
    }
    return {k: round(float(v), 6) for k, v in values.items()}
