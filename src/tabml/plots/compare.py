"""Model-comparison figures: every model of one dataset on the same axes, test split.

Drawn from the plot data and test metrics the evaluate stage wrote (never from a model):
ROC, precision-recall, calibration, the confusion matrix at each model's threshold, the test
metrics (the leaderboard's champion outlined), permutation importance and, for models that
train in rounds, the per-round loss. The ROC AUC and average precision in the legends
are the ones in ``metrics/test/``, so figures, report and ``dvc metrics`` show one number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError
from tabml.metrics import LOWER_IS_BETTER, METRICS
from tabml.plots import algo_colors, message_figure, style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

MODEL_TOPICS = ("roc", "pr", "calibration", "confusion", "metrics", "importance", "loss")
# Topics whose plot data only some models have (evaluate writes loss for xgb only): the
# figure is drawn from the models that have it, and left out when none has.
OPTIONAL_TOPICS = ("loss",)
# Plot data written by evaluate, and the columns each figure needs from it.
CURVE_COLUMNS = {
    "roc": ("fpr", "tpr"),
    "pr": ("recall", "precision"),
    "calibration": ("mean_predicted", "fraction_positive"),
    "confusion": ("actual", "predicted", "count"),
    "importance": ("feature", "importance", "std"),
    "loss": ("step", "train_logloss", "valid_logloss"),
}
TOP_FEATURES = 15
# The decision threshold of test metrics written before evaluate recorded one.
DEFAULT_THRESHOLD = 0.5
CAPTIONS = {
    "roc": "ROC curves of every model on the test split, AUC in the legend; the dashed "
    "diagonal is a classifier that guesses.",
    "pr": "Precision-recall curves of every model on the test split, average precision in "
    "the legend; the dotted line is the share of positives.",
    "calibration": "Observed share of positives against mean predicted probability per bin; "
    "a calibrated model follows the dashed diagonal.",
    "confusion": "Test rows per actual class (rows) and predicted class (columns) of every "
    "model at its decision threshold (in each title: the model card's threshold, the one the "
    "API and the batch CLI use), with each cell's share of its row: the top row's right cell "
    "is the false positive rate, the bottom row's left cell the false negative rate.",
    "metrics": "Test metrics of every model; log_loss and brier are losses (lower is better). "
    "The leaderboard's champion (chosen on cross-validation, not on these numbers) is "
    "outlined; the title says when no model is champion.",
    "importance": "Permutation importance of the raw input columns on a stratified sample of the "
    "test split (at most evaluate.importance_rows rows): the drop in {metric} when a column is "
    "shuffled (mean and std over repeats). Every panel shows the same columns (the top {top} "
    "by mean importance over the models) in the same order on the same axis, so equal bars "
    "mean equal drops.",
    "loss": "Log loss per boosting round of the models that train in rounds, on the data they "
    "were fitted on (solid) and on the validation part held out of the train split (dashed); "
    "the dot marks the round with the lowest validation loss.",
}


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} has no column {missing[0]!r}: rerun evaluate")


def check_plot_data(topic: str, frame: pd.DataFrame, dataset: str, algo: str) -> None:
    """Refuse plot data without the columns its figure reads (stale or foreign data), in the
    words the figure would use: called as the data is read, before anything is drawn."""
    _require(frame, CURVE_COLUMNS[topic], f"{topic} data of {dataset}-{algo}")


def _test_metric(
    metrics: Mapping[str, Mapping[str, Any]], algo: str, name: str, dataset: str
) -> float:
    """One test metric of one model, as evaluate wrote it; missing means stale metrics."""
    value = metrics.get(algo, {}).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"test metrics of {dataset}-{algo} have no {name!r}: rerun evaluate")
    return float(value)


def _unit_axes(
    ax: Any, title: str, labels: tuple[str, str], *, legend: str, square: bool = True
) -> None:
    """The frame of a curve on [0, 1] x [0, 1]: title, axis labels, legend, light grid."""
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), **({"aspect": "equal"} if square else {}))
    ax.set_title(title)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.legend(loc=legend)
    ax.grid(alpha=0.3)


def roc_figure(
    curves: Mapping[str, pd.DataFrame],
    metrics: Mapping[str, Mapping[str, Any]],
    dataset: str,
) -> Figure:
    """ROC curves of all algorithms on one axes, so models compare at a glance.

    The legend's AUC is ``roc_auc`` of the test metrics (``metrics``: algorithm -> metrics),
    the number the leaderboard ranks by, not an area recomputed from the rounded curve.
    """
    colors = algo_colors(list(curves))
    with style() as plt:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for algo, curve in curves.items():
            _require(curve, CURVE_COLUMNS["roc"], f"roc data of {dataset}-{algo}")
            auc = _test_metric(metrics, algo, "roc_auc", dataset)
            label = f"{algo} (AUC {auc:.3f})"
            ax.plot(curve["fpr"], curve["tpr"], color=colors[algo], lw=1.5, label=label)
        ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance")
        _unit_axes(
            ax,
            f"{dataset}: ROC curves (test split)",
            ("false positive rate", "true positive rate (recall)"),
            legend="lower right",
        )
        fig.tight_layout()
    return fig


def pr_figure(
    curves: Mapping[str, pd.DataFrame],
    metrics: Mapping[str, Mapping[str, Any]],
    dataset: str,
) -> Figure:
    """Precision-recall curves of all algorithms: what ROC hides on imbalanced data.

    The legend's AP is ``pr_auc`` (average precision) of the test metrics. The kept points
    (at most ``evaluate.curve_points``, chosen by :func:`tabml.evaluation.downsample` to
    keep the polyline's shape) are joined by straight lines: steps between such sparse
    points would draw stairs the full curve does not have.
    """
    colors = algo_colors(list(curves))
    prevalence = None
    with style() as plt:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for algo, curve in curves.items():
            _require(curve, CURVE_COLUMNS["pr"], f"pr data of {dataset}-{algo}")
            ap = _test_metric(metrics, algo, "pr_auc", dataset)
            label = f"{algo} (AP {ap:.3f})"
            ax.plot(
                curve["recall"],
                curve["precision"],
                color=colors[algo],
                lw=1.5,
                label=label,
            )
            if prevalence is None and len(curve):
                # sklearn's first point predicts every row positive: precision = share of positives
                prevalence = float(curve["precision"].iloc[0])
        if prevalence is not None:
            ax.axhline(prevalence, ls=":", color="0.5", lw=1, label=f"positives ({prevalence:.2f})")
        _unit_axes(
            ax,
            f"{dataset}: precision-recall curves (test split)",
            ("recall", "precision"),
            legend="lower left",
            square=False,
        )
        fig.tight_layout()
    return fig


def calibration_figure(curves: Mapping[str, pd.DataFrame], dataset: str) -> Figure:
    """Reliability curves: whether predicted probabilities can be read as probabilities."""
    colors = algo_colors(list(curves))
    with style() as plt:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="perfectly calibrated")
        for algo, curve in curves.items():
            _require(curve, CURVE_COLUMNS["calibration"], f"calibration data of {dataset}-{algo}")
            ax.plot(
                curve["mean_predicted"],
                curve["fraction_positive"],
                marker="o",
                ms=4,
                lw=1.5,
                color=colors[algo],
                label=algo,
            )
        _unit_axes(
            ax,
            f"{dataset}: calibration (test split)",
            ("mean predicted probability", "fraction of positives"),
            legend="upper left",
        )
        fig.tight_layout()
    return fig


def metrics_figure(
    metrics: Mapping[str, Mapping[str, Any]], board: Mapping[str, Any], dataset: str
) -> Figure:
    """Grouped bars of every test metric per algorithm, the leaderboard's champion outlined
    (``board["champion"]``; ``None`` when no model passed the gate, and the title says so)."""
    import numpy as np

    algos = list(metrics)
    names = [m for m in METRICS if all(m in metrics[a] for a in algos)]
    colors = algo_colors(algos)
    champion = board.get("champion")
    width = 0.8 / max(len(algos), 1)
    x = np.arange(len(names))
    top = max((float(metrics[a][m]) for a in algos for m in names), default=1.0)
    with style() as plt:
        fig, ax = plt.subplots(figsize=(max(7.0, 1.0 * len(names) + 2), 4.5))
        for i, algo in enumerate(algos):
            values = [float(metrics[algo][m]) for m in names]
            is_champion = algo == champion
            bars = ax.bar(
                x + (i - (len(algos) - 1) / 2) * width,
                values,
                width,
                color=colors[algo],
                edgecolor="black" if is_champion else colors[algo],
                linewidth=1.5 if is_champion else 0.5,
                label=f"{algo} (champion)" if is_champion else algo,
            )
            ax.bar_label(bars, fmt="%.3f", rotation=90, padding=2, fontsize=6)
        labels = [f"{m}\n(lower better)" if m in LOWER_IS_BETTER else m for m in names]
        ax.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylim(0, max(1.0, top) * 1.18)
        title = f"{dataset}: test metrics per model"
        if champion is None:
            title += " (no champion)"
        else:
            model = board.get("champion_model") or champion
            title += f" (champion by CV {board.get('metric')}: {model})"
        ax.set_title(title)
        ax.set_xlabel("metric")
        ax.set_ylabel("value")
        ax.legend(loc="upper left", ncols=len(algos), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
    return fig


def threshold_of(metrics: Mapping[str, Mapping[str, Any]], algo: str, dataset: str) -> float:
    """The decision threshold the test metrics of one model were computed at
    (:data:`DEFAULT_THRESHOLD` for metrics written before evaluate recorded it)."""
    value = metrics.get(algo, {}).get("threshold", DEFAULT_THRESHOLD)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(
            f"test metrics of {dataset}-{algo} have a 'threshold' that is not a number: "
            "rerun evaluate"
        )
    return float(value)


def confusion_matrix(
    frame: pd.DataFrame, dataset: str, algo: str, positive_class: str | None = None
) -> tuple[list[str], Any, str | None]:
    """Class names (as text, in file order with the positive class last), the count matrix
    (rows actual, columns predicted) of confusion plot data (one row per class pair), and the
    positive class as the data spells it (``None`` when not given or not in the data)."""
    import numpy as np

    from tabml.plots.eda import label_text
    from tabml.target import as_in_data

    what = f"confusion data of {dataset}-{algo}"
    _require(frame, CURVE_COLUMNS["confusion"], what)
    counts = frame["count"].to_numpy(dtype=float, na_value=np.nan)
    if not (np.isfinite(counts) & (counts >= 0) & (np.mod(counts, 1) == 0)).all():
        raise DataError(f"{what} has a count that is not a whole number >= 0: rerun evaluate")
    actual, predicted = label_text(frame["actual"]), label_text(frame["predicted"])
    classes = list(dict.fromkeys([*actual.dropna(), *predicted.dropna()]))
    positive = None if positive_class is None else as_in_data(actual, positive_class)
    if positive in classes:
        classes = [*(c for c in classes if c != positive), positive]
    else:
        positive = None
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for a, p, n in zip(actual, predicted, counts, strict=True):
        if a in index and p in index:
            matrix[index[a], index[p]] += int(n)
    return classes, matrix, positive


def confusion_figure(
    data: Mapping[str, pd.DataFrame],
    metrics: Mapping[str, Mapping[str, Any]],
    dataset: str,
    positive_class: str | None = None,
) -> Figure:
    """One confusion matrix per model at its own threshold (:func:`threshold_of`): what the
    decision rule the API applies gets right and wrong, in counts and shares of each row.

    Cells are shaded by their share of the row (one 0-1 scale for every panel), so a dark
    off-diagonal cell is a class the model mostly misses, whatever the class sizes.
    """
    import numpy as np

    algos = list(data)
    title = f"{dataset}: confusion matrices (test split, rows: actual class)"
    if not algos:
        return message_figure(title, "no models")
    with style() as plt:
        fig, axes = plt.subplots(1, len(algos), figsize=(3.4 * len(algos), 3.6), squeeze=False)
        for ax, algo in zip(axes[0], algos, strict=True):
            threshold = threshold_of(metrics, algo, dataset)
            classes, matrix, positive = confusion_matrix(data[algo], dataset, algo, positive_class)
            totals = matrix.sum(axis=1, keepdims=True)
            shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
            ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
            for i, j in np.ndindex(matrix.shape):
                ax.text(
                    j,
                    i,
                    f"{int(matrix[i, j]):,}\n{shares[i, j]:.1%}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if shares[i, j] > 0.6 else "black",
                )
            names = [f"{c}\n(positive)" if c == positive else c for c in classes]
            ticks = range(len(classes))
            ax.set_xticks(ticks, names)
            ax.set_yticks(ticks, names)
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            ax.set_title(f"{algo} (threshold {threshold:.3g})")
        fig.suptitle(title)
        fig.tight_layout()
    return fig


def importance_figure(
    importances: Mapping[str, pd.DataFrame], dataset: str, metric: str, top: int = TOP_FEATURES
) -> Figure:
    """Permutation importance, one panel per algorithm on ONE axis and ONE column order: the
    ``top`` columns by mean importance over the models (ties by name), so equal bars mean
    equal drops in ``metric`` and a column sits in the same row in every panel."""
    import pandas as pd

    algos = list(importances)
    if not algos:
        return message_figure(f"{dataset}: permutation importance", "no models")
    for algo, frame in importances.items():
        _require(frame, CURVE_COLUMNS["importance"], f"importance data of {dataset}-{algo}")
    colors = algo_colors(algos)
    stacked = pd.concat(
        [f.assign(feature=f["feature"].astype(str)) for f in importances.values()],
        ignore_index=True,
    )
    means = stacked.groupby("feature")["importance"].mean()
    ranked = sorted(means.index, key=lambda f: (-float(means[f]), f))
    features = ranked[:top]
    title = (
        f"{dataset}: permutation importance = drop in test {metric} when the column is "
        f"shuffled\n(mean and std over repeats; top {len(features)} of {len(ranked)} columns "
        "by mean over the models)"
    )
    row = {f: i for i, f in enumerate(features)}
    with style() as plt:
        fig, axes = plt.subplots(
            1,
            len(algos),
            figsize=(4.2 * len(algos), 0.3 * max(len(features), 3) + 1.9),
            squeeze=False,
            sharex=True,
            sharey=True,
        )
        for ax, algo in zip(axes[0], algos, strict=True):
            frame = importances[algo].assign(feature=importances[algo]["feature"].astype(str))
            shown = frame[frame["feature"].isin(row)].drop_duplicates("feature")
            shown = shown.assign(row=shown["feature"].map(row)).sort_values("row")
            ax.barh(
                shown["row"],
                shown["importance"],
                xerr=shown["std"],
                color=colors[algo],
                error_kw={"elinewidth": 0.8, "capsize": 2},
            )
            ax.axvline(0, color="0.3", lw=0.8)
            ax.set_title(algo)
            ax.set_xlabel(f"drop in {metric}")
            ax.tick_params(axis="y", labelsize=8)
            ax.tick_params(axis="y", labelleft=True)
            ax.grid(axis="x", alpha=0.3)
        first = axes[0][0]
        first.set_yticks(range(len(features)), features)
        first.set_ylim(len(features) - 0.5, -0.5)  # most important at the top
        first.set_ylabel("feature")
        fig.suptitle(title)
        fig.tight_layout()
    return fig


def loss_figure(
    curves: Mapping[str, pd.DataFrame], dataset: str, algos: Sequence[str] = ()
) -> Figure:
    """Train and validation log loss per round: where boosting starts to overfit.

    ``algos`` fixes the colour order (all of train.algos, so each algorithm keeps the colour
    it has in the other figures); algorithms missing from it follow in ``curves`` order.
    """
    from matplotlib.ticker import MaxNLocator

    title = f"{dataset}: log loss per boosting round"
    if not curves:
        return message_figure(title, "no model trains in rounds")
    colors = algo_colors([*algos, *(a for a in curves if a not in algos)])
    with style() as plt:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for algo, curve in curves.items():
            _require(curve, CURVE_COLUMNS["loss"], f"loss data of {dataset}-{algo}")
            color = colors[algo]
            ax.plot(
                curve["step"], curve["train_logloss"], color=color, lw=1.5, label=f"{algo} train"
            )
            ax.plot(
                curve["step"],
                curve["valid_logloss"],
                color=color,
                lw=1.5,
                ls="--",
                label=f"{algo} valid",
            )
            valid = curve["valid_logloss"].astype(float)
            if valid.notna().any():
                best = valid.idxmin()  # first of tied minima: the earliest round
                step, loss = int(curve["step"].loc[best]), float(valid.loc[best])
                ax.scatter(
                    [step],
                    [loss],
                    s=36,
                    color=color,
                    edgecolors="black",
                    linewidths=0.8,
                    zorder=3,
                    label=f"{algo} best round {step} ({loss:.4f})",
                )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("boosting round")
        ax.set_ylabel("log loss")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig
