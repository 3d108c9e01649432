"""Cross-validation on the train split: choosing models and thresholds without the test set.

Pure cores. ``train`` runs :func:`cross_validate` on every model (stratified k folds of the
train split, ``train.cv_folds`` of them, seeded by ``split.seed``; at most ``train.cv_rows``
rows, a stratified sample beyond), stores the out-of-fold probabilities beside the model and a
summary (:func:`cv_summary`) in its card, and picks the decision threshold from them
(:func:`choose_threshold`). ``evaluate`` ranks the models by the CV mean
(:func:`tabml.evaluation.leaderboard`), so the test split is only ever used to report.

numpy and scikit-learn load inside the functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError
from tabml.metrics import METRICS, score

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.artifact import Decision
    from tabml.params import EvaluateParams

log = logging.getLogger("tabml.cv")

# Simplest first: within one standard error of the best CV mean, the simplest model wins.
# lr: one weight per feature; xgb: shallow boosted trees, early-stopped; rf: deep full trees.
SIMPLICITY: tuple[str, ...] = ("lr", "xgb", "rf")


@dataclass(frozen=True)
class CvResult:
    """Out-of-fold predictions: for each cross-validated train row, the probability from the
    model that did not see it."""

    rows: np.ndarray  # row numbers in the train split, ascending
    fold: np.ndarray  # the fold (0..k-1) each row was held out in
    y: np.ndarray  # 0/1 labels
    proba: np.ndarray  # out-of-fold P(positive)
    folds: int
    seed: int

    def frame(self) -> pd.DataFrame:
        """The out-of-fold file's contents: row, fold, y, proba."""
        import pandas as pd

        return pd.DataFrame(
            {"row": self.rows, "fold": self.fold, "y": self.y, "proba": self.proba.round(9)}
        )


def cv_sample(y: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """Row numbers to cross-validate on: all rows, or a stratified seeded sample of
    ``max_rows`` (ascending), so CV costs at most k fits of that many rows."""
    import numpy as np

    n = len(y)
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    rows, _ = train_test_split(np.arange(n), train_size=max_rows, random_state=seed, stratify=y)
    return np.sort(rows)


def fold_ids(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold of each row: stratified, shuffled with ``seed`` (the split seed)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(np.asarray(y, dtype=int), minlength=2)
    if counts.min() < k:
        raise DataError(
            f"the train split has {int(counts.min())} rows of its rarer class, fewer than "
            f"train.cv_folds={k}: lower train.cv_folds (at least 2) or add data"
        )
    ids = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held_out) in enumerate(splitter.split(np.zeros(len(y)), y)):
        ids[held_out] = i
    return ids


def cross_validate(
    fit: Callable[[Any, np.ndarray], Any],
    X: Any,
    y: np.ndarray,
    *,
    k: int,
    seed: int,
    max_rows: int | None = None,
    label: str = "",
) -> CvResult:
    """Out-of-fold probabilities of the training procedure ``fit`` (features, labels) ->
    fitted estimator with ``predict_proba``. The whole procedure is cross-validated
    (early stopping, calibration), so the estimate is of what ``train`` ships."""
    import numpy as np

    y = np.asarray(y)
    rows = cv_sample(y, max_rows, seed)
    X_cv, y_cv = (X[rows], y[rows]) if len(rows) < len(y) else (X, y)
    fold = fold_ids(y_cv, k, seed)
    proba = np.empty(len(rows), dtype=np.float64)
    started = time.monotonic()
    for i in range(k):
        held_out = fold == i
        estimator = fit(X_cv[~held_out], y_cv[~held_out])
        proba[held_out] = estimator.predict_proba(X_cv[held_out])[:, 1]
        log.info(
            "cv fold %d/%d%s: %d rows held out (%.1f s)",
            i + 1,
            k,
            f" of {label}" if label else "",
            int(held_out.sum()),
            time.monotonic() - started,
        )
    return CvResult(rows, fold, y_cv.astype(np.int64), proba, k, seed)


def _counts(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct probabilities (descending) and, predicting positive at or above each, the
    true and false positive counts."""
    import numpy as np

    order = np.argsort(-proba, kind="stable")
    p, yy = proba[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p) != 0), len(p) - 1]  # end of each run of ties
    tp = np.cumsum(yy)[last]
    fp = (last + 1) - tp
    return p[last], tp, fp


def choose_threshold(
    y: np.ndarray, proba: np.ndarray, costs: Mapping[str, float] | None = None
) -> float:
    """The decision threshold (positive where P >= threshold) that maximises F1 on the
    out-of-fold predictions, or, given ``costs`` (``false_positive``, ``false_negative``),
    minimises the total cost. It lies halfway between the last probability predicted
    positive and the next one down, so it does not sit on a training row's value."""
    import numpy as np

    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    values, tp, fp = _counts(y, proba)
    positives = int(y.sum())
    fn = positives - tp
    if costs is None:
        objective = -(2 * tp) / np.maximum(2 * tp + fp + fn, 1)
    else:
        objective = costs["false_positive"] * fp + costs["false_negative"] * fn
        # predicting nothing positive is a choice too: cost of every positive missed
        nothing = costs["false_negative"] * positives
        if nothing < objective.min():
            return float(round((values[0] + 1.0) / 2, 6))
    best = int(np.argmin(objective))  # first minimum: the highest such threshold
    below = values[best + 1] if best + 1 < len(values) else 0.0
    return float(round((values[best] + below) / 2, 6))


def cv_summary(result: CvResult, threshold: float) -> dict[str, Any]:
    """What a model card records of its CV: folds, seed, rows, and per metric the mean, the
    standard deviation (ddof 1) and the value of each fold. Threshold-dependent metrics use
    the chosen ``threshold``."""
    import numpy as np

    per_fold = [
        score(result.y[result.fold == i], result.proba[result.fold == i], threshold)
        for i in range(result.folds)
    ]
    metrics = {}
    for name in METRICS:
        values = np.array([fold[name] for fold in per_fold])
        metrics[name] = {
            "mean": round(float(values.mean()), 6),
            "std": round(float(values.std(ddof=1)), 6),
            "values": [round(float(v), 6) for v in values],
        }
    return {
        "folds": result.folds,
        "seed": result.seed,
        "rows": len(result.rows),
        "metrics": metrics,
    }


def decision(result: CvResult, evaluate: EvaluateParams) -> Decision:
    """The decision rule of a cross-validated model, as both engines record it in its card:
    ``evaluate.threshold`` as given, or with ``auto`` the threshold :func:`choose_threshold`
    picks on the out-of-fold predictions (max F1, or least cost with ``evaluate.costs``);
    the rule in words, and the CV summary at that threshold."""
    from tabml.artifact import Decision

    rule, costs = evaluate.threshold, evaluate.costs
    if rule == "auto":
        threshold = choose_threshold(result.y, result.proba, costs.model_dump() if costs else None)
        how = (
            f"auto: least cost (false positive {costs.false_positive:g}, false negative "
            f"{costs.false_negative:g}) on out-of-fold predictions"
            if costs
            else "auto: max F1 on out-of-fold predictions"
        )
    else:
        threshold, how = float(rule), f"fixed: evaluate.threshold {float(rule):g}"
    return Decision(threshold, how, cv_summary(result, threshold))
