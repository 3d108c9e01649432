"""What featurize hands to train: the fitted transformer and a typed description of it.

``data/processed/<dataset>/`` holds, besides the processed train and test data:

- ``<dataset>-transformer_processed_<date>.pkl``: the fitted scikit-learn ColumnTransformer,
  nothing else (library objects only);
- ``<dataset>-features_processed_<date>.json``: :class:`FeatureSpec`, the raw input schema,
  the feature names, the target and its classes, where the rows came from, and a few check
  rows every model of the dataset is scored on when it is saved and again when it is loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tabml.errors import DataError
from tabml.files import json_text, read_json, read_pickle, write_pickle, write_text
from tabml.layout import Layout
from tabml.schema import ColumnSpec, first_few

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    from tabml.params import DatasetParams, FeaturizeParams

log = logging.getLogger("tabml.features")

CHECK_ROWS = 8
# A text column needs this many present train values before it can be called a row id: on a
# handful of rows every text column has as many distinct values as values.
MIN_ID_VALUES = 20


class DataInfo(BaseModel):
    """The rows a transformer (and every model after it) was fitted on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    snapshot: str
    train_file: str  # relative to the repository root
    train_md5: str
    train_rows: int


class FeatureSpec(BaseModel):
    """The typed featurize -> train hand-off (the fitted transformer travels beside it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    columns: list[ColumnSpec]  # the raw input schema
    feature_names: list[str]
    target: str
    classes: tuple[str, str]  # (negative, positive): column order of predict_proba
    data: DataInfo
    check_rows: list[dict[str, Any]]


# The transformer's output is a sparse matrix when fewer than this share of its values are
# non-zero (scikit-learn's own rule, decided once at fit): a 50,000-level column then costs
# megabytes, not gigabytes, and every estimator here accepts CSR input.
SPARSE_THRESHOLD = 0.3


def build_transformer(
    schema: list[ColumnSpec], params: FeaturizeParams, *, dense: bool = False
) -> ColumnTransformer:
    """Imputation and scaling for numbers, imputation and one-hot encoding for categories.

    Categories rarer than ``min_category_frequency`` rows, and beyond the
    ``max_categories`` most frequent of a column, share one "infrequent" column. ``dense``
    forces a dense output (an engine that stores features densely must train on what the
    served pipeline computes: XGBoost reads an absent sparse entry as missing, not zero).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c.name for c in schema if c.kind == "numeric"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy=params.numeric_imputer, add_indicator=True))
        ]
        if params.scale_numeric:
            steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(steps), numeric))
    # Grouping counts every value in Python (scikit-learn's object-dtype path): only the
    # columns that can have infrequent levels pay for it. The others encode identically.
    rare = params.min_category_frequency > 1
    limit = params.max_categories
    many = [
        c.name
        for c in schema
        if c.kind == "categorical" and (rare or (limit is not None and len(c.categories) >= limit))
    ]
    few = [c.name for c in schema if c.kind == "categorical" and c.name not in many]
    for name, columns, grouped in (("cat", few, False), ("many", many, True)):
        if not columns:
            continue
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist" if grouped else "ignore",
            min_frequency=params.min_category_frequency if grouped and rare else None,
            max_categories=limit if grouped else None,
            sparse_output=not dense,
        )
        impute = (
            SimpleImputer(strategy="constant", fill_value="missing")
            if params.categorical_imputer == "constant"
            else SimpleImputer(strategy="most_frequent")
        )
        parts.append((name, Pipeline([("impute", impute), ("onehot", encoder)]), columns))
    return ColumnTransformer(
        parts, remainder="drop", sparse_threshold=0.0 if dense else SPARSE_THRESHOLD
    )


def save_matrix(path: Path, X: Any, y: Any) -> None:
    """Processed features and 0/1 labels in one uncompressed ``.npz`` (numpy arrays only,
    read back without pickle): a CSR matrix as its three arrays, a dense one as is. Why not
    CSV: at 1M rows, text formatting of full-precision floats was half of featurize."""
    import numpy as np
    import scipy.sparse as sp

    from tabml.files import atomic_path

    arrays: dict[str, Any] = {"y": np.asarray(y, dtype=np.int8)}
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        arrays |= {
            "data": X.data,
            "indices": X.indices,
            "indptr": X.indptr,
            "shape": np.asarray(X.shape, dtype=np.int64),
        }
    else:
        arrays["X"] = np.ascontiguousarray(X)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        np.savez(out, **arrays)


def load_matrix(path: Path) -> tuple[Any, Any]:
    """(features, labels) written by :func:`save_matrix`: a CSR matrix or a dense array."""
    import zipfile

    import numpy as np
    import scipy.sparse as sp

    from tabml.cli import one_line

    if not path.is_file():
        raise DataError(f"{path} does not exist: run featurize first (dvc repro)")
    # Anything but a zip archive would send np.load to a bare .npy or to pickle's path.
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not processed data (not an .npz archive): rerun featurize")
    try:
        with np.load(path, allow_pickle=False) as stored:
            y = stored["y"].astype(np.int64)
            if "X" in stored:
                return stored["X"], y
            shape = tuple(int(n) for n in stored["shape"])
            X = sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=shape)
            return X, y
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not processed data ({one_line(exc)}): rerun featurize"
        ) from None


def check_input_columns(columns: Sequence[str], name: str, spec: DatasetParams) -> None:
    """Refuse a train split with no input column, and ``keep_columns`` naming the target or
    a column the split does not have (``columns``: its inputs, target and drops removed)."""
    if not columns:
        raise DataError(f"no input columns left besides the target {spec.target!r}")
    for column in spec.keep_columns:
        if column == spec.target:
            raise DataError(
                f"datasets.{name}.keep_columns lists the target column {column!r}: remove it "
                "(the target is never an input)"
            )
        if column not in columns:
            raise DataError(
                f"datasets.{name}.keep_columns: {column!r} is not a column of the train split "
                f"(columns: {first_few(map(repr, columns))}): fix the name or remove it"
            )


def row_id_columns(
    schema: list[ColumnSpec],
    present: Mapping[str, int],
    max_unique_fraction: float,
    keep: Sequence[str] = (),
) -> list[tuple[str, int, int]]:
    """The text columns that look like row ids, as (name, distinct values, present values).

    Why: one-hot encoding an id learns one feature per train row, and the served model then
    refuses every new row, whose id it never saw (a 422 listing every id). The rules:

    - only categorical (text) columns: a numeric id (1, 2, 3...) is scaled like any number and
      never refuses a row (list it in ``drop_columns`` if it means nothing);
    - an id has more than ``max_unique_fraction`` x n distinct values among its n present
      (non-missing, non-blank) train values, so sparse free text counts too; ``1.0`` turns
      the check off;
    - n must be at least :data:`MIN_ID_VALUES`: a tiny train split proves nothing;
    - a column ``keep`` lists (``keep_columns``) is never one.

    ``present``: each categorical column's count of present values in the whole train split
    (counts, so that each engine computes them its own way).
    """
    found = []
    for spec in schema:
        if spec.kind != "categorical" or spec.name in keep:
            continue
        n, distinct = present.get(spec.name, 0), len(spec.categories)
        if n >= MIN_ID_VALUES and distinct > max_unique_fraction * n:
            found.append((spec.name, distinct, n))
    return found


def without_row_ids(
    schema: list[ColumnSpec], found: list[tuple[str, int, int]], name: str
) -> list[ColumnSpec]:
    """The schema without the ``found`` row-id columns (:func:`row_id_columns`), each
    dropped with one warning line; refused when no input column would be left. Served rows
    may still carry them: extra columns pass."""
    dropped = [c[0] for c in found]
    if dropped and len(dropped) == len(schema):
        raise DataError(
            f"every input column of dataset {name!r} looks like a row id "
            f"({first_few(map(repr, dropped))}): list the ones to keep in "
            f"datasets.{name}.keep_columns"
        )
    for column, distinct, n in found:
        log.warning(
            "column %r looks like a row id (%d distinct values in %d train rows): dropped from "
            "the features; list it in datasets.%s.keep_columns to keep it, or in "
            "datasets.%s.drop_columns to drop it without this warning",
            column,
            distinct,
            n,
            name,
            name,
        )
    return [c for c in schema if c.name not in dropped]


def check_rows(inputs: pd.DataFrame, schema: list[ColumnSpec], n: int = CHECK_ROWS) -> list[dict]:
    """Deterministic rows spanning the train split: per numeric column ``n - 1`` quantiles
    from minimum to maximum, categories in turn, and a missing value, rotated so that each
    row mixes them. Summaries, not rows of the data.

    ``inputs``: the validated train rows (:func:`tabml.schema.conform`), numbers as floats.
    """
    import numpy as np

    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for j, spec in enumerate(schema):
        if spec.kind == "numeric":
            present = inputs[spec.name].dropna().to_numpy(dtype="float64")
            pool = np.quantile(present, np.linspace(0, 1, n - 1), method="lower").tolist()
        else:
            pool = list(spec.categories)
        for i in range(n):
            slot = (i + j) % n  # the last slot is the column's one missing value
            rows[i][spec.name] = None if slot == n - 1 else pool[slot % len(pool)]
    return rows


def save_features(layout: Layout, root: Path, spec: FeatureSpec, transformer: Any) -> None:
    """Write the pair into ``root`` (featurize builds its output directory there)."""
    date = spec.data.snapshot
    write_pickle(
        root / layout.processed(spec.dataset, "transformer", date, "pkl").name, transformer
    )
    text = json_text(spec.model_dump(mode="json"))
    write_text(root / layout.processed(spec.dataset, "features", date, "json").name, text)


def first_error(exc: ValidationError) -> str:
    """pydantic's first complaint about a file, on one line: where, and what."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def load_features(layout: Layout, dataset: str, date: str) -> tuple[FeatureSpec, Any]:
    """The pair featurize wrote for ``dataset``: (spec, fitted transformer)."""
    path = layout.processed(dataset, "features", date, "json")
    if not path.exists():
        read_json(path)  # raises the usual "does not exist: run the stage that writes it"
    try:
        spec = FeatureSpec.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise DataError(
            f"{path} is not a feature spec ({first_error(exc)}): rerun featurize"
        ) from None
    transformer = read_pickle(layout.processed(dataset, "transformer", date, "pkl"))
    return spec, transformer
