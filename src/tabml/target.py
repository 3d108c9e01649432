"""The target: which label is positive, and how a probability becomes a label.

Labels compare as text (:func:`tabml.schema.text`): the label ``1`` in params.yaml, in a
CSV and in a JSON request are the same class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabml.errors import SchemaError
from tabml.metrics import is_positive
from tabml.schema import as_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def encode_target(values: pd.Series, positive_class: str) -> pd.Series:
    """1 for the positive class, 0 otherwise (missing included)."""
    return (as_text(values) == str(positive_class)).astype("int64")


def negative_class(values: pd.Series, positive_class: str) -> str:
    """The other label of a binary target."""
    others = sorted(set(as_text(values).dropna()) - {str(positive_class)})
    if len(others) != 1:
        raise SchemaError(f"expected exactly one class besides {positive_class!r}, found {others}")
    return others[0]


def labels(proba: np.ndarray, classes: Sequence[str], threshold: float) -> list[str]:
    """Predicted class names from positive-class probabilities; ``classes`` is (neg, pos)."""
    negative, positive = classes
    return [positive if p else negative for p in is_positive(proba, threshold).tolist()]
