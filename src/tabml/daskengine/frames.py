"""The text rule (:func:`tabml.schema.text`) on whole partitions, at C speed.

A partition has many rows but, in most columns, few distinct values: pandas hashes every
cell in C (``value_counts``, ``unique``), and the rule runs in Python once per distinct
value, never once per cell. The results are :func:`tabml.schema.as_text`'s: a column
mixing booleans or text with numbers (where ``True == 1`` would merge two distinct values)
takes the per-cell rule itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


# pandas' inferred kinds of a column whose distinct values never compare equal across types
_ONE_KIND = frozenset(
    {"string", "empty", "boolean", "floating", "integer", "mixed-integer-float", "decimal"}
)


def _one_kind(column: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.infer_dtype(column, skipna=True) in _ONE_KIND


def text_counts(column: pd.Series) -> dict[str, int]:
    """How many cells hold each label (blank and missing cells left out), labels spelled
    by the text rule: ``as_text(column).value_counts()``."""
    from tabml.schema import as_text, text

    if not _one_kind(column):
        return {k: int(n) for k, n in as_text(column).value_counts().items()}
    counts: dict[str, int] = {}
    for value, n in column.value_counts(dropna=True).items():
        label = text(value)
        if label is not None:
            counts[label] = counts.get(label, 0) + int(n)
    return counts


def text_series(column: pd.Series) -> pd.Series:
    """``as_text(column)``: each value by the text rule, missing (and blank) as NaN."""
    import numpy as np
    import pandas as pd

    from tabml.schema import as_text, text

    if not _one_kind(column):
        return as_text(column)
    distinct = pd.unique(column.dropna().to_numpy())
    labels = {value: text(value) for value in distinct}
    mapped = column.map(labels)
    return mapped.where(mapped.notna(), np.nan).astype(object)


def blank_masked(column: pd.Series) -> pd.Series:
    """The column with its blank (whitespace-only) text cells missing."""
    import pandas as pd

    distinct = pd.unique(column.dropna().to_numpy())
    blanks = [v for v in distinct if isinstance(v, str) and not v.strip()]
    return column.mask(column.isin(blanks)) if blanks else column
