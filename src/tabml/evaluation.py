"""Scoring a model on labelled raw rows: metrics, plot data and the leaderboard (pure cores).

The evaluate stage (``stages/evaluate.py``) reads the test split and the models and writes
what these functions return, one :class:`Scored` per model. Another engine (Dask) computes
the curves' arrays its own way (from histograms of scores) and builds the same plot data
with :func:`curve_frames`; it reuses :func:`importance`, :func:`loss_curve` and the
leaderboard as they are.

Everything it returns stays small at any test size, so the plot data committed to git does
not grow with the data:

- ROC and precision-recall curves keep at most ``evaluate.curve_points`` of their points
  (:func:`downsample`: the end points and the corners that shape the curve, exact values);
- the confusion data is one row per (actual, predicted) pair with its count (4 rows);
- permutation importance runs on a stratified, seeded sample of at most
  ``evaluate.importance_rows`` rows (:func:`stratified_sample`) with
  ``evaluate.n_jobs`` threads, so its cost does not grow with the test split and
  its result does not depend on the number of threads.

Heavy libraries (numpy, pandas, scikit-learn, joblib) load inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError
from tabml.layout import parse_model_id
from tabml.metrics import LOWER_IS_BETTER, SCORERS, is_positive, score

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.model import Model
    from tabml.params import EvaluateParams
    from tabml.schema import Batch

CURVE_TOPICS = ("roc", "pr", "confusion", "calibration")  # from the probabilities
PLOT_TOPICS = (*CURVE_TOPICS, "importance")  # for every model
LOSS_TOPIC = "loss"  # only for models with a per-round history (xgb)
# Every plot-data directory evaluate@<dataset> writes (each exists after the stage, empty
# when no model has that topic): dvc.yaml declares them all as outputs.
TOPICS = (*PLOT_TOPICS, LOSS_TOPIC)
# What the plot and report stages read of a leaderboard and of each of its models: a board
# without one of them is from an older evaluate (check_board).
BOARD_KEYS = (
    "metric",
    "higher_is_better",
    "rule",
    "champion",
    "champion_model",
    "reason",
    "ranking",
    "models",
)
BOARD_MODEL_KEYS = (
    "model_id",
    "cv_mean",
    "cv_std",
    "test",
    "test_low",
    "test_high",
    "threshold",
    "threshold_rule",
    "calibration",
)


@dataclass(frozen=True)
class Scored:
    """One model scored on a test split: what evaluate writes for it.

    ``plots`` maps a topic of :data:`TOPICS` to its plot data (``loss`` only for models
    that train in rounds).
    """

    model_id: str
    metrics: dict[str, Any]
    plots: dict[str, pd.DataFrame]


# --- plot data -----------------------------------------------------------------------------


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of at most ``max_points`` points of the polyline (x, y) that keep
    its shape: both end points, then repeatedly the point farthest from the line between
    its kept neighbours (Ramer-Douglas-Peucker with a point budget). Kept points are the
    curve's own, never interpolated ones; a curve that already fits is returned whole.
    """
    import heapq

    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    if max_points < 2:
        raise ValueError("max_points must be at least 2 (the end points)")

    def farthest(start: int, end: int) -> tuple[float, int, int, int]:
        """(-distance, index, start, end) of the interior point farthest from the chord."""
        dx, dy = x[end] - x[start], y[end] - y[start]
        px, py = x[start + 1 : end] - x[start], y[start + 1 : end] - y[start]
        length = float(np.hypot(dx, dy))
        # distance to the chord's line; to its one point when the chord is closed
        distance = np.abs(px * dy - py * dx) / length if length > 0 else np.hypot(px, py)
        distance = np.nan_to_num(distance, nan=0.0)
        i = int(np.argmax(distance))
        return -float(distance[i]), start + 1 + i, start, end

    keep = [0, n - 1]
    heap = [farthest(0, n - 1)]
    while heap and len(keep) < max_points:
        negative, index, start, end = heapq.heappop(heap)
        if negative == 0.0:
            break  # every remaining point lies on the kept polyline
        keep.append(index)
        for a, b in ((start, index), (index, end)):
            if b - a > 1:
                heapq.heappush(heap, farthest(a, b))
    return np.array(sorted(keep))


def confusion_frame(matrix: Any, classes: Sequence[str]) -> pd.DataFrame:
    """The confusion plot data of a 2x2 count matrix (rows actual, columns predicted, class
    order of ``classes``): one row per class pair, zeros included, 4 rows at any test size.

    DVC draws it with the ``confusion_counts`` template (``.dvc/plots/``), which sums the
    ``count`` column (DVC's own ``confusion`` template counts rows).
    """
    import numpy as np
    import pandas as pd

    counts = np.asarray(matrix, dtype=np.int64)
    if counts.shape != (2, 2):
        raise ValueError(f"expected a 2x2 confusion matrix, got shape {counts.shape}")
    return pd.DataFrame(
        {
            "actual": [classes[a] for a in (0, 0, 1, 1)],
            "predicted": [classes[p] for p in (0, 1, 0, 1)],
            "count": counts.ravel(),
        }
    )


def confusion_counts(y: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """:func:`confusion_frame` of 0/1 labels ``y`` against 0/1 predictions."""
    from sklearn.metrics import confusion_matrix

    return confusion_frame(confusion_matrix(y, predicted, labels=[0, 1]), classes)


def curve_frames(
    *,
    roc: tuple[Any, Any, Any],
    pr: tuple[Any, Any],
    calibration: tuple[Any, Any],
    confusion: Any,
    classes: Sequence[str],
    curve_points: int,
) -> dict[str, pd.DataFrame]:
    """The plot data of one model from its curves and confusion matrix, whichever engine
    computed them: the one home of the columns, the downsampling and the rounding.

    ``roc`` is (fpr, tpr, thresholds), ``pr`` (recall, precision) in scikit-learn's order
    (recall descending: the first point predicts every row positive), ``calibration``
    (mean predicted, fraction positive) per bin, ``confusion`` the 2x2 counts (rows actual).
    """
    import numpy as np
    import pandas as pd

    fpr, tpr, threshold = (np.asarray(a, dtype=float) for a in roc)
    recall, precision = (np.asarray(a, dtype=float) for a in pr)
    mean_predicted, fraction_positive = calibration
    roc_frame = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(threshold, 1.0)})
    pr_frame = pd.DataFrame({"recall": recall, "precision": precision})
    return {
        "roc": roc_frame.iloc[downsample(fpr, tpr, curve_points)].reset_index(drop=True).round(6),
        "pr": pr_frame.iloc[downsample(recall, precision, curve_points)]
        .reset_index(drop=True)
        .round(6),
        "confusion": confusion_frame(confusion, classes),
        "calibration": pd.DataFrame(
            {"mean_predicted": mean_predicted, "fraction_positive": fraction_positive}
        ).round(6),
    }


def curves(
    y: np.ndarray,
    proba: np.ndarray,
    classes: tuple[str, str],
    params: EvaluateParams,
    threshold: float,
) -> dict[str, pd.DataFrame]:
    """Plot data for DVC and the figures (ROC, precision-recall, confusion counts at the
    model's ``threshold``, calibration), all from one array of positive-class
    probabilities."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    fpr, tpr, thresholds = roc_curve(y, proba)  # drops collinear points itself
    precision, recall, _ = precision_recall_curve(y, proba, drop_intermediate=True)
    fraction_positive, mean_predicted = calibration_curve(y, proba, n_bins=params.calibration_bins)
    predicted = is_positive(proba, threshold).astype(int)
    return curve_frames(
        roc=(fpr, tpr, thresholds),
        pr=(recall, precision),
        calibration=(mean_predicted, fraction_positive),
        confusion=confusion_matrix(y, predicted, labels=[0, 1]),
        classes=classes,
        curve_points=params.curve_points,
    )


def loss_curve(history: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Per-round losses recorded at training time, one row per round."""
    import pandas as pd

    frame = pd.DataFrame({f"{part}_logloss": values for part, values in history.items()})
    frame.insert(0, "step", range(len(frame)))
    return frame


# --- importance ----------------------------------------------------------------------------


def stratified_sample(y: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Ascending indices of at most ``rows`` rows, each class kept in its share of ``y``
    (scikit-learn's stratified resampling, seeded); all rows when there are no more."""
    import numpy as np
    from sklearn.utils import resample

    n = len(y)
    if n <= rows:
        return np.arange(n)
    picked = resample(np.arange(n), replace=False, n_samples=rows, stratify=y, random_state=seed)
    return np.sort(picked)


def importance(
    model: Model, rows: pd.DataFrame, y: np.ndarray, params: EvaluateParams
) -> pd.DataFrame:
    """Permutation importance of each raw input column, on the leaderboard metric.

    ``rows`` are validated rows (:meth:`tabml.schema.Batch.frame`): what the pipeline reads.
    Computed on :func:`stratified_sample` of at most ``params.importance_rows`` of them with
    ``params.n_jobs`` threads: threads share the model (a large forest is not
    copied into worker processes), and every column is shuffled with the same seeded
    generator whichever thread takes it, so the numbers do not depend on the thread count.
    """
    import pandas as pd
    from joblib import parallel_config
    from sklearn.inspection import permutation_importance

    picked = stratified_sample(y, params.importance_rows, params.seed)
    sample = rows.iloc[picked] if len(picked) < len(rows) else rows
    with parallel_config(backend="threading", n_jobs=params.n_jobs):
        result = permutation_importance(
            model.pipeline,
            sample,
            y[picked],
            scoring=SCORERS[params.metric],
            n_repeats=params.importance_repeats,
            random_state=params.seed,
            n_jobs=params.n_jobs,
        )
    frame = pd.DataFrame(
        {
            "feature": rows.columns,
            "importance": result.importances_mean,
            "std": result.importances_std,
        }
    ).round(6)
    ranked = frame.sort_values(["importance", "feature"], ascending=[False, True])
    return ranked.reset_index(drop=True)


# --- one model -----------------------------------------------------------------------------


# Rows per scoring chunk: fixed, so the probabilities do not depend on the thread count.
CHUNK_ROWS = 20_000


def chunked_proba(model: Model, batch: Batch, jobs: int) -> np.ndarray:
    """P(positive) of validated rows, scored in fixed chunks of CHUNK_ROWS rows on ``jobs``
    threads. Why not the estimator's own threads: a forest on threads sums its trees in
    completion order, so the last bits would change from run to run; here every chunk is
    scored single-threaded (the caller makes the estimator so), in parallel with the others.
    """
    import numpy as np
    from joblib import Parallel, delayed

    from tabml.schema import Batch

    def chunk(start: int) -> np.ndarray:
        stop = min(start + CHUNK_ROWS, batch.n_rows)
        part = Batch(
            stop - start,
            {k: v[start:stop] for k, v in batch.numeric.items()},
            {k: v[start:stop] for k, v in batch.categorical.items()},
        )
        return model.predict_proba(part)[:, 1]

    starts = range(0, batch.n_rows, CHUNK_ROWS)
    if jobs == 1 or len(starts) == 1:
        return np.concatenate([chunk(s) for s in starts]) if starts else np.empty(0)
    parts = Parallel(n_jobs=jobs, backend="threading")(delayed(chunk)(s) for s in starts)
    return np.concatenate(parts)


def validate_test(model: Model, test: pd.DataFrame) -> Batch:
    """Test rows through the same validation as served rows, except that a category the
    train split never saw is allowed (the model encodes it as zeros)."""
    return model.validate(test, strict_categories=False)


def evaluate_model(
    model: Model, test: pd.DataFrame, params: EvaluateParams, *, batch: Batch | None = None
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Metrics (at the card's threshold, each with its bootstrap 95% interval) and plot data
    of one model on raw test rows (target included).

    ``batch`` is :func:`validate_test` of ``test`` for this model's schema when the caller
    has it already (the models of one dataset share a schema: validate once). The
    probabilities are computed once: metrics, curves and calibration come from one array.
    """
    from tabml.bootstrap import bootstrap_intervals
    from tabml.target import encode_target

    card = model.card
    if card.target not in test.columns:
        raise DataError(f"test data of {card.dataset!r} has no target column {card.target!r}")
    y = encode_target(test[card.target], card.positive_class).to_numpy()
    if batch is None:
        batch = validate_test(model, test)
    proba = chunked_proba(model, batch, params.n_jobs)
    threshold = card.threshold
    metrics: dict[str, Any] = score(y, proba, threshold)
    metrics["n_test"] = len(y)
    metrics["threshold"] = threshold
    metrics["ci95"] = ci95(
        bootstrap_intervals(
            y, proba, threshold, resamples=params.bootstrap_resamples, seed=params.seed
        )
    )
    plots = curves(y, proba, model.classes, params, threshold)
    plots["importance"] = importance(model, batch.frame(model.schema), y, params)
    if card.history:
        plots[LOSS_TOPIC] = loss_curve(card.history)
    return metrics, plots


# --- leaderboard ---------------------------------------------------------------------------


def _rounded(value: float) -> float | None:
    """A JSON-safe rounded number (NaN, an undefined interval, becomes null)."""
    import math

    return round(float(value), 6) if math.isfinite(value) else None


def ci95(intervals: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, float | None]]:
    """The test metrics' ``ci95`` entry of either engine: ``{metric: {"low", "high"}}``,
    an undefined bound (a resampled split with one class) as null."""
    return {
        name: {"low": _rounded(lo), "high": _rounded(hi)} for name, (lo, hi) in intervals.items()
    }


@dataclass(frozen=True)
class Entry:
    """One model as the leaderboard sees it: its CV summary from the card (None for a model
    trained without cross-validation), its test metrics (with ``ci95``) and decision rule."""

    model_id: str
    cv: Mapping[str, Any] | None
    test: Mapping[str, Any]
    threshold: float
    threshold_rule: str
    calibration: str


RULE = "best CV mean; a simpler model (lr < xgb < rf) within one standard error of it wins"


def _simplicity(algo: str) -> int:
    from tabml.cv import SIMPLICITY

    return SIMPLICITY.index(algo) if algo in SIMPLICITY else len(SIMPLICITY)


def leaderboard(
    entries: Mapping[str, Entry], metric: str, min_score: float | None = None
) -> dict[str, Any]:
    """Rank models by their cross-validated ``metric`` on the train split and choose the
    champion without the test set: the best CV mean, unless a simpler model (lr < xgb < rf)
    is within one standard error (std / sqrt(folds)) of it. ``min_score`` is a promotion
    gate: a candidate whose CV mean misses it cannot be champion, so a dataset whose best
    model misses it has none (``champion`` null, ``reason`` says why). Test metrics are
    only reported, with their intervals."""
    import math

    if not entries:
        raise DataError("no model to rank")
    higher = metric not in LOWER_IS_BETTER
    sign = -1 if higher else 1
    models: dict[str, dict[str, Any]] = {}
    for algo, e in entries.items():
        cv = (e.cv or {}).get("metrics", {}).get(metric) if e.cv else None
        folds = int(e.cv["folds"]) if e.cv else 0
        interval = (e.test.get("ci95") or {}).get(metric) or {}
        models[algo] = {
            "model_id": e.model_id,
            "cv_mean": cv["mean"] if cv else None,
            "cv_std": cv["std"] if cv else None,
            "cv_se": round(cv["std"] / math.sqrt(folds), 6) if cv else None,
            "test": e.test.get(metric),
            "test_low": interval.get("low"),
            "test_high": interval.get("high"),
            "threshold": e.threshold,
            "threshold_rule": e.threshold_rule,
            "calibration": e.calibration,
        }
    with_cv = [a for a in models if models[a]["cv_mean"] is not None]
    ranking = sorted(with_cv, key=lambda a: (sign * models[a]["cv_mean"], _simplicity(a), a))
    ranking += sorted(a for a in models if a not in with_cv)
    champion, reason = _champion(models, ranking[: len(with_cv)], metric, higher, min_score)
    folds = {int(e.cv["folds"]) for e in entries.values() if e.cv}
    return {
        "metric": metric,
        "higher_is_better": higher,
        "cv_folds": folds.pop() if len(folds) == 1 else None,
        "rule": RULE,
        "min_score": min_score,
        "champion": champion,
        "champion_model": models[champion]["model_id"] if champion else None,
        "reason": reason,
        "ranking": ranking,
        "models": {algo: models[algo] for algo in ranking},
    }


def _champion(
    models: Mapping[str, Mapping[str, Any]],
    ranking: Sequence[str],
    metric: str,
    higher: bool,
    min_score: float | None,
) -> tuple[str | None, str]:
    """(champion algo or None, the one-sentence reason) for :func:`leaderboard`."""
    if not ranking:
        return None, "no model has cross-validation results: rerun train"
    best = ranking[0]
    top = models[best]

    def passes(algo: str) -> bool:
        mean = models[algo]["cv_mean"]
        return min_score is None or (mean >= min_score if higher else mean <= min_score)

    def cv(algo: str) -> str:
        m = models[algo]
        return f"{algo} {m['cv_mean']:.4f} ± {m['cv_std']:.4f}"

    if not passes(best):
        side = "<" if higher else ">"
        return None, (
            f"gate: the best CV {metric}, {cv(best)}, is {side} evaluate.min_score "
            f"{min_score:g}; no model is promoted"
        )
    margin = top["cv_se"]
    close = [
        a
        for a in ranking
        if passes(a) and abs(models[a]["cv_mean"] - top["cv_mean"]) <= margin + 1e-12
    ]
    champion = min(close, key=lambda a: (_simplicity(a), ranking.index(a)))
    if champion == best:
        reason = f"best CV {metric}: {cv(best)}"
        others = [a for a in close if a != best]
        if others:
            reason += f" ({', '.join(others)} within one standard error, not simpler)"
    else:
        reason = (
            f"{cv(champion)} is within one standard error ({margin:.4f}) of the best CV "
            f"{metric}, {cv(best)}, and simpler (lr < xgb < rf)"
        )
    if min_score is not None:
        reason += f"; passes evaluate.min_score {min_score:g}"
    return champion, reason


def check_board(
    dataset: str, board: Mapping[str, Any], algos: Sequence[str], source: str
) -> dict[str, str]:
    """Model id per algorithm of a leaderboard in the current format; a board an older
    evaluate wrote, or one that ranks other algorithms than ``algos``, is refused in one
    line naming ``source`` and saying to rerun evaluate."""
    rerun = f"rerun evaluate (dvc repro evaluate@{dataset})"
    if not isinstance(board, Mapping):
        raise DataError(f"{source} is not a leaderboard (not a JSON object): {rerun}")
    for key in BOARD_KEYS:
        if key not in board:
            raise DataError(f"{source} has no {key!r} (an older leaderboard format): {rerun}")
    if sorted(board["ranking"]) != sorted(algos):
        raise DataError(
            f"{source} ranks {', '.join(board['ranking'])} but train.algos is "
            f"{', '.join(algos)}: {rerun}"
        )
    ids = {}
    for algo in board["ranking"]:
        entry = board["models"].get(algo)
        if not isinstance(entry, Mapping):
            raise DataError(
                f"{source} has no model entry for {algo!r} (an older leaderboard format): {rerun}"
            )
        for key in BOARD_MODEL_KEYS:
            if key not in entry:
                raise DataError(
                    f"{source} has no {key!r} for {algo!r} (an older leaderboard format): {rerun}"
                )
        parsed = parse_model_id(entry["model_id"])
        if parsed is None or parsed[:2] != (algo, dataset):
            raise DataError(
                f"{source} names model {entry['model_id']!r} for {algo!r}, not a model of "
                f"{dataset!r}: {rerun}"
            )
        ids[algo] = entry["model_id"]
    champion = board["champion"]
    if champion is not None and champion not in board["ranking"]:
        raise DataError(f"{source} crowns {champion!r}, which it does not rank: {rerun}")
    return ids
