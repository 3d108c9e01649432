"""The target: which label is positive, and how a probability becomes a label.

Labels compare as text (:func:`tabml.schema.text`), and numerically equal labels are the
same class (:func:`label_key`): the label ``1`` in params.yaml, ``1.0`` in a CSV (or
``0.0``/``1.0`` written by a float column) and ``1`` in a JSON request are one class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from tabml.errors import SchemaError
from tabml.metrics import is_positive
from tabml.schema import as_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# A finite decimal number written plainly: no spaces, no inf/nan, no "1_000".
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def label_key(label: str) -> str:
    """What a label is compared by: a number's exact value (``1.0``, ``1``, ``01`` and
    ``1e0`` are one key; ``-0`` is ``0``), any other text as it is."""
    if not _DECIMAL.fullmatch(label):
        return label
    try:
        value = Decimal(label)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        return label
    # normalize() spells each value one way (10 is "1E+1"), itself a number that maps to
    # itself: a text label never collides with a number it does not equal.
    return str(Decimal(0) if value == 0 else value.normalize())


def label_keys(values: pd.Series) -> pd.Series:
    """:func:`label_key` of each value (via :func:`tabml.schema.as_text`); missing stays
    NaN. Computed once per distinct label, not per row."""
    texts = as_text(values)
    keys = {label: label_key(label) for label in texts.dropna().unique().tolist()}
    return texts.map(keys)


def encode_target(values: pd.Series, positive_class: str) -> pd.Series:
    """1 for the positive class, 0 otherwise (missing included)."""
    return (label_keys(values) == label_key(str(positive_class))).astype("int64")


def negative_class(values: pd.Series, positive_class: str) -> str:
    """The other label of a binary target, as the data writes it."""
    positive = label_key(str(positive_class))
    others: dict[str, str] = {}
    for label in sorted(set(as_text(values).dropna())):
        key = label_key(label)
        if key != positive:
            others.setdefault(key, label)
    if len(others) != 1:
        found = sorted(others.values())
        raise SchemaError(f"expected exactly one class besides {positive_class!r}, found {found}")
    return next(iter(others.values()))


def as_in_data(values: pd.Series, label: str) -> str:
    """``label`` spelled as the data writes it (``"1.0"`` in params, ``"1"`` in the data
    gives ``"1"``); ``label`` itself when no value equals it."""
    key = label_key(str(label))
    return next((v for v in sorted(set(as_text(values).dropna())) if label_key(v) == key), label)


def labels(proba: np.ndarray, classes: Sequence[str], threshold: float) -> list[str]:
    """Predicted class names from positive-class probabilities; ``classes`` is (neg, pos)."""
    negative, positive = classes
    return [positive if p else negative for p in is_positive(proba, threshold).tolist()]
