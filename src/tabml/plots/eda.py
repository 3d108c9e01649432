"""EDA figures of a raw snapshot: what the data looks like before any model sees it.

Class balance, numeric distributions per class, missing values and correlations, drawn from
the raw CSV minus ``drop_columns``. Columns count as numeric by the model schema's rule
(:func:`tabml.schema.infer_schema`), so the figures show the columns featurize scales.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError
from tabml.plots import NEGATIVE_COLOR, POSITIVE_COLOR, message_figure, percent, style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

EDA_TOPICS = ("balance", "distributions", "missing", "correlations")
CAPTIONS = {
    "balance": "Rows per class of the target column {target!r} in the raw snapshot; "
    "the positive class is {positive!r}.",
    "distributions": "Numeric columns of the raw snapshot, one histogram per target class; "
    "each class is scaled to unit area so the minority class stays visible; values beyond "
    "the 0.5th and 99.5th percentiles are counted in the end bins.",
    "missing": "Missing values per column of the raw snapshot (imputed by featurize).",
    "correlations": "Pearson correlation between the numeric columns of the raw snapshot.",
}


def _class_order(labels: pd.Series, positive_class: str) -> list[str]:
    """Other classes sorted, positive class last (drawn on top, red)."""
    from tabml.schema import as_text

    seen = set(as_text(labels).dropna())
    return [*sorted(seen - {positive_class}), *([positive_class] if positive_class in seen else [])]


def numeric_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Columns featurize treats as numeric (the model schema's rule), in frame order."""
    from tabml.schema import infer_schema

    kept = frame.drop(columns=[c for c in exclude if c in frame.columns])
    return [c.name for c in infer_schema(kept) if c.kind == "numeric"]


def balance_figure(frame: pd.DataFrame, target: str, positive_class: str, dataset: str) -> Figure:
    """Bar chart of rows per target class: imbalance decides which metrics mean anything."""
    from tabml.schema import as_text

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
    with style() as plt:
        fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(values) + 2), 4))
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:,} ({percent(v, total)})" for v in values], padding=2)
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

    from tabml.schema import as_text

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
    with style() as plt:
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
    with style() as plt:
        fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(columns) + 1.4)))
        bars = ax.barh(columns, values, color="tab:orange")
        ax.invert_yaxis()  # first column at the top, as in the CSV
        if total:
            ax.bar_label(
                bars,
                labels=[f"{v:,} ({percent(v, n_rows)})" if v else "" for v in values],
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
    with style() as plt:
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
