"""The input schema of a model and the ONE validation path every input goes through.

A model reads raw rows exactly as they appear in the raw CSV (minus the target). Whatever
brings them — the pipeline's test split, ``POST /predict`` JSON, a ``POST /validate`` upload,
the batch CLI — :func:`validate` applies the same two per-value rules (:func:`number` for
numeric columns, :func:`text` for categorical ones), so all of them accept and reject exactly
the same values with the same message, naming the column and the row:

- missing: ``None``/``null``, NaN, empty and blank text (imputed as in training);
- numeric: numbers and ASCII decimal text; never booleans, never non-finite, and at most
  ``FLOAT_LIMIT`` in size (tree models compute in 32-bit floats);
- categorical: text as is, numbers as their shortest text (``1.0`` is ``"1"``), booleans as
  ``"True"``/``"False"``; with ``strict_categories`` only the categories seen in training.

Columns pandas already parsed as numbers are checked with numpy, not value by value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tabml.errors import SchemaError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# The largest magnitude a 32-bit float holds: random forests and XGBoost cast to float32.
FLOAT_LIMIT = 3.4028234663852886e38
# ASCII only: Python's float() would also take fullwidth digits (U+FF10..U+FF19) or "1_000",
# which pandas never reads as numbers.
_NUMBER_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity)", re.IGNORECASE
)
_ABSENT = object()
# A message names at most this many values (categories, columns): examples, not a column.
LIST_LIMIT = 10


@dataclass(frozen=True)
class ColumnSpec:
    """One raw input column as seen in the train split (a plain dataclass: validating rows
    must not load pydantic; the cards that store it are pydantic models)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 (read by the cards' validation)

    name: str
    kind: Literal["numeric", "categorical"]
    dtype: str  # pandas dtype in the raw CSV, e.g. int64, float64, object
    categories: tuple[str, ...] = ()  # categorical only: values seen in training


def first_few(items: Iterable[str], limit: int = LIST_LIMIT) -> str:
    """``a, b, c`` or, beyond ``limit`` items, the first ``limit`` then ``... and N more``:
    an error line stays one readable line even for a column of 1,500 ids."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... and {len(items) - limit} more"


# --- the two rules ---------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and value != value)
        or (isinstance(value, str) and not value.strip())
    )


def number(value: Any) -> float:
    """A value of a numeric column as a float (NaN = missing); ValueError says why not."""
    if type(value) is float and abs(value) <= FLOAT_LIMIT:  # the usual case, first
        return value
    if _is_blank(value):
        return math.nan
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:
            raise ValueError("is not a finite number") from None
    elif isinstance(value, str):
        if not _NUMBER_RE.fullmatch(value.strip()):
            raise ValueError("is not a number")
        result = float(value)
    else:
        raise ValueError("is not a number")
    if not math.isfinite(result):
        raise ValueError("is not a finite number")
    if abs(result) > FLOAT_LIMIT:
        raise ValueError(f"is out of range (at most {FLOAT_LIMIT:.3g} in size)")
    return result


def text(value: Any) -> str | None:
    """A value of a categorical column (or a label) as text; None = missing."""
    if type(value) is str:  # the usual case, first
        return value if value.strip() else None
    if _is_blank(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int):  # bool included: str(True) == "True"
        return str(value)
    raise ValueError("is not a string or a number")


def python_values(column: pd.Series) -> list[Any]:
    """A column's values as Python objects, pandas' missing markers (NaN, None, ``pd.NA``,
    NaT) as None: what the per-value rules read."""
    import numpy as np

    if isinstance(column.dtype, np.dtype) and column.dtype != object:
        return column.tolist()  # numbers and booleans: NaN is the only missing marker
    return column.astype(object).where(column.notna(), None).tolist()


def as_text(values: pd.Series) -> pd.Series:
    """Labels and categories as text (the :func:`text` rule); missing stays NaN.

    pandas reads an integer column with a blank as float, so ``1.0`` is written ``"1"``: the
    label ``1`` in params, in the CSV and in a JSON request all compare equal.
    """
    import numpy as np
    import pandas as pd

    out = [text(v) for v in python_values(values)]
    return pd.Series([np.nan if v is None else v for v in out], index=values.index, dtype=object)


def _numbers_and_blanks(values: list[Any]) -> bool:
    """True if some value is a number (or number text) and all others are blank: the column
    pandas would have parsed as numbers had its blank cells been empty."""
    seen = False
    for value in values:
        if _is_blank(value):
            continue
        if isinstance(value, bool) or not (
            isinstance(value, int | float)
            or (isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()))
        ):
            return False  # a text column stops here, usually at its first value
        seen = True
    return seen


def infer_schema(frame: pd.DataFrame) -> list[ColumnSpec]:
    """Column kinds from pandas dtypes: numbers are numeric, everything else categorical.

    Blank cells are missing values, so a column pandas read as text only because some cells
    hold spaces (``" "``) is numeric when all its other values are numbers (recorded as
    float64, the dtype pandas gives it once those cells are empty); :func:`validate` then
    reads its text with the :func:`number` rule, blanks as missing.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    specs = []
    for name in frame.columns:
        col = frame[name]
        if is_numeric_dtype(col) and not is_bool_dtype(col):
            specs.append(ColumnSpec(name=str(name), kind="numeric", dtype=str(col.dtype)))
            continue
        values = python_values(col)
        if _numbers_and_blanks(values):
            specs.append(ColumnSpec(name=str(name), kind="numeric", dtype="float64"))
        else:
            seen = tuple(sorted({t for t in map(text, values) if t is not None}))
            specs.append(
                ColumnSpec(
                    name=str(name), kind="categorical", dtype=str(col.dtype), categories=seen
                )
            )
    return specs


# --- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Validated rows, column-wise: numbers as float64 (NaN = missing), categories as text."""

    n_rows: int
    numeric: dict[str, np.ndarray]
    categorical: dict[str, list[str | None]]
    first_line: int | None = None  # file line of row 0, for CSV uploads

    def where(self, name: str, row: int) -> str:
        """How an error names a value: column, row and (for a CSV) its line."""
        return _where(name, row, self.first_line)

    def frame(self, schema: Sequence[ColumnSpec]) -> pd.DataFrame:
        """The rows as the model's pipeline reads them: schema order, NaN for missing."""
        import numpy as np
        import pandas as pd

        data: dict[str, Any] = {}
        for spec in schema:
            if spec.kind == "numeric":
                data[spec.name] = self.numeric[spec.name]
            else:
                column = np.empty(self.n_rows, dtype=object)
                column[:] = [np.nan if v is None else v for v in self.categorical[spec.name]]
                data[spec.name] = column
        return pd.DataFrame(data, index=pd.RangeIndex(self.n_rows))


def _where(name: str, row: int, first_line: int | None) -> str:
    line = f" (CSV line {row + first_line})" if first_line is not None else ""
    return f"column {name!r}, row {row}{line}"


def _columns(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]], schema: Sequence[ColumnSpec]
) -> tuple[int, dict[str, Any]]:
    """(row count, one column of raw values per schema column): a numpy array where pandas
    parsed numbers, else a list of Python values."""
    if isinstance(rows, Sequence):
        columns: dict[str, Any] = {}
        for spec in schema:
            values = [record.get(spec.name, _ABSENT) for record in rows]
            if any(v is _ABSENT for v in values):
                row = next(i for i, v in enumerate(values) if v is _ABSENT)
                raise SchemaError(
                    f"column {spec.name!r}, row {row}: missing (send null for an unknown value; "
                    f"expected columns: {first_few(c.name for c in schema)})"
                )
            columns[spec.name] = values
        return len(rows), columns
    missing = [c.name for c in schema if c.name not in rows.columns]
    if missing:
        raise SchemaError(
            f"missing column {missing[0]!r} (expected: {first_few(c.name for c in schema)})"
        )
    columns = {}
    for spec in schema:
        col = rows[spec.name]
        if isinstance(col, type(rows)):
            raise SchemaError(f"column {spec.name!r} appears twice")
        parsed = spec.kind == "numeric" and col.dtype.kind in "iuf"
        columns[spec.name] = col.to_numpy(dtype="float64") if parsed else python_values(col)
    return len(rows), columns


def validate(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    schema: Sequence[ColumnSpec],
    *,
    strict_categories: bool = True,
    first_line: int | None = None,
) -> Batch:
    """Check raw rows (a DataFrame, or JSON records) against ``schema``; the first problem
    raises :class:`SchemaError` naming the column and the row.

    Extra columns are ignored. ``first_line`` is the file line of row 0, for CSV uploads.
    Without ``strict_categories`` an unseen category passes (the model encodes it as zeros):
    the evaluate stage scores test rows whose rare categories training never saw.
    """
    import numpy as np

    n_rows, columns = _columns(rows, schema)
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, list[str | None]] = {}
    for spec in schema:
        values = columns[spec.name]
        if spec.kind == "numeric":
            if isinstance(values, np.ndarray):
                with np.errstate(invalid="ignore"):
                    bad = ~(np.isnan(values) | (np.abs(values) <= FLOAT_LIMIT))
                if bad.any():
                    values = values.tolist()  # the rule names the first bad value
                else:
                    numeric[spec.name] = values
                    continue
            parsed = np.empty(len(values), dtype=np.float64)
            for row, value in enumerate(values):
                try:
                    parsed[row] = number(value)
                except ValueError as exc:
                    raise SchemaError(
                        f"{_where(spec.name, row, first_line)}: {value!r} {exc}"
                    ) from None
            numeric[spec.name] = parsed
        else:
            texts: list[str | None] = []
            allowed = frozenset(spec.categories) if strict_categories and spec.categories else None
            for row, value in enumerate(values):
                try:
                    label = text(value)
                except ValueError as exc:
                    raise SchemaError(
                        f"{_where(spec.name, row, first_line)}: {value!r} {exc}"
                    ) from None
                if allowed is not None and label is not None and label not in allowed:
                    raise SchemaError(
                        f"{_where(spec.name, row, first_line)}: unseen category {label!r} "
                        f"(allowed: {first_few(spec.categories)})"
                    )
                texts.append(label)
            categorical[spec.name] = texts
    return Batch(n_rows, numeric, categorical, first_line)


def conform(
    rows: pd.DataFrame, schema: Sequence[ColumnSpec], *, strict_categories: bool = True
) -> pd.DataFrame:
    """:func:`validate` ``rows``, then the frame the model's pipeline reads."""
    return validate(rows, schema, strict_categories=strict_categories).frame(schema)
