"""Core: validate raw rows against a model's schema, predict, score. No web framework here.

Two entry points produce the same validated :class:`Batch`:

- :func:`batch_from_records` for JSON rows (``/predict``): plain Python, no pandas, because
  building a one-row DataFrame and running ``conform`` on it costs milliseconds;
- :func:`batch_from_frame` for CSV uploads and the batch CLI: ``stages.model.conform``, the
  pipeline's own validation, vectorised.

Both follow ``conform``'s rules (extra columns ignored; a missing column, a non-number in a
numeric column or an unseen category is an error naming the column and the row) with two
deliberate differences: null, empty and blank values count as missing everywhere (they are
imputed), and non-finite numbers (``inf``) are refused, since the pipeline cannot score them.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serving.errors import InputError
from serving.fastpath import CompiledModel, try_compile
from stages.errors import SchemaError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from stages.model import ColumnSpec, TrainedModel

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ABSENT = object()


@dataclass(frozen=True)
class Batch:
    """Validated rows, column-wise: numbers as float64 (NaN = missing), categories as text."""

    n_rows: int
    numeric: dict[str, np.ndarray]
    categorical: dict[str, list[str | None]]


def columns_frame(
    schema: list[ColumnSpec],
    numeric: Mapping[str, Any],
    categorical: Mapping[str, Sequence[Any]],
    n_rows: int,
) -> pd.DataFrame:
    """The DataFrame ``conform`` would return for these columns: what the sklearn path eats."""
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for spec in schema:
        if spec.kind == "numeric":
            data[spec.name] = np.asarray(numeric[spec.name], dtype=np.float64)
        else:
            column = np.empty(n_rows, dtype=object)
            column[:] = [v if isinstance(v, str) else np.nan for v in categorical[spec.name]]
            data[spec.name] = column
    return pd.DataFrame(data, index=pd.RangeIndex(n_rows))


# --- JSON rows --------------------------------------------------------------------------


def _number(value: Any) -> float:
    """A JSON value as a float (NaN = missing); raises ValueError with the reason."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise ValueError("is not a finite number") from None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return math.nan
        if not _NUMBER_RE.fullmatch(text):
            raise ValueError("is not a number")
        number = float(text)
    else:
        raise ValueError("is not a number")
    if math.isnan(number) and not isinstance(value, str):
        return math.nan  # NaN from a lenient JSON parser: a missing value
    if not math.isfinite(number):
        raise ValueError("is not a finite number")
    return number


def _text(value: Any) -> str | None:
    """A JSON value as category text, as ``stages.model.as_text`` spells it; None = missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int):  # bool included: str(True) == "True", as as_text does
        return str(value)
    raise ValueError("is not a string or a number")


def batch_from_records(records: Sequence[Mapping[str, Any]], schema: list[ColumnSpec]) -> Batch:
    """Validate JSON rows; the first problem raises SchemaError naming the column and row."""
    import numpy as np

    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, list[str | None]] = {}
    for spec in schema:
        name = spec.name
        if spec.kind == "numeric":
            values = []
            for row, record in enumerate(records):
                value = record.get(name, _ABSENT)
                if value is _ABSENT:
                    raise _missing(name, row, schema)
                try:
                    values.append(_number(value))
                except ValueError as exc:
                    raise SchemaError(f"column {name!r}, row {row}: {value!r} {exc}") from None
            numeric[name] = np.array(values, dtype=np.float64)
        else:
            allowed = frozenset(spec.categories)
            texts: list[str | None] = []
            for row, record in enumerate(records):
                value = record.get(name, _ABSENT)
                if value is _ABSENT:
                    raise _missing(name, row, schema)
                try:
                    text = _text(value)
                except ValueError as exc:
                    raise SchemaError(f"column {name!r}, row {row}: {value!r} {exc}") from None
                if text is not None and allowed and text not in allowed:
                    raise SchemaError(
                        f"column {name!r}, row {row}: unseen category {text!r} "
                        f"(allowed: {', '.join(spec.categories)})"
                    )
                texts.append(text)
            categorical[name] = texts
    return Batch(len(records), numeric, categorical)


def _missing(name: str, row: int, schema: list[ColumnSpec]) -> SchemaError:
    return SchemaError(
        f"column {name!r}, row {row}: missing (send null for an unknown value; "
        f"expected columns: {', '.join(c.name for c in schema)})"
    )


# --- CSV --------------------------------------------------------------------------------


def read_csv_bytes(data: bytes, sep: str = ",", what: str = "the uploaded file") -> pd.DataFrame:
    """Parse a CSV with pandas (never anything else: no pickle), refusing what is not one."""
    import pandas as pd

    empty = f"{what} is empty: send a CSV with a header row and at least one row"
    if not data.strip():
        raise InputError(empty)
    if b"\x00" in data:
        raise InputError(f"{what} is not a CSV (it holds binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not a CSV (it is not UTF-8 text)") from None
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(empty) from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} is not a readable CSV: {first}") from None
    if len(frame) == 0:
        raise InputError(f"{what} has a header but no rows")
    return frame


def batch_from_frame(frame: pd.DataFrame, schema: list[ColumnSpec], *, csv: bool = False) -> Batch:
    """Validate raw rows with ``conform``; ``csv`` adds the file line to row numbers."""
    import numpy as np

    from stages.model import conform

    present = [c.name for c in schema if c.name in frame.columns]
    rows = frame.loc[:, present].copy()
    for name in present:  # blank text is missing, as in JSON (pandas already did "" in CSV)
        col = rows[name]
        if col.dtype == object:
            blank = col.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
            if blank.any():
                rows.loc[blank, name] = np.nan
    try:
        conformed = conform(rows, schema)
        numeric: dict[str, np.ndarray] = {}
        for spec in schema:
            if spec.kind == "numeric":
                values = conformed[spec.name].to_numpy(dtype=np.float64)
                infinite = np.isinf(values)
                if infinite.any():
                    row = int(infinite.nonzero()[0][0])
                    raise SchemaError(
                        f"column {spec.name!r}, row {row}: {values[row]} is not a finite number"
                    )
                numeric[spec.name] = values
    except SchemaError as exc:
        if not csv:
            raise
        message = re.sub(
            r"\brow (\d+)\b",
            lambda m: f"row {m[1]} (CSV line {int(m[1]) + 2})",
            str(exc),
            count=1,
        )
        raise SchemaError(message) from None
    categorical = {
        spec.name: [v if isinstance(v, str) else None for v in conformed[spec.name].tolist()]
        for spec in schema
        if spec.kind == "categorical"
    }
    return Batch(len(conformed), numeric, categorical)


# --- predicting and scoring ---------------------------------------------------------------


def single_threaded(model: TrainedModel) -> None:
    """n_jobs=1 on the estimator: a thread pool costs far more than it saves on small batches.

    Predictions do not change: each tree or booster computes the same numbers on any thread.
    """
    estimator = model.pipeline.steps[-1][1]
    if "n_jobs" in estimator.get_params(deep=False):
        estimator.set_params(n_jobs=1)


class Predictor:
    """Probabilities for validated batches of one model: numpy fast path or sklearn pipeline."""

    def __init__(self, model: TrainedModel, *, fast_path: bool = True) -> None:
        single_threaded(model)
        self.model = model
        self.compiled: CompiledModel | None = None
        if fast_path:
            self.compiled = try_compile(
                model, lambda num, cat, n: columns_frame(model.schema, num, cat, n)
            )

    def predict_proba(self, batch: Batch) -> np.ndarray:
        """(n_rows, 2) probabilities, columns ordered as ``model.classes``."""
        if self.compiled is not None:
            return self.compiled.predict_proba(batch.numeric, batch.categorical, batch.n_rows)
        frame = columns_frame(self.model.schema, batch.numeric, batch.categorical, batch.n_rows)
        return self.model.pipeline.predict_proba(frame)


def predictions(
    proba: np.ndarray, classes: Sequence[str], threshold: float
) -> list[dict[str, Any]]:
    """One record per row: the predicted class and the probability of each class.

    The positive class (``classes[1]``) is predicted when its probability reaches
    ``threshold``, as ``TrainedModel.predict`` and the evaluate stage do.
    """
    negative, positive = classes
    return [
        {
            "prediction": positive if p1 >= threshold else negative,
            "probabilities": {negative: p0, positive: p1},
        }
        for p0, p1 in zip(proba[:, 0].tolist(), proba[:, 1].tolist(), strict=True)
    ]


def target_metrics(
    frame: pd.DataFrame, model: TrainedModel, proba: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Test metrics (``stages.evaluate.score``) on the rows of ``frame`` whose target is known."""
    from stages.evaluate import score
    from stages.model import as_text

    labels = as_text(frame[model.target])
    labelled = labels.notna().to_numpy()
    unknown = labelled & ~labels.isin(list(model.classes)).to_numpy()
    if unknown.any():
        row = int(unknown.nonzero()[0][0])
        raise SchemaError(
            f"column {model.target!r}, row {row} (CSV line {row + 2}): unknown class "
            f"{labels.iloc[row]!r} (classes: {', '.join(model.classes)})"
        )
    y = (labels[labelled] == model.classes[1]).to_numpy().astype(int)
    result: dict[str, Any] = {"target": model.target, "n_labelled": int(labelled.sum())}
    if len(set(y.tolist())) < 2:
        result["metrics"] = None
        result["note"] = "metrics need both classes among the labelled rows"
        return result
    result["metrics"] = score(y, proba[labelled, 1], threshold)
    return result
