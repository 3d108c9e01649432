"""The deployable model file: preprocessing plus estimator, with what it was trained on.

``models/<algo>_<dataset>_v<N>.pkl`` holds one :class:`TrainedModel`. It predicts from raw
rows exactly as they appear in the raw CSV (minus the target), and records the input schema,
the classes, the params, the data snapshot and the training metrics, so a server or a batch
job needs nothing else.

Only the standard library is imported at module level: unpickling loads scikit-learn (and
xgboost for xgb models) anyway, and a stage that only reads the schema should not pay more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stages.errors import SchemaError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class ColumnSpec:
    """One raw input column as seen in the train split."""

    name: str
    kind: str  # "numeric" or "categorical"
    dtype: str  # pandas dtype in the raw CSV, e.g. int64, float64, object
    categories: tuple[str, ...] = ()  # categorical only: values seen in training


def as_text(values: pd.Series) -> pd.Series:
    """Labels and categories as text; missing stays NaN.

    pandas reads an integer column with a blank as float, so ``1.0`` is written ``"1"``:
    the label ``1`` in params, in the CSV and in a JSON request all compare equal.
    """
    import numpy as np
    import pandas as pd

    def text(value: Any) -> str:
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    present = values.notna()
    out = pd.Series(np.nan, index=values.index, dtype="object")
    out[present] = values[present].map(text)
    return out


def infer_schema(frame: pd.DataFrame) -> list[ColumnSpec]:
    """Column kinds from pandas dtypes: numbers are numeric, everything else categorical."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    specs = []
    for name in frame.columns:
        col = frame[name]
        if is_numeric_dtype(col) and not is_bool_dtype(col):
            specs.append(ColumnSpec(str(name), "numeric", str(col.dtype)))
        else:
            seen = tuple(sorted(as_text(col).dropna().unique()))
            specs.append(ColumnSpec(str(name), "categorical", str(col.dtype), seen))
    return specs


def conform(
    rows: pd.DataFrame, schema: list[ColumnSpec], *, strict_categories: bool = True
) -> pd.DataFrame:
    """Return ``rows`` reduced to the schema's columns, in order, with the trained types.

    Extra columns are dropped. A missing column, a non-numeric value in a numeric column
    or (when ``strict_categories``) a category never seen in training raises
    :class:`SchemaError` naming the column and the first offending row.
    """
    import pandas as pd

    missing = [c.name for c in schema if c.name not in rows.columns]
    if missing:
        raise SchemaError(
            f"missing column {missing[0]!r} (expected: {', '.join(c.name for c in schema)})"
        )
    out = {}
    for spec in schema:
        col = rows[spec.name]
        if spec.kind == "numeric":
            numeric = pd.to_numeric(col, errors="coerce")
            bad = numeric.isna() & col.notna() & (col.astype(str).str.strip() != "")
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise SchemaError(
                    f"column {spec.name!r}, row {row}: {col.iloc[row]!r} is not a number"
                )
            infinite = numeric.abs() == float("inf")
            if infinite.any():
                row = int(infinite.to_numpy().nonzero()[0][0])
                raise SchemaError(
                    f"column {spec.name!r}, row {row}: {col.iloc[row]!r} is not a finite number"
                )
            out[spec.name] = numeric.astype("float64")
        else:
            # Missing stays NaN (what SimpleImputer looks for); every value is compared as text.
            present, text = col.notna(), as_text(col)
            if strict_categories and spec.categories:
                unseen = present & ~text.isin(set(spec.categories))
                if unseen.any():
                    row = int(unseen.to_numpy().nonzero()[0][0])
                    raise SchemaError(
                        f"column {spec.name!r}, row {row}: unseen category {text.iloc[row]!r} "
                        f"(allowed: {', '.join(spec.categories)})"
                    )
            out[spec.name] = text
    return pd.DataFrame(out, index=rows.index)


@dataclass
class TrainedModel:
    """One deployable model: ``pipeline`` maps raw rows to P(positive class)."""

    algo: str
    dataset: str
    version: int
    pipeline: Any  # sklearn Pipeline: fitted preprocessing, then the estimator
    schema: list[ColumnSpec]
    target: str
    classes: tuple[str, str]  # (negative, positive): column order of predict_proba
    params: dict[str, Any]
    snapshot: str
    train_metrics: dict[str, float]
    feature_names: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    # Per-round loss of iterative learners (xgb): {"train": [...], "valid": [...]}.
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"{self.algo}_{self.dataset}_v{self.version}"

    @property
    def positive_class(self) -> str:
        return self.classes[1]

    def predict_proba(self, rows: pd.DataFrame, *, strict_categories: bool = True) -> np.ndarray:
        """Class probabilities, columns ordered as :attr:`classes`."""
        return self.pipeline.predict_proba(
            conform(rows, self.schema, strict_categories=strict_categories)
        )

    def predict(
        self, rows: pd.DataFrame, threshold: float = 0.5, *, strict_categories: bool = True
    ) -> list[str]:
        """Class labels: the positive class where its probability reaches ``threshold``."""
        proba = self.predict_proba(rows, strict_categories=strict_categories)[:, 1]
        return [self.classes[1] if p >= threshold else self.classes[0] for p in proba]


def encode_target(values: pd.Series, positive_class: str) -> pd.Series:
    """1 for the positive class, 0 otherwise; labels compare as text (YAML vs CSV types)."""
    return (as_text(values) == str(positive_class)).astype("int64")


def negative_class(values: pd.Series, positive_class: str) -> str:
    """The other label of a binary target."""
    others = sorted(set(as_text(values).dropna()) - {str(positive_class)})
    if len(others) != 1:
        raise SchemaError(f"expected exactly one class besides {positive_class!r}, found {others}")
    return others[0]
