"""plot: EDA and model-comparison figures per dataset, and one self-contained HTML report.

Reads only CSV and JSON written by earlier stages (raw data, test metrics, leaderboards and
the plot data of ``evaluate``); never loads a model. Writes:

- ``plots/figures/<topic>_<dataset>_<date>.png`` for topic balance, distributions, missing,
  correlations (EDA of the raw snapshot) and roc, pr, calibration, metrics, importance (the
  models on the test split), and loss (per-round train/validation log loss) when at least
  one model of the dataset trains in rounds (xgb);
- ``plots/report.html``: every leaderboard and figure in one page that opens offline.

Figures and report are byte-identical across reruns on the same inputs (no timestamps, PNG
without the Software tag), so DVC sees an unchanged output as unchanged.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import io
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.common import (
    Layout,
    atomic_path,
    read_csv,
    read_json,
    replace_dir,
    run_stage,
    stage_parser,
    write_text,
)
from stages.errors import DataError
from stages.model import as_text, infer_schema
from stages.params import LOWER_IS_BETTER, METRICS, DatasetParams, Params

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

log = logging.getLogger("stages.plot")

EDA_TOPICS = ("balance", "distributions", "missing", "correlations")
MODEL_TOPICS = ("roc", "pr", "calibration", "metrics", "importance", "loss")
TOPICS = EDA_TOPICS + MODEL_TOPICS
# Topics whose plot data only some models have (evaluate writes loss for xgb only): the
# figure is drawn from the models that have it, and left out when none has.
OPTIONAL_TOPICS = ("loss",)
# Plot data written by evaluate, and the columns each figure needs from it.
CURVE_COLUMNS = {
    "roc": ("fpr", "tpr"),
    "pr": ("recall", "precision"),
    "calibration": ("mean_predicted", "fraction_positive"),
    "importance": ("feature", "importance", "std"),
    "loss": ("step", "train_logloss", "valid_logloss"),
}
TOP_FEATURES = 15
POSITIVE_COLOR = "tab:red"
NEGATIVE_COLOR = "tab:blue"

CAPTIONS = {
    "balance": "Rows per class of the target column {target!r} in the raw snapshot; "
    "the positive class is {positive!r}.",
    "distributions": "Numeric columns of the raw snapshot, one histogram per target class; "
    "each class is scaled to unit area so the minority class stays visible; values beyond "
    "the 0.5th and 99.5th percentiles are counted in the end bins.",
    "missing": "Missing values per column of the raw snapshot (imputed by featurize).",
    "correlations": "Pearson correlation between the numeric columns of the raw snapshot.",
    "roc": "ROC curves of every model on the test split, AUC in the legend; the dashed "
    "diagonal is a classifier that guesses.",
    "pr": "Precision-recall curves of every model on the test split, average precision in "
    "the legend; the dotted line is the share of positives.",
    "calibration": "Observed share of positives against mean predicted probability per bin; "
    "a calibrated model follows the dashed diagonal.",
    "metrics": "Test metrics of every model; log_loss and brier are losses (lower is better).",
    "importance": "Permutation importance of the raw input columns on the test split: the drop "
    "in {metric} when a column is shuffled (mean and std over repeats), top {top} per model.",
    "loss": "Log loss per boosting round of the models that train in rounds, on the data they "
    "were fitted on (solid) and on the validation part held out of the train split (dashed); "
    "the dot marks the round with the lowest validation loss.",
}


# --- figure helpers ---------------------------------------------------------------------


def _pyplot() -> Any:
    """pyplot on the Agg backend: no display needed, same pixels on every machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _style() -> Iterator[Any]:
    """Matplotlib defaults, whatever a user's matplotlibrc says, so reruns match bytes."""
    plt = _pyplot()
    with plt.style.context("default"), plt.rc_context({"font.size": 9, "axes.titlesize": 10}):
        yield plt


def render_png(fig: Figure, dpi: int) -> bytes:
    """PNG bytes of ``fig`` without the Software tag (bytes depend on the data only); closes it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        with _style():
            fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def message_figure(title: str, message: str) -> Figure:
    """A text-only figure, for a topic with nothing to draw (the report keeps its slot)."""
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(6, 2.5))
        ax.set_axis_off()
        ax.set_title(title)
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, transform=ax.transAxes)
        fig.tight_layout()
    return fig


def _percent(part: int, whole: int) -> str:
    """Share as text; a non-zero share never prints as 0.0%."""
    share = 100 * part / whole if whole else 0.0
    return "<0.1%" if 0 < share < 0.1 else f"{share:.1f}%"


def _algo_colors(algos: Sequence[str]) -> dict[str, str]:
    """One fixed colour per algorithm, the same in every figure."""
    return {algo: f"C{i % 10}" for i, algo in enumerate(algos)}


def _class_order(labels: pd.Series, positive_class: str) -> list[str]:
    """Other classes sorted, positive class last (drawn on top, red)."""
    seen = set(as_text(labels).dropna())
    return [*sorted(seen - {positive_class}), *([positive_class] if positive_class in seen else [])]


def numeric_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Columns featurize treats as numeric (the model schema's rule), in frame order."""
    kept = frame.drop(columns=[c for c in exclude if c in frame.columns])
    return [c.name for c in infer_schema(kept) if c.kind == "numeric"]


# --- EDA figures ------------------------------------------------------------------------


def balance_figure(frame: pd.DataFrame, target: str, positive_class: str, dataset: str) -> Figure:
    """Bar chart of rows per target class: imbalance decides which metrics mean anything."""
    if target not in frame.columns:
        raise DataError(f"dataset {dataset!r} has no target column {target!r}")
    labels = frame[target]
    order = _class_order(labels, positive_class)
    counts = as_text(labels).dropna().value_counts()
    values = [int(counts[c]) for c in order]
    names = [f"{c}\n(positive)" if c == positive_class else c for c in order]
    colors = [POSITIVE_COLOR if c == positive_class else NEGATIVE_COLOR for c in order]
    n_missing = int(labels.isna().sum())
    if n_missing:
        values.append(n_missing)
        names.append("(missing)")
        colors.append("tab:gray")
    total = sum(values)
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(values) + 2), 4))
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:,} ({_percent(v, total)})" for v in values], padding=2)
        ax.set_ylim(0, max(values, default=1) * 1.15 or 1)
        ax.set_title(f"{dataset}: class balance of {target} ({total:,} rows)")
        ax.set_xlabel(target)
        ax.set_ylabel("rows")
        fig.tight_layout()
    return fig


def _bins(values: Any) -> tuple[Any, bool]:
    """Bin edges shared by all classes, and whether the values are integers.

    Integer columns get integer-aligned bins (no empty gaps between values); the range
    covers the 0.5th to 99.5th percentile so one extreme value does not squash the rest.
    """
    import numpy as np

    lo, hi = (float(q) for q in np.quantile(values, [0.005, 0.995]))
    if bool(np.all(np.mod(values, 1) == 0)):
        lo, hi = math.floor(lo), math.ceil(hi)
        width = max(1, math.ceil((hi - lo + 1) / 30))
        return np.arange(lo - 0.5, hi + 0.5 + width, width), True
    if lo == hi:
        return np.array([lo - 0.5, hi + 0.5]), False
    return np.linspace(lo, hi, 31), False


def distributions_figure(
    frame: pd.DataFrame,
    target: str,
    positive_class: str,
    dataset: str,
    max_columns: int = 12,
    exclude: Sequence[str] = (),
) -> Figure:
    """Histograms per numeric column split by class: shows which columns separate the classes."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    columns = numeric_columns(frame, exclude=[target, *exclude])
    title = f"{dataset}: numeric columns by {target}"
    if not columns:
        return message_figure(title, "no numeric columns")
    shown = columns[:max_columns]
    if len(shown) < len(columns):
        title += f" (first {len(shown)} of {len(columns)})"
    labelled = frame[frame[target].notna()]
    labels = as_text(labelled[target])
    order = _class_order(labels, positive_class)
    colors = {c: POSITIVE_COLOR if c == positive_class else NEGATIVE_COLOR for c in order}
    if len(order) > 2:
        colors = {c: f"C{i % 10}" for i, c in enumerate(order)}
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    with _style() as plt:
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(3.6 * ncols, 2.7 * nrows + 0.6), squeeze=False
        )
        flat = list(axes.flat)
        for ax, column in zip(flat, shown, strict=False):
            values = labelled[column].to_numpy(dtype=float)
            finite = np.isfinite(values)
            if not finite.any():
                ax.text(0.5, 0.5, "all missing", ha="center", va="center", transform=ax.transAxes)
            else:
                edges, integral = _bins(values[finite])
                if integral:
                    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                clipped = np.clip(values, edges[0], edges[-1])
                for cls in order:
                    mask = finite & (labels.to_numpy() == cls)
                    if mask.any():
                        ax.hist(
                            clipped[mask],
                            bins=edges,
                            density=True,
                            histtype="stepfilled",
                            alpha=0.45,
                            color=colors[cls],
                            edgecolor=colors[cls],
                            label=cls,
                        )
            ax.set_xlabel(column)
            ax.set_ylabel("density")
            ax.tick_params(labelsize=7)
        for ax in flat[len(shown) :]:
            ax.remove()
        flat[0].legend(title=target, fontsize=7, title_fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
    return fig


def missing_figure(frame: pd.DataFrame, dataset: str) -> Figure:
    """Missing values per column: what the imputers of featurize will have to fill."""
    from matplotlib.ticker import MaxNLocator

    counts = frame.isna().sum()
    columns = [str(c) for c in frame.columns]
    values = [int(v) for v in counts.to_numpy()]
    n_rows = len(frame)
    total = sum(values)
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(columns) + 1.4)))
        bars = ax.barh(columns, values, color="tab:orange")
        ax.invert_yaxis()  # first column at the top, as in the CSV
        if total:
            ax.bar_label(
                bars,
                labels=[f"{v:,} ({_percent(v, n_rows)})" if v else "" for v in values],
                padding=2,
                fontsize=8,
            )
            ax.set_xlim(0, max(values) * 1.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            title = f"{dataset}: missing values per column ({total:,} cells)"
        else:
            ax.set_xlim(0, 1)
            ax.set_xticks([0])
            ax.text(
                0.5,
                0.5,
                "no missing values",
                ha="center",
                va="center",
                fontsize=12,
                transform=ax.transAxes,
                bbox={"facecolor": "white", "edgecolor": "0.7"},
            )
            title = f"{dataset}: no missing values ({n_rows:,} rows)"
        ax.set_title(title)
        ax.set_xlabel("missing values")
        ax.set_ylabel("column")
        fig.tight_layout()
    return fig


def correlations_figure(
    frame: pd.DataFrame, dataset: str, max_columns: int = 12, exclude: Sequence[str] = ()
) -> Figure:
    """Pearson correlation heatmap of numeric columns: spots redundant inputs."""
    import numpy as np

    columns = numeric_columns(frame, exclude=exclude)
    title = f"{dataset}: correlation of numeric columns"
    if len(columns) < 2:
        found = f"{len(columns)} numeric column" + ("" if len(columns) == 1 else "s")
        return message_figure(title, f"{found}: nothing to correlate")
    shown = columns[:max_columns]
    if len(shown) < len(columns):
        title += f" (first {len(shown)} of {len(columns)})"
    corr = frame[shown].astype(float).corr().to_numpy()
    n = len(shown)
    size = 0.55 * n + 2.5
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
        image = ax.imshow(np.ma.masked_invalid(corr), cmap="RdBu_r", vmin=-1, vmax=1)
        fig.colorbar(image, ax=ax, label="Pearson r", shrink=0.85)
        ax.set_xticks(range(n), shown, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), shown)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    r = corr[i, j]
                    if np.isfinite(r):
                        color = "white" if abs(r) > 0.6 else "black"
                        ax.text(j, i, f"{r:.2f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_title(title)
        ax.set_xlabel("column")
        ax.set_ylabel("column")
        fig.tight_layout()
    return fig


# --- model figures ----------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} has no column {missing[0]!r}: rerun evaluate")


def roc_auc(curve: pd.DataFrame) -> float:
    """Area under an ROC curve (trapezoids, as sklearn computes roc_auc)."""
    import numpy as np

    ordered = curve.sort_values(["fpr", "tpr"])
    return float(np.trapezoid(ordered["tpr"], ordered["fpr"]))


def average_precision(curve: pd.DataFrame) -> float:
    """Average precision of a sklearn precision-recall curve (recall descending to 0)."""
    import numpy as np

    recall = curve["recall"].to_numpy(dtype=float)
    precision = curve["precision"].to_numpy(dtype=float)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def roc_figure(curves: Mapping[str, pd.DataFrame], dataset: str) -> Figure:
    """ROC curves of all algorithms on one axes, so models compare at a glance."""
    colors = _algo_colors(list(curves))
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for algo, curve in curves.items():
            _require(curve, CURVE_COLUMNS["roc"], f"roc data of {dataset}-{algo}")
            label = f"{algo} (AUC {roc_auc(curve):.3f})"
            ax.plot(curve["fpr"], curve["tpr"], color=colors[algo], lw=1.5, label=label)
        ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance")
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
        ax.set_title(f"{dataset}: ROC curves (test split)")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (recall)")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig


def pr_figure(curves: Mapping[str, pd.DataFrame], dataset: str) -> Figure:
    """Precision-recall curves of all algorithms: what ROC hides on imbalanced data."""
    colors = _algo_colors(list(curves))
    prevalence = None
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for algo, curve in curves.items():
            _require(curve, CURVE_COLUMNS["pr"], f"pr data of {dataset}-{algo}")
            label = f"{algo} (AP {average_precision(curve):.3f})"
            ax.plot(
                curve["recall"],
                curve["precision"],
                color=colors[algo],
                lw=1.5,
                drawstyle="steps-post",
                label=label,
            )
            if prevalence is None and len(curve):
                # sklearn's first point predicts every row positive: precision = share of positives
                prevalence = float(curve["precision"].iloc[0])
        if prevalence is not None:
            ax.axhline(prevalence, ls=":", color="0.5", lw=1, label=f"positives ({prevalence:.2f})")
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
        ax.set_title(f"{dataset}: precision-recall curves (test split)")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(loc="lower left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig


def calibration_figure(curves: Mapping[str, pd.DataFrame], dataset: str) -> Figure:
    """Reliability curves: whether predicted probabilities can be read as probabilities."""
    colors = _algo_colors(list(curves))
    with _style() as plt:
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
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
        ax.set_title(f"{dataset}: calibration (test split)")
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("fraction of positives")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig


def metrics_figure(
    metrics: Mapping[str, Mapping[str, float]], board: Mapping[str, Any], dataset: str
) -> Figure:
    """Grouped bars of every test metric per algorithm, the leaderboard's best one outlined."""
    import numpy as np

    algos = list(metrics)
    names = [m for m in METRICS if all(m in metrics[a] for a in algos)]
    colors = _algo_colors(algos)
    best = board.get("best_algo")
    width = 0.8 / max(len(algos), 1)
    x = np.arange(len(names))
    top = max((float(metrics[a][m]) for a in algos for m in names), default=1.0)
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(max(7.0, 1.0 * len(names) + 2), 4.5))
        for i, algo in enumerate(algos):
            values = [float(metrics[algo][m]) for m in names]
            is_best = algo == best
            bars = ax.bar(
                x + (i - (len(algos) - 1) / 2) * width,
                values,
                width,
                color=colors[algo],
                edgecolor="black" if is_best else colors[algo],
                linewidth=1.5 if is_best else 0.5,
                label=f"{algo} (best)" if is_best else algo,
            )
            ax.bar_label(bars, fmt="%.3f", rotation=90, padding=2, fontsize=6)
        labels = [f"{m}\n(lower better)" if m in LOWER_IS_BETTER else m for m in names]
        ax.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylim(0, max(1.0, top) * 1.18)
        title = f"{dataset}: test metrics per model"
        if best is not None:
            title += f" (best by {board.get('metric')}: {board.get('best_model', best)})"
        ax.set_title(title)
        ax.set_xlabel("metric")
        ax.set_ylabel("value")
        ax.legend(loc="upper left", ncols=len(algos), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
    return fig


def importance_figure(
    importances: Mapping[str, pd.DataFrame], dataset: str, metric: str, top: int = TOP_FEATURES
) -> Figure:
    """Top permutation importances, one subplot per algorithm: what each model relies on."""
    algos = list(importances)
    title = f"{dataset}: permutation importance (top {top} features)"
    if not algos:
        return message_figure(title, "no models")
    colors = _algo_colors(algos)
    n_rows = max(min(top, len(frame)) for frame in importances.values())
    with _style() as plt:
        fig, axes = plt.subplots(
            1, len(algos), figsize=(4.2 * len(algos), 0.3 * max(n_rows, 3) + 1.6), squeeze=False
        )
        for ax, algo in zip(axes[0], algos, strict=True):
            frame = importances[algo]
            _require(frame, CURVE_COLUMNS["importance"], f"importance data of {dataset}-{algo}")
            ranked = frame.sort_values(["importance", "feature"], ascending=[False, True]).head(top)
            ax.barh(
                ranked["feature"].astype(str),
                ranked["importance"],
                xerr=ranked["std"],
                color=colors[algo],
                error_kw={"elinewidth": 0.8, "capsize": 2},
            )
            ax.invert_yaxis()  # most important at the top
            ax.axvline(0, color="0.3", lw=0.8)
            ax.set_title(algo)
            ax.set_xlabel(f"drop in {metric}")
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="x", alpha=0.3)
        axes[0][0].set_ylabel("feature")
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
    colors = _algo_colors([*algos, *(a for a in curves if a not in algos)])
    with _style() as plt:
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


# --- HTML report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One dataset's part of the report: its leaderboard, test metrics and rendered figures."""

    dataset: str
    board: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, float]]
    model_ids: Mapping[str, str]
    figures: Sequence[tuple[str, str, bytes]]  # (topic, caption, PNG bytes)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
.tbl { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; }
th { background: #f3f3f3; text-align: left; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #fff6d5; font-weight: 600; print-color-adjust: exact; }
th.key, td.key { border-left: 2px solid #888; border-right: 2px solid #888; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
nav ul { padding-left: 1.2rem; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def leaderboard_rows(
    board: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, float]],
    model_ids: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Leaderboard joined with test metrics, in rank order: the data of the report table."""
    metric = board["metric"]
    rows = []
    for rank, algo in enumerate(board["ranking"], start=1):
        if algo not in metrics:
            raise DataError(
                f"leaderboard ranks {algo!r} but it has no test metrics: rerun evaluate"
            )
        row: dict[str, Any] = {
            "rank": rank,
            "algorithm": algo,
            "model": model_ids.get(algo, algo),
            metric: board.get("scores", {}).get(algo, metrics[algo].get(metric)),
        }
        row.update({k: v for k, v in metrics[algo].items() if k not in row})
        rows.append(row)
    return rows


def _table(board: Mapping[str, Any], rows: list[dict[str, Any]]) -> str:
    metric = board["metric"]
    header = ["rank", "algorithm", "model", metric]
    extra = [m for m in [*METRICS, "n_test"] if any(m in r for r in rows) and m not in header]
    extra += sorted({k for r in rows for k in r} - set(header) - set(extra))
    columns = header + extra
    esc = html.escape
    numeric = {c for c in columns if any(not isinstance(r.get(c), str) for r in rows)}
    out = ['<div class="tbl"><table>', "<thead><tr>"]
    for c in columns:
        classes = " ".join(k for k, on in (("num", c in numeric), ("key", c == metric)) if on)
        cls = f' class="{classes}"' if classes else ""
        arrow = " ↓" if c in LOWER_IS_BETTER else " ↑" if c in METRICS else ""
        # <wbr> lets long names such as balanced_accuracy wrap at the underscore
        out.append(f"<th{cls}>{esc(c).replace('_', '_<wbr>')}{arrow}</th>")
    out.append("</tr></thead><tbody>")
    for row in rows:
        best = row["algorithm"] == board.get("best_algo")
        out.append('<tr class="best">' if best else "<tr>")
        for c in columns:
            value = row.get(c)
            classes = [
                k for k, on in (("num", not isinstance(value, str)), ("key", c == metric)) if on
            ]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            mark = " ★" if best and c == "algorithm" else ""  # visible in print, too
            out.append(f"<td{attr}>{esc(_fmt(value))}{mark}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def report_html(sections: Sequence[Section], title: str = "Model report") -> str:
    """One offline HTML page: leaderboards, test metrics and figures (PNG as data URIs).

    No external resource and no timestamp, so it opens anywhere and its hash changes
    only when a result does.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if sections:
        parts.append("<nav><ul>")
        for s in sections:
            board = s.board
            better = "higher" if board.get("higher_is_better", True) else "lower"
            summary = (
                f"best {board.get('best_model')} ({board.get('metric')} "
                f"{_fmt(board.get('best_score'))}, {better} is better)"
            )
            parts.append(
                f'<li><a href="#{esc(s.dataset)}">{esc(s.dataset)}</a>: {esc(summary)}</li>'
            )
        parts.append("</ul></nav>")
    else:
        parts.append("<p>No dataset to report.</p>")
    for s in sections:
        board = s.board
        better = "higher" if board.get("higher_is_better", True) else "lower"
        parts.append(f'<section id="{esc(s.dataset)}">')
        parts.append(f"<h2>{esc(s.dataset)}</h2>")
        parts.append(
            "<p>Best model: <strong>"
            + esc(str(board.get("best_model")))
            + "</strong> ("
            + esc(f"{board.get('metric')} = {_fmt(board.get('best_score'))}, {better} is better")
            + "). Models are ranked by "
            + esc(str(board.get("metric")))
            + " on the test split.</p>"
        )
        parts.append(_table(board, leaderboard_rows(board, s.metrics, s.model_ids)))
        for topic, caption, png in s.figures:
            data = base64.b64encode(png).decode("ascii")
            alt = f"{s.dataset}: {topic}"
            parts.append(
                f'<figure id="{esc(s.dataset)}-{esc(topic)}">'
                f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
                f"<figcaption><strong>{esc(topic)}</strong>: {esc(caption)}</figcaption>"
                "</figure>"
            )
        parts.append("</section>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# --- stage ------------------------------------------------------------------------------


def caption(topic: str, spec: DatasetParams, metric: str) -> str:
    """The report caption of one figure topic."""
    return CAPTIONS[topic].format(
        target=spec.target, positive=spec.positive_class, metric=metric, top=TOP_FEATURES
    )


def dataset_figures(
    name: str,
    spec: DatasetParams,
    raw: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, float]],
    board: Mapping[str, Any],
    plot_data: Mapping[str, Mapping[str, pd.DataFrame]],
    params: Params,
) -> Iterator[tuple[str, Figure]]:
    """Every figure of one dataset, in TOPICS order, built lazily (one open figure at a time).

    An optional topic (loss) is left out when no algorithm has its plot data.
    """
    eda = raw.drop(columns=spec.drop_columns, errors="ignore")
    cap = params.plot.max_numeric_columns
    yield "balance", balance_figure(eda, spec.target, spec.positive_class, name)
    yield "distributions", distributions_figure(eda, spec.target, spec.positive_class, name, cap)
    yield "missing", missing_figure(eda, name)
    yield "correlations", correlations_figure(eda, name, cap, exclude=[spec.target])
    yield "roc", roc_figure(plot_data["roc"], name)
    yield "pr", pr_figure(plot_data["pr"], name)
    yield "calibration", calibration_figure(plot_data["calibration"], name)
    yield "metrics", metrics_figure(metrics, board, name)
    yield "importance", importance_figure(plot_data["importance"], name, board["metric"])
    if plot_data.get("loss"):
        yield "loss", loss_figure(plot_data["loss"], name, params.train.algos)


def model_ids(dataset: str, board: Mapping[str, Any], algos: Sequence[str]) -> dict[str, str]:
    """Model id per algorithm, as evaluate recorded them; checks the leaderboard is current."""
    for key in ("metric", "best_algo", "best_model", "ranking", "models"):
        if key not in board:
            raise DataError(f"leaderboard of {dataset!r} has no {key!r}: rerun evaluate")
    if sorted(board["ranking"]) != sorted(algos):
        raise DataError(
            f"leaderboard of {dataset!r} ranks {', '.join(board['ranking'])} but train.algos is "
            f"{', '.join(algos)}: rerun evaluate"
        )
    return {algo: board["models"][algo] for algo in algos}


def read_plot_data(
    layout: Layout, dataset: str, date: str, algos: Sequence[str]
) -> dict[str, dict[str, pd.DataFrame]]:
    """Plot data per topic and algorithm; an optional topic keeps the algorithms that have it."""
    data = {}
    for topic in CURVE_COLUMNS:
        paths = {algo: layout.plot_data(topic, dataset, algo, date) for algo in algos}
        if topic in OPTIONAL_TOPICS:
            paths = {algo: path for algo, path in paths.items() if path.is_file()}
        data[topic] = {algo: read_csv(path) for algo, path in paths.items()}
    return data


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    algos = params.train.algos
    pngs: dict[Path, bytes] = {}
    sections = []
    for name, spec in params.datasets.items():
        raw = read_csv(layout.raw(name, spec.snapshot), low_memory=False)
        metrics = {algo: read_json(layout.test_metrics(name, algo)) for algo in algos}
        board = read_json(layout.leaderboard(name))
        ids = model_ids(name, board, algos)
        plot_data = read_plot_data(layout, name, spec.snapshot, algos)
        figures = []
        for topic, fig in dataset_figures(name, spec, raw, metrics, board, plot_data, params):
            png = render_png(fig, params.plot.dpi)
            pngs[layout.figure(topic, name, spec.snapshot)] = png
            figures.append((topic, caption(topic, spec, board["metric"]), png))
        log.info(
            "%s: %d figures (%d raw rows, best %s)",
            name,
            len(figures),
            len(raw),
            board["best_model"],
        )
        sections.append(Section(name, board, metrics, ids, figures))

    def write_figures(tmp: Path) -> None:
        for path, png in pngs.items():
            with atomic_path(tmp / path.name) as out:
                out.write_bytes(png)

    replace_dir(layout.figures_dir, write_figures)
    log.info("wrote %d figures to %s", len(pngs), layout.figures_dir)
    page = report_html(sections, title=f"Model report: {', '.join(params.datasets)}")
    write_text(layout.report, page)
    log.info("wrote %s (%d KB)", layout.report, len(page.encode("utf-8")) // 1024)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__.splitlines()[0])
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
