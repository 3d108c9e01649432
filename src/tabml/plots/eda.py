"""EDA figures of a raw snapshot: what the data looks like before any model sees it.

Class balance, numeric distributions per class, level frequencies and positive rates of the
categorical columns, missing values and correlations, drawn from the raw CSV minus
``drop_columns``. Columns count as numeric by the model schema's rule
(:func:`tabml.schema.infer_schema`), so the figures show the columns featurize scales.

One rule (:func:`column_groups`) splits the inputs between the two per-column figures: a text
column, or any column with at most two distinct non-missing values (0/1 flags, yes/no,
booleans), is drawn as bars (``categorical``); every other numeric column as histograms per
class (``distributions``). A histogram of a 0/1 flag is two spikes that hide what matters,
the share of positives at each value.

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

EDA_TOPICS = ("balance", "distributions", "categorical", "missing", "correlations")
CAPTIONS = {
    "balance": "Rows per class of the target column {target!r} in the raw snapshot; "
    "the positive class is {positive!r}.",
    "distributions": "Numeric columns of the raw snapshot with more than two distinct values, "
    "one histogram per target class; each class is scaled to unit area so the minority class "
    "stays visible; values beyond the 0.5th and 99.5th percentiles are counted in the end "
    "bins. Two-valued columns (0/1 flags) are in the categorical figure.",
    "categorical": "Text columns and columns with at most two distinct values (0/1 flags, "
    "yes/no) of the raw snapshot, over the rows that have a target value: bars are each "
    "level's share of the rows, dots the share of {positive!r} among them, the dashed line "
    "the share of {positive!r} over all rows (all panels on one 0-100% scale). Columns in "
    "order of their association with {target!r} (V: bias-corrected Cramér's V of the levels "
    "against the target; at most plot.max_categorical_columns columns); the commonest levels "
    "first, at most plot.max_levels of them, the rarer ones grouped as other; missing values "
    "are the level (missing). Row counts in brackets.",
    "missing": "Missing values per column of the raw snapshot (imputed by featurize).",
    "correlations": "Pearson correlation between the numeric columns of the raw snapshot.",
}
# EDA of a snapshot larger than plot.eda_rows rows is drawn from a sample seeded with this:
# the same rows, so the same PNG bytes, on every rerun.
SAMPLE_SEED = 0
# A column with at most this many distinct non-missing values is drawn as bars, not histograms.
TWO_VALUED = 2
MISSING_LEVEL = "(missing)"


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
    return column_groups(frame, exclude)[0]


def _distinct(values: pd.Series) -> int:
    """Distinct non-missing values as the data means them (blank is missing, 1.0 is 1)."""
    from pandas.api.types import is_numeric_dtype

    if is_numeric_dtype(values):
        return int(values.nunique(dropna=True))
    return int(label_text(values).nunique(dropna=True))


def column_groups(
    frame: pd.DataFrame, exclude: Sequence[str] = ()
) -> tuple[list[str], list[str], list[str]]:
    """(numeric, histogram, bar) columns of ``frame`` minus ``exclude``, each in frame order.

    numeric: the model schema's numeric columns (correlations); bar: text columns and every
    column with at most :data:`TWO_VALUED` distinct non-missing values (the categorical
    figure); histogram: the other numeric columns (the distributions figure).
    """
    from tabml.schema import infer_schema

    kept = frame.drop(columns=[c for c in exclude if c in frame.columns])
    numeric, histogram, bars = [], [], []
    for spec in infer_schema(kept):
        if spec.kind == "numeric":
            numeric.append(spec.name)
        if spec.kind != "numeric" or _distinct(kept[spec.name]) <= TWO_VALUED:
            bars.append(spec.name)
        else:
            histogram.append(spec.name)
    return numeric, histogram, bars


def histogram_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Numeric columns with more than two distinct values: drawn as histograms per class."""
    return column_groups(frame, exclude)[1]


def bar_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Text and two-valued columns: drawn as level bars with the positive rate per level."""
    return column_groups(frame, exclude)[2]


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
    """Histograms per numeric column split by class: shows which columns separate the classes
    (numeric columns with more than two values; the others are in :func:`categorical_figure`)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    numeric, columns, _ = column_groups(frame, exclude=[target, *exclude])
    title = f"{dataset}: numeric columns by {target}"
    if not columns:
        return message_figure(
            title,
            "no numeric columns with more than two values (two-valued ones are in the "
            "categorical figure)"
            if numeric
            else "no numeric columns",
        )
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


def level_table(values: pd.Series, positive: pd.Series, max_levels: int) -> pd.DataFrame:
    """Rows, positives, share of rows and positive rate per level of one column.

    Levels are the values as text (:func:`label_text`: ``1.0`` is ``"1"``, blank is missing),
    the commonest first (ties by name); beyond ``max_levels`` the rarest are grouped into one
    ``other (N levels)`` row so at most ``max_levels`` rows name values; missing values are a
    last ``(missing)`` row. ``positive``: whether each row (same index) is of the positive class.
    """
    import pandas as pd

    texts = label_text(values)
    present = texts.notna()
    rows = texts[present].value_counts()
    positives = positive[present].groupby(texts[present]).sum()
    ordered = sorted(rows.index, key=lambda level: (-int(rows[level]), str(level)))
    records = [(str(v), int(rows[v]), int(positives[v])) for v in ordered]
    if len(records) > max_levels:
        rest = records[max_levels - 1 :]
        other = (f"other ({len(rest)} levels)", sum(r[1] for r in rest), sum(r[2] for r in rest))
        records = [*records[: max_levels - 1], other]
    n_missing = int((~present).sum())
    if n_missing:
        records.append((MISSING_LEVEL, n_missing, int(positive[~present].sum())))
    table = pd.DataFrame(records, columns=["level", "rows", "positives"])
    table["share"] = table["rows"] / max(len(values), 1)
    table["positive_rate"] = table["positives"] / table["rows"]
    return table


def association(table: pd.DataFrame) -> float:
    """Bias-corrected Cramér's V between a column's levels and the positive class (0: the
    positive rate is the same at every level, 1: the level decides the class), from
    :func:`level_table`, on the levels drawn (rare ones grouped).

    With a two-class outcome chi2 / n is the share-weighted spread of the level rates around
    the overall rate, over p (1 - p). Plain V grows with the number of sparse levels even
    without any signal (an id column scores high), so the ranking uses Bergsma's correction
    (2013): chi2 / n less its expected value (k - 1) / (n - 1), over the corrected
    min(k - 1, 1).
    """
    n, k = int(table["rows"].sum()), len(table)
    if n < 2 or k < 2:
        return 0.0
    p = int(table["positives"].sum()) / n
    if p in (0.0, 1.0):
        return 0.0
    spread = float((table["rows"] / n * (table["positive_rate"] - p) ** 2).sum())
    phi2 = max(0.0, spread / (p * (1 - p)) - (k - 1) / (n - 1))
    scale = min(k - 1 - (k - 1) ** 2 / (n - 1), 1 - 1 / (n - 1))
    return min(1.0, math.sqrt(phi2 / scale)) if scale > 0 else 0.0


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def categorical_figure(
    frame: pd.DataFrame,
    target: str,
    positive_class: str,
    dataset: str,
    max_columns: int = 12,
    max_levels: int = 15,
    exclude: Sequence[str] = (),
    *,
    total_rows: int | None = None,
) -> Figure:
    """Per text or two-valued column, each level's share of rows and positive rate: shows
    which categories carry the signal (churn's contract) and how rare each level is.

    Columns in order of :func:`association` (ties in frame order), at most ``max_columns``;
    all panels share one 0-1 axis, so a bar or dot means the same everywhere. Rows without a
    target value are left out (the balance figure counts them).
    """
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    require_target(frame, target, dataset)
    columns = bar_columns(frame, exclude=[target, *exclude])
    title = f"{dataset}: categorical and two-valued columns by {target}"
    labels = label_text(frame[target])
    labelled = labels.notna()
    if not columns:
        return message_figure(title, "no categorical or two-valued columns")
    if not labelled.any():
        return message_figure(title, f"no row has a {target} value")
    positive = labels[labelled] == positive_class
    rows = frame[labelled]
    tables = {c: level_table(rows[c], positive, max_levels) for c in columns}
    scores = {c: association(t) for c, t in tables.items()}
    ranked = sorted(columns, key=lambda c: (-round(scores[c], 9), columns.index(c)))
    shown = ranked[:max_columns]
    notes = []
    if len(shown) < len(columns):
        notes.append(f"{len(shown)} of {len(columns)} columns, the most associated with {target}")
    notes += _sampled(frame, total_rows)
    if notes:
        title += f" ({'; '.join(notes)})"
    overall = float(positive.mean())
    names = {
        c: [f"{_short(lv)} ({n:,})" for lv, n in zip(t["level"], t["rows"], strict=True)]
        for c, t in tables.items()
        if c in shown
    }
    with style() as plt:
        fig = plt.figure()
        widest = max(len(name) for c in shown for name in names[c])
        boxes = _panel_boxes(fig, [len(names[c]) for c in shown], widest)
        for box, column in zip(boxes, shown, strict=True):
            ax = fig.add_axes(box)
            table = tables[column]
            y = np.arange(len(table))
            bars = ax.barh(
                y,
                table["share"],
                height=0.7,
                color=NEGATIVE_COLOR,
                alpha=0.45,
                label="share of rows",
            )
            dots = ax.scatter(
                table["positive_rate"],
                y,
                s=18,
                color=POSITIVE_COLOR,
                zorder=3,
                clip_on=False,  # a rate of 0% or 100% sits on the frame, whole
                label=f"positive rate ({target} = {positive_class!r})",
            )
            line = ax.axvline(
                overall,
                ls="--",
                lw=1,
                color=POSITIVE_COLOR,
                label=f"overall positive rate ({overall:.1%})",
            )
            ax.set_yticks(y, names[column])
            ax.set_ylim(len(table) - 0.5, -0.5)  # commonest level at the top
            ax.set_xlim(0.0, 1.0)
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_title(f"{column} (V {scores[column]:.2f})")
            ax.tick_params(labelsize=7)
            ax.grid(axis="x", alpha=0.3)
        fig.legend(
            handles=[bars, dots, line], loc="lower center", ncols=3, fontsize=8, frameon=False
        )
        fig.suptitle(title, y=1 - 0.12 / fig.get_figheight(), va="top")
    return fig


# Layout of the categorical figure, in inches: panels are placed by hand (a layout engine
# measures every tick label and costs more than drawing the figure).
_PANEL_WIDTH = 2.9
_LEVEL_HEIGHT = 0.22
_CHAR_WIDTH = 0.055  # of a 7 pt tick label (DejaVu Sans, mixed case)


def _panel_boxes(fig: Figure, levels: Sequence[int], label_chars: int) -> list[list[float]]:
    """Axes rectangles (figure fractions) of panels with ``levels`` bars each, three per row,
    room for tick labels of ``label_chars`` characters on the left; sizes ``fig`` to fit."""
    ncols = min(3, len(levels))
    nrows = math.ceil(len(levels) / ncols)
    label = _CHAR_WIDTH * label_chars + 0.15
    column = label + _PANEL_WIDTH + 0.3
    heights = [
        _LEVEL_HEIGHT * max(levels[r * ncols : (r + 1) * ncols]) + 0.15 for r in range(nrows)
    ]
    title, ticks, top, bottom = 0.3, 0.35, 0.45, 0.45
    width = column * ncols + 0.1
    height = top + sum(h + title + ticks for h in heights) + bottom
    fig.set_size_inches(width, height)
    boxes = []
    for i in range(len(levels)):
        r, c = divmod(i, ncols)
        above = top + sum(h + title + ticks for h in heights[:r]) + title
        left = 0.1 + c * column + label
        box = [left / width, 1 - (above + heights[r]) / height, _PANEL_WIDTH / width]
        boxes.append([*box, heights[r] / height])
    return boxes


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
