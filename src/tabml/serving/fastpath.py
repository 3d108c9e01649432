"""An exact numpy replica of the fitted pipeline, for low-latency predictions.

Why: on one row, the sklearn path costs about 9 ms in pandas and ColumnTransformer overhead
(``conform`` plus ``transform``), and a random forest's ``predict_proba`` about 13 ms more of
joblib dispatch per call even with ``n_jobs=1`` (300 trees); the arithmetic itself takes
microseconds. So we read the fitted parameters of the pipeline that
``tabml.features.build_transformer`` builds (imputer statistics, missing-indicator columns,
scaler moments, one-hot categories, the trees) and apply the very same operations with numpy.

Safety: :func:`compile_model` only accepts the exact pipeline shape featurize builds, and the
result is used only after :func:`verify` found it reproduces ``pipeline.predict_proba`` bit for
bit on probe rows; anything else (another shape, another sklearn version that computes
differently) falls back to the sklearn pipeline, which is always correct, only slower: a
WARNING in the log and ``fast_path: false`` in ``GET /models`` say so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.schema import Batch

if TYPE_CHECKING:
    import numpy as np

    from tabml.model import Model
    from tabml.schema import ColumnSpec

log = logging.getLogger("tabml.serving.fastpath")

UNSEEN_PROBE = "\x00unseen"  # a category no model has seen: all zeros, or "infrequent"


@dataclass(frozen=True)
class NumericBlock:
    """SimpleImputer (optionally with missing indicators), then optionally StandardScaler."""

    columns: tuple[str, ...]
    fill: np.ndarray  # imputer statistics, one per column
    indicator: np.ndarray  # indices of columns that get a missing-indicator feature
    mean: np.ndarray | None
    scale: np.ndarray | None

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``values``: (n, len(columns)) float64 with NaN for missing."""
        import numpy as np

        missing = np.isnan(values)
        out = np.where(missing, self.fill, values)
        if len(self.indicator):
            out = np.hstack((out, missing[:, self.indicator].astype(np.float64)))
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out


@dataclass(frozen=True)
class CategoricalBlock:
    """SimpleImputer (constant or most frequent), then OneHotEncoder (unknown categories
    ignored, or sent to the column's "infrequent" column when it has one)."""

    columns: tuple[str, ...]
    fill: tuple[str, ...]  # imputer statistics: what a missing value becomes
    index: tuple[dict[str, int], ...]  # category -> output column, per input column
    unknown: tuple[int | None, ...]  # output column of an unseen category, per input column
    width: int

    def positions(self, values: Sequence[Sequence[Any]], n_rows: int) -> np.ndarray:
        """(n_rows, columns) output column of each value, -1 for none (an ignored unseen
        category). ``values``: one sequence per column; anything but a string is missing."""
        import numpy as np

        out = np.full((n_rows, len(self.columns)), -1, dtype=np.int64)
        for j, (fill, index, other, column) in enumerate(
            zip(self.fill, self.index, self.unknown, values, strict=True)
        ):
            for row, value in enumerate(column):
                pos = index.get(value if isinstance(value, str) else fill, other)
                if pos is not None:
                    out[row, j] = pos
        return out

    def apply(self, values: Sequence[Sequence[Any]], n_rows: int) -> np.ndarray:
        import numpy as np

        positions = self.positions(values, n_rows)
        out = np.zeros((n_rows, self.width), dtype=np.float64)
        rows, _ = np.nonzero(positions >= 0)
        out[rows, positions[positions >= 0]] = 1.0
        return out

    def apply_sparse(self, values: Sequence[Sequence[Any]], n_rows: int) -> Any:
        """:meth:`apply` as a CSR matrix, without the dense one: with tens of thousands of
        levels a batch's dense one-hot matrix is gigabytes."""
        import numpy as np
        import scipy.sparse as sp

        positions = self.positions(values, n_rows)
        present = positions >= 0
        indptr = np.concatenate(([0], np.cumsum(present.sum(axis=1))))
        # Row by row, input columns in order: their output ranges are in the same order.
        indices = positions[present]
        data = np.ones(len(indices), dtype=np.float64)
        return sp.csr_matrix((data, indices, indptr), shape=(n_rows, self.width))


@dataclass(frozen=True)
class CompiledModel:
    """Features and probabilities of a model's pipeline without pandas."""

    blocks: tuple[NumericBlock | CategoricalBlock, ...]
    n_features: int
    proba: Callable[[Any], np.ndarray]
    sparse: bool = False  # the transformer outputs CSR: so must the replica

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return tuple(c for b in self.blocks if isinstance(b, NumericBlock) for c in b.columns)

    def features(self, batch: Batch) -> Any:
        """The fitted transformer's output for validated rows: an ndarray, or a CSR matrix
        when the transformer's output is sparse (built sparse, as scikit-learn stacks it: a
        zero is an absent entry, which XGBoost reads as missing)."""
        import numpy as np

        numeric, categorical, n_rows = batch.numeric, batch.categorical, batch.n_rows
        parts = []
        for block in self.blocks:
            if isinstance(block, NumericBlock):
                matrix = np.empty((n_rows, len(block.columns)), dtype=np.float64)
                for j, name in enumerate(block.columns):
                    matrix[:, j] = numeric[name]
                out = block.apply(matrix)
            else:
                values = [categorical[c] for c in block.columns]
                apply = block.apply_sparse if self.sparse else block.apply
                out = apply(values, n_rows)
            parts.append(out)
        if not self.sparse:
            return np.hstack(parts) if len(parts) > 1 else parts[0]
        import scipy.sparse as sp

        return sp.hstack([sp.csr_matrix(part) for part in parts], format="csr")

    def predict_proba(self, batch: Batch) -> np.ndarray:
        return self.proba(self.features(batch))


class _Unsupported(Exception):
    """The pipeline is not the shape this module replicates: use sklearn."""


def _compile_numeric(pipeline: Any, columns: list[str]) -> NumericBlock:
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in pipeline.steps]
    if not steps or type(steps[0]) is not SimpleImputer or len(steps) > 2:
        raise _Unsupported("numeric steps are not SimpleImputer [+ StandardScaler]")
    imputer = steps[0]
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    missing_values = imputer.missing_values
    if not (isinstance(missing_values, float) and math.isnan(missing_values)):
        raise _Unsupported("numeric imputer does not impute NaN")
    if np.isnan(fill).any() or len(fill) != len(columns):
        raise _Unsupported("numeric imputer drops an all-missing column")
    indicator = np.zeros(0, dtype=np.intp)
    if imputer.add_indicator:
        if imputer.indicator_.features != "missing-only":
            raise _Unsupported("missing indicator is not missing-only")
        indicator = np.asarray(imputer.indicator_.features_, dtype=np.intp)
    mean = scale = None
    if len(steps) == 2:
        scaler = steps[1]
        if type(scaler) is not StandardScaler:
            raise _Unsupported("second numeric step is not StandardScaler")
        mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else None
        scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else None
    return NumericBlock(tuple(columns), fill, indicator, mean, scale)


def _compile_categorical(pipeline: Any, columns: list[str]) -> CategoricalBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    steps = [step for _, step in pipeline.steps]
    if (
        len(steps) != 2
        or type(steps[0]) is not SimpleImputer
        or type(steps[1]) is not OneHotEncoder
    ):
        raise _Unsupported("categorical steps are not SimpleImputer + OneHotEncoder")
    imputer, encoder = steps
    missing_values = imputer.missing_values
    if imputer.add_indicator or not (
        isinstance(missing_values, float) and math.isnan(missing_values)
    ):
        raise _Unsupported("categorical imputer is not a plain NaN imputer")
    fill = tuple(imputer.statistics_)
    if len(fill) != len(columns) or not all(isinstance(f, str) for f in fill):
        raise _Unsupported("categorical imputer statistics are not strings")
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist") or (
        encoder.drop_idx_ is not None
    ):
        raise _Unsupported("one-hot encoder drops a column or errors on unknown categories")
    try:
        rare_per_column = list(encoder.infrequent_categories_)
    except AttributeError:  # no grouping configured
        rare_per_column = [None] * len(encoder.categories_)
    index, unknown, offset = [], [], 0
    for categories, rare in zip(encoder.categories_, rare_per_column, strict=True):
        if not all(isinstance(c, str) for c in categories):
            raise _Unsupported("one-hot categories are not strings")
        grouped = set() if rare is None else set(rare)
        frequent = [c for c in categories if c not in grouped]
        positions = {c: offset + i for i, c in enumerate(frequent)}
        offset += len(frequent)
        other = None
        if grouped:  # scikit-learn puts the infrequent column after the frequent ones
            other = offset
            positions |= dict.fromkeys(grouped, other)
            offset += 1
        index.append(positions)
        unknown.append(other if encoder.handle_unknown == "infrequent_if_exist" else None)
    return CategoricalBlock(tuple(columns), fill, tuple(index), tuple(unknown), offset)


def _forest_proba(forest: Any) -> Callable[[np.ndarray], np.ndarray]:
    """RandomForestClassifier.predict_proba without joblib: same trees, same summation order."""
    import numpy as np

    trees = [(est.tree_, est.n_classes_) for est in forest.estimators_]
    n_classes, n_trees = int(forest.n_classes_), len(trees)

    def proba(features: Any) -> np.ndarray:
        if hasattr(features, "tocsr"):  # the trees read CSR as scikit-learn's check makes it
            import scipy.sparse as sp

            X = sp.csr_matrix(features, dtype=np.float32)
        else:
            X = np.ascontiguousarray(features, dtype=np.float32)  # what sklearn's check does
        out = np.zeros((X.shape[0], n_classes), dtype=np.float64)
        for tree, k in trees:
            out += tree.predict(X)[:, :k]
        out /= n_trees
        return out

    return proba


def _estimator_proba(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.ensemble import RandomForestClassifier

    if type(estimator) is RandomForestClassifier and estimator.n_outputs_ == 1:
        return _forest_proba(estimator)
    return estimator.predict_proba  # xgb, lr: already microseconds on a numpy array


def compile_model(model: Model) -> CompiledModel:
    """The numpy replica of ``model.pipeline``; raises ``_Unsupported`` for other shapes."""
    from sklearn.compose import ColumnTransformer

    steps = model.pipeline.steps
    if len(steps) != 2 or type(steps[0][1]) is not ColumnTransformer:
        raise _Unsupported("pipeline is not ColumnTransformer + estimator")
    transformer, estimator = steps[0][1], steps[1][1]
    if transformer.transformer_weights is not None:
        raise _Unsupported("column transformer is weighted")
    kinds = {c.name: c.kind for c in model.schema}
    blocks: list[NumericBlock | CategoricalBlock] = []
    for name, fitted, columns in transformer.transformers_:
        if fitted == "drop" or len(columns) == 0:
            continue
        columns = list(columns)
        if any(c not in kinds for c in columns):
            raise _Unsupported(f"transformer {name!r} reads columns outside the schema")
        if all(kinds[c] == "numeric" for c in columns):
            blocks.append(_compile_numeric(fitted, columns))
        elif all(kinds[c] == "categorical" for c in columns):
            blocks.append(_compile_categorical(fitted, columns))
        else:
            raise _Unsupported(f"transformer {name!r} mixes column kinds")
    if not blocks:
        raise _Unsupported("no transformer blocks")
    n_features = sum(
        len(b.columns) + len(b.indicator) if isinstance(b, NumericBlock) else b.width
        for b in blocks
    )
    if n_features != len(model.card.feature_names):
        raise _Unsupported("feature count differs from the model's feature names")
    sparse = bool(transformer.sparse_output_)
    return CompiledModel(tuple(blocks), n_features, _estimator_proba(estimator), sparse)


def probe_batch(
    schema: list[ColumnSpec], model: CompiledModel | None = None, n_rows: int = 64, seed: int = 0
) -> Batch:
    """Deterministic rows that exercise every category, missing values and spread numbers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centre = {}
    if model is not None:
        for block in model.blocks:
            if isinstance(block, NumericBlock):
                spread = block.scale[: len(block.columns)] if block.scale is not None else None
                for j, name in enumerate(block.columns):
                    base = float(block.fill[j])
                    width = float(spread[j]) if spread is not None else max(1.0, abs(base))
                    centre[name] = (base, width)
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, list[Any]] = {}
    for spec in schema:
        if spec.kind == "numeric":
            base, width = centre.get(spec.name, (0.0, 1.0))
            values = np.round(base + width * rng.normal(0.0, 1.5, n_rows), 3)
            values[rng.random(n_rows) < 0.15] = np.nan
            numeric[spec.name] = values
        else:
            pool: list[Any] = [*spec.categories, None, UNSEEN_PROBE]
            if len(pool) > n_rows:  # a wide column: missing and unseen, and levels spread
                step = len(spec.categories) / (n_rows - 2)
                levels = [spec.categories[int(i * step)] for i in range(n_rows - 2)]
                pool = [*levels, None, UNSEEN_PROBE]
            values_list = [pool[i % len(pool)] for i in range(n_rows)]
            rng.shuffle(values_list)
            categorical[spec.name] = values_list
    return Batch(n_rows, numeric, categorical)


def verify(model: Model, compiled: CompiledModel) -> bool:
    """True if ``compiled`` gives exactly the probabilities of ``model.pipeline`` on probes.

    Each batch size is compared with the pipeline on the same rows: a matrix product of one
    row may round differently from the same row inside a larger product (BLAS kernels).
    """
    import numpy as np

    probes = probe_batch(model.schema, compiled)
    for rows in (slice(None), slice(0, 1)):  # one row takes other code paths in some libraries
        batch = Batch(
            len(range(probes.n_rows)[rows]),
            {k: v[rows] for k, v in probes.numeric.items()},
            {k: v[rows] for k, v in probes.categorical.items()},
        )
        expected = model.pipeline.predict_proba(batch.frame(model.schema))
        got = compiled.predict_proba(batch)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            return False
    return True


def try_compile(model: Model) -> CompiledModel | None:
    """The verified fast path for ``model``, or None when the sklearn pipeline must serve
    (a WARNING says why: single-row latency is then several times higher)."""
    try:
        compiled = compile_model(model)
    except _Unsupported as exc:
        log.warning(
            "%s: no fast path (%s); serving it through the sklearn pipeline", model.model_id, exc
        )
        return None
    if not verify(model, compiled):
        log.warning(
            "%s: fast path differs from the sklearn pipeline on probe rows; serving it through "
            "the sklearn pipeline",
            model.model_id,
        )
        return None
    return compiled
