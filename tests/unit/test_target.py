"""The target (tabml.target) and the decision rule (tabml.metrics.is_positive): labels compare
as text, a probability becomes a label where it reaches the threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabml.errors import SchemaError
from tabml.metrics import is_positive
from tabml.target import encode_target, labels, negative_class


def test_encode_target_string_labels():
    values = pd.Series(["bad", "good", "bad", None])

    assert encode_target(values, "bad").tolist() == [1, 0, 1, 0]


def test_encode_target_int_labels_against_string_positive_class():
    values = pd.Series([0, 1, 1, 0])

    encoded = encode_target(values, "1")

    assert encoded.tolist() == [0, 1, 1, 0]
    assert encoded.dtype == "int64"


def test_encode_target_float_read_int_labels():
    assert encode_target(pd.Series([1.0, 0.0, 1.0]), "1").tolist() == [1, 0, 1]


def test_encode_target_bool_labels_compare_as_text():
    assert encode_target(pd.Series([True, False, True]), "True").tolist() == [1, 0, 1]


def test_encode_target_keeps_the_index():
    encoded = encode_target(pd.Series(["yes", "no"], index=[4, 9]), "yes")

    assert encoded.index.tolist() == [4, 9]


def test_negative_class():
    assert negative_class(pd.Series(["yes", "no", None, "yes"]), "yes") == "no"
    assert negative_class(pd.Series([0, 1, 1]), "1") == "0"
    assert negative_class(pd.Series([1.0, 0.0, np.nan]), "1") == "0"
    assert negative_class(pd.Series([True, False]), "True") == "False"


@pytest.mark.parametrize("values", [["yes", "yes"], ["yes", "no", "maybe"]])
def test_negative_class_requires_exactly_one_other_label(values):
    with pytest.raises(SchemaError, match="exactly one class besides 'yes'"):
        negative_class(pd.Series(values), "yes")


def test_negative_class_ignores_blank_labels():
    assert negative_class(pd.Series(["yes", "no", " ", ""]), "yes") == "no"


def test_is_positive_where_the_probability_reaches_the_threshold():
    proba = np.array([0.0, 0.49, 0.5, 0.51, 1.0])

    assert is_positive(proba, 0.5).tolist() == [False, False, True, True, True]
    assert is_positive(proba, 1.0).tolist() == [False, False, False, False, True]


def test_labels_are_class_names_from_probabilities():
    proba = np.array([0.1, 0.5, 0.9])

    assert labels(proba, ("no", "yes"), 0.5) == ["no", "yes", "yes"]
    assert labels(proba, ("good", "bad"), 0.95) == ["good", "good", "good"]
    assert labels(np.array([]), ("no", "yes"), 0.5) == []
