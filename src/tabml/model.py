"""A loaded model: the scikit-learn pipeline from the model file plus its card.

Every prediction, in the pipeline and in serving, goes the same way: :func:`tabml.schema.
validate` the raw rows, compute the features, check they are numbers the estimator can use
(:meth:`Model.check_features`), then the estimator's probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabml.errors import SchemaError
from tabml.schema import FLOAT_LIMIT, Batch, ColumnSpec, validate
from tabml.target import labels

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.artifact import ModelCard
    from tabml.csvfile import CsvOptions


def single_threaded(pipeline: Any) -> None:
    """n_jobs=1 on the estimator (and on each fitted model a CalibratedClassifierCV holds):
    same numbers on any thread, and deterministic for forests (with threads, sklearn sums the
    trees in completion order)."""
    estimator = pipeline.steps[-1][1]
    inner = [c.estimator for c in getattr(estimator, "calibrated_classifiers_", ())]
    for each in (estimator, *inner):
        if "n_jobs" in each.get_params(deep=False):
            each.set_params(n_jobs=1)


@dataclass
class Model:
    """One model: ``pipeline`` maps validated raw rows to class probabilities."""

    pipeline: Any  # sklearn Pipeline: ("preprocess", ColumnTransformer), ("model", estimator)
    card: ModelCard
    # feature index -> raw numeric column, for the features that carry a scaled value
    _scaled: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index = {name: i for i, name in enumerate(self.card.feature_names)}
        self._scaled = {
            index[f"num__{c.name}"]: c.name
            for c in self.card.columns
            if c.kind == "numeric" and f"num__{c.name}" in index
        }

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def schema(self) -> list[ColumnSpec]:
        return self.card.columns

    @property
    def classes(self) -> tuple[str, str]:
        return self.card.classes

    @property
    def sep(self) -> str:
        """The CSV separator of the dataset the model was trained on."""
        return str(self.card.params.get("dataset", {}).get("sep", ","))

    @property
    def csv_options(self) -> CsvOptions:
        """How the CSVs of the model's dataset are written (sep, na_values,
        skipinitialspace): uploads are read the same way."""
        from tabml.csvfile import CsvOptions

        return CsvOptions.of(self.card.params.get("dataset", {}))

    @property
    def estimator(self) -> Any:
        return self.pipeline.steps[-1][1]

    def validate(
        self, rows: pd.DataFrame | Sequence[Mapping[str, Any]], *, strict_categories: bool = True
    ) -> Batch:
        return validate(rows, self.schema, strict_categories=strict_categories)

    def check_features(self, features: np.ndarray, batch: Batch) -> None:
        """Refuse rows whose scaled numbers the estimator cannot use (trees compute in
        float32), naming the column and the row, whichever path computed the features."""
        import numpy as np

        sparse = hasattr(features, "tocsr")  # a CSR matrix: its stored values are the test
        values = features.data if sparse else features
        if not self._scaled or np.abs(values).max(initial=0.0) <= FLOAT_LIMIT:
            return  # one reduction: the usual case costs microseconds (NaN fails the test)
        columns = list(self._scaled)
        scaled = features[:, columns]
        bad = ~(np.abs(scaled.toarray() if sparse else scaled) <= FLOAT_LIMIT)
        if not bad.any():
            return
        row = int(bad.any(axis=1).nonzero()[0][0])
        name = self._scaled[columns[int(bad[row].nonzero()[0][0])]]
        raise SchemaError(
            f"{batch.where(name, row)}: {batch.numeric[name][row].item()!r} is out of "
            f"range for this model (its scaled value exceeds {FLOAT_LIMIT:.3g})"
        )

    def features(self, batch: Batch) -> Any:
        """The estimator's input for validated rows (the fitted transformer's output: an
        ndarray, or a CSR matrix when the transformer encodes sparsely)."""
        features = self.pipeline[:-1].transform(batch.frame(self.schema))
        self.check_features(features, batch)
        return features

    def predict_proba(
        self,
        rows: pd.DataFrame | Sequence[Mapping[str, Any]] | Batch,
        *,
        strict_categories: bool = True,
    ) -> np.ndarray:
        """(n_rows, 2) probabilities, columns ordered as :attr:`classes`."""
        batch = (
            rows
            if isinstance(rows, Batch)
            else self.validate(rows, strict_categories=strict_categories)
        )
        return self.estimator.predict_proba(self.features(batch))

    def predict(
        self,
        rows: pd.DataFrame | Sequence[Mapping[str, Any]] | Batch,
        threshold: float = 0.5,
        *,
        strict_categories: bool = True,
    ) -> list[str]:
        """Class labels: the positive class where its probability reaches ``threshold``."""
        proba = self.predict_proba(rows, strict_categories=strict_categories)[:, 1]
        return labels(proba, self.classes, threshold)
