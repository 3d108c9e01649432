"""Core of serving, without a web framework: parse uploads, predict, shape and score results.

Rows from JSON (``/predict``) and from a CSV (``/validate``, the batch CLI) go through the
one validation path of the pipeline, :func:`tabml.schema.validate`; predictions come from the
numpy fast path when it was verified at load, otherwise from the sklearn pipeline, with the
same feature check on both (:meth:`tabml.model.Model.check_features`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError, SchemaError
from tabml.model import Model, single_threaded
from tabml.schema import validate
from tabml.serving.errors import InputError
from tabml.serving.fastpath import CompiledModel, try_compile
from tabml.target import labels

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.csvfile import CsvOptions
    from tabml.schema import Batch

log = logging.getLogger("tabml.serving.scoring")
CSV_FIRST_LINE = 2  # row 0 of an uploaded CSV is line 2: line 1 is the header


def read_csv_bytes(
    data: bytes,
    sep: str = ",",
    what: str = "the uploaded file",
    *,
    options: CsvOptions | None = None,
) -> pd.DataFrame:
    """Parse a CSV (never anything else: no pickle) by the rules of :mod:`tabml.csvfile`,
    refusing what is not one; ``options`` (else ``sep`` alone) say how it is written."""
    from tabml.csvfile import CsvOptions, load_csv

    empty = f"{what} is empty: send a CSV with a header row and at least one row"
    if not data.strip():
        raise InputError(empty)
    if b"\x00" in data:
        raise InputError(f"{what} is not a CSV (it holds binary data)")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not a CSV (it is not UTF-8 text)") from None
    try:
        frame = load_csv(data, options or CsvOptions(sep=sep), what)
    except DataError as exc:
        raise InputError(str(exc)) from None
    if len(frame) == 0:
        raise InputError(f"{what} has a header but no rows")
    return frame


def read_model_csv(data: bytes, model: Model, what: str = "the uploaded file") -> pd.DataFrame:
    """An uploaded CSV read as the model's dataset was (its sep, na_values and
    skipinitialspace); a column the model needs that only appears with a leading space
    (a file written with ", ") is named, rather than reported missing."""
    frame = read_csv_bytes(data, what=what, options=model.csv_options)
    columns = [str(c) for c in frame.columns]
    spaced = {c.lstrip(" "): c for c in columns if c.startswith(" ")}
    for spec in model.schema:
        if spec.name not in columns and spec.name in spaced:
            raise InputError(
                f"{what}: column {spaced[spec.name]!r} starts with a space, the model expects "
                f"{spec.name!r}: write the file without spaces after its separators"
            )
    return frame


def csv_batch(frame: pd.DataFrame, model: Model) -> Batch:
    """The rows of a parsed CSV, validated; errors name the CSV line too."""
    return validate(frame, model.schema, first_line=CSV_FIRST_LINE)


class Predictor:
    """Probabilities for validated batches of one model: numpy fast path or sklearn pipeline."""

    def __init__(self, model: Model, *, fast_path: bool = True) -> None:
        # A thread pool costs far more than it saves on small batches, and single-threaded
        # forests sum their trees in a fixed order: the same bits on every call.
        single_threaded(model.pipeline)
        self.model = model
        self.compiled: CompiledModel | None = try_compile(model) if fast_path else None

    def predict_proba(self, batch: Batch) -> np.ndarray:
        """(n_rows, 2) probabilities, columns ordered as ``model.classes``."""
        if self.compiled is None:
            return self.model.predict_proba(batch)
        features = self.compiled.features(batch)
        self.model.check_features(features, batch)
        return self.compiled.proba(features)


def predictions(
    proba: np.ndarray, classes: Sequence[str], threshold: float
) -> list[dict[str, Any]]:
    """One record per row: the predicted class and the probability of each class."""
    negative, positive = classes
    return [
        {"prediction": label, "probabilities": {negative: p0, positive: p1}}
        for label, p0, p1 in zip(
            labels(proba[:, 1], classes, threshold),
            proba[:, 0].tolist(),
            proba[:, 1].tolist(),
            strict=True,
        )
    ]


def target_metrics(
    frame: pd.DataFrame, model: Model, proba: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Test metrics (as the evaluate stage computes them) on the rows whose target is known."""
    from tabml.metrics import score
    from tabml.schema import as_text
    from tabml.target import encode_target, label_key, label_keys

    card = model.card
    keys = label_keys(frame[card.target])  # "1.0" in the file is the class "1" (and back)
    labelled = keys.notna().to_numpy()
    unknown = labelled & ~keys.isin([label_key(c) for c in card.classes]).to_numpy()
    if unknown.any():
        row = int(unknown.nonzero()[0][0])
        raise SchemaError(
            f"column {card.target!r}, row {row} (CSV line {row + CSV_FIRST_LINE}): unknown class "
            f"{as_text(frame[card.target]).iloc[row]!r} (classes: {', '.join(card.classes)})"
        )
    y = encode_target(frame[card.target][labelled], card.positive_class).to_numpy()
    result: dict[str, Any] = {"target": card.target, "n_labelled": int(labelled.sum())}
    if len(set(y.tolist())) < 2:
        result["metrics"] = None
        result["note"] = "metrics need both classes among the labelled rows"
        return result
    result["metrics"] = score(y, proba[labelled, 1], threshold)
    return result
