"""EDA figures of a raw snapshot: what the data looks like before any model sees it.

Class balance, numeric distributions per class, missing values and correlations, drawn from
the raw CSV minus ``drop_columns``. Columns count as numeric by the model schema's rule
(:func:`tabml.schema.infer_schema`), so the figures show the columns featurize scales.

A large snapshot is drawn from a seeded sample of its rows (:func:`sample_rows`, at most
``plot.eda_rows``): the figures cost the same at any size, and their titles say how many
rows they show out of how many (``total_rows``).
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
# EDA of a snapshot larger than plot.eda_rows rows is drawn from a sample seeded with this:
# the same rows, so the same PNG bytes, on every rerun.
SAMPLE_SEED = 0


def sample_rows(frame: pd.DataFrame, rows: int, seed: int = SAMPLE_SEED) -> pd.DataFrame:
    """A seeded uniform sample of at most ``rows`` rows, in their original order (the whole
    frame when it has no more)."""
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).sort_index()


def _rows(frame: pd.DataFrame, total_rows: int | None) -> str:
    """How many rows a figure shows: "1,234 rows", or "sample of 1,000 of 5,000 rows"."""
    if total_rows is None or total_rows == len(frame):
        return f"{len(frame):,} rows"
    return f"sample of {len(frame):,} of {total_rows:,} rows"


def _sampled(frame: pd.DataFrame, total_rows: int | None) -> list[str]:
    """The title note of a sampled frame (nothing for a whole snapshot)."""
    if total_rows is None or total_rows == len(frame):
        return []
    return [_rows(frame, total_rows)]


def require_target(frame: pd.DataFrame, target: str, dataset: str) -> None:
    """Refuse a snapshot without its target column, naming both."""
    if target not in frame.columns:
        raise DataError(f"dataset {dataset!r} has no target column {target!r}")


def label_text(labels: pd.Series) -> pd.Series:
    """:func:`tabml.schema.as_text` of a label column, converting each distinct value once
    (a target has a handful of values and up to ``plot.eda_rows`` rows)."""
    import numpy as np
    import pandas as pd

    from tabml.schema import as_text

    codes, uniques = pd.factorize(labels.astype(object), use_na_sentinel=True)
    texts = as_text(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)
    out = np.append(texts, np.nan)[codes]  # code -1 (missing) picks the appended NaN
    return pd.Series(out, index=labels.index, dtype=object)


def _class_order(texts: pd.Series, positive_class: str) -> list[str]:
    """Other classes sorted, positive class last (drawn on top, red); ``texts`` are labels
    as text (:func:`label_text`)."""
    seen = set(texts.dropna())
    return [*sorted(seen - {positive_class}), *([positive_class] if positive_class in seen else [])]


def numeric_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Columns featurize treats as numeric (the model schema's rule), in frame order."""
    from tabml.schema import infer_schema

    kept = frame.drop(columns=[c for c in exclude if c in frame.columns])
    return [c.name for c in infer_schema(kept) if c.kind == "numeric"]


def balance_figure(
    frame: pd.DataFrame,
    target: str,
    positive_class: str,
    dataset: str,
    *,
    total_rows: int | None = None,
) -> Figure:
    """Bar chart of rows per target class: imbalance decides which metrics mean anything."""
    require_target(frame, target, dataset)
    labels = frame[target]
    texts = label_text(labels)
    order = _class_order(texts, positive_class)
    counts = texts.dropna().value_counts()
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
        ax.set_title(f"{dataset}: class balance of {target} ({_rows(frame, total_rows)})")
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
    *,
    total_rows: int | None = None,
) -> Figure:
    """Histograms per numeric column split by class: shows which columns separate the classes."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    columns = numeric_columns(frame, exclude=[target, *exclude])
    title = f"{dataset}: numeric columns by {target}"
    if not columns:
        return message_figure(title, "no numeric columns")
    shown = columns[:max_columns]
    notes = [f"first {len(shown)} of {len(columns)}"] if len(shown) < len(columns) else []
    notes += _sampled(frame, total_rows)
    if notes:
        title += f" ({'; '.join(notes)})"
    labelled = frame[frame[target].notna()]
    labels = label_text(labelled[target])
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


def missing_figure(frame: pd.DataFrame, dataset: str, *, total_rows: int | None = None) -> Figure:
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
            title = f"{dataset}: missing values per column ({total:,} cells"
            title += "".join(f" in a {note}" for note in _sampled(frame, total_rows)) + ")"
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
            title = f"{dataset}: no missing values ({_rows(frame, total_rows)})"
        ax.set_title(title)
        ax.set_xlabel("missing values")
        ax.set_ylabel("column")
        fig.tight_layout()
    return fig


def correlations_figure(
    frame: pd.DataFrame,
    dataset: str,
    max_columns: int = 12,
    exclude: Sequence[str] = (),
    *,
    total_rows: int | None = None,
) -> Figure:
    """Pearson correlation heatmap of numeric columns: spots redundant inputs."""
    import numpy as np

    columns = numeric_columns(frame, exclude=exclude)
    title = f"{dataset}: correlation of numeric columns"
    if len(columns) < 2:
        found = f"{len(columns)} numeric column" + ("" if len(columns) == 1 else "s")
        return message_figure(title, f"{found}: nothing to correlate")
    shown = columns[:max_columns]
    notes = [f"first {len(shown)} of {len(columns)}"] if len(shown) < len(columns) else []
    notes += _sampled(frame, total_rows)
    if notes:
        title += f" ({'; '.join(notes)})"
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
