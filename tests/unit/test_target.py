"""The target (tabml.target) and the decision rule (tabml.metrics.is_positive): labels compare
as text, a probability becomes a label where it reaches the threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabml.errors import SchemaError
from tabml.metrics import is_positive
from tabml.target import encode_target, label_key, label_keys, labels, negative_class


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


# --- numerically equal labels are the same class ----------------------------------------


@pytest.mark.parametrize("positive", ["1.0", "1", "1.00", "1e0"])
def test_float_coded_target_matches_any_spelling_of_the_positive_class(positive):
    values = pd.Series([0.0, 1.0, 1.0, np.nan])

    assert encode_target(values, positive).tolist() == [0, 1, 1, 0]
    assert negative_class(values, positive) == "0"


def test_text_written_floats_match_integer_positive_class():
    values = pd.Series(["0.0", "1.0", "1.0", None], dtype=object)

    assert encode_target(values, "1").tolist() == [0, 1, 1, 0]
    assert negative_class(values, "1") == "0.0"


def test_label_key_equal_numbers_only():
    assert label_key("1.0") == label_key("1") == label_key("01") == label_key("1e0")
    assert label_key("-0.0") == label_key("0")
    assert label_key("1.5") != label_key("1")
    assert label_key("12345678901234567890") != label_key("12345678901234567891")
    assert label_key("yes") == "yes"
    assert label_key(" 1") == " 1"  # text with a space is text, as elsewhere
    assert label_key("nan") == "nan" and label_key("inf") == "inf"


def test_label_keys_of_a_column():
    keys = label_keys(pd.Series([1.0, 0.0, np.nan, 1.0], index=[5, 6, 7, 8]))

    assert keys.index.tolist() == [5, 6, 7, 8]
    assert keys.tolist()[:2] == [label_key("1"), label_key("0")]
    assert pd.isna(keys.iloc[2])


def test_text_labels_still_compare_as_text():
    assert encode_target(pd.Series(["Yes", "yes", "YES"]), "yes").tolist() == [0, 1, 0]


def test_as_in_data_spells_a_label_as_the_data_does():
    from tabml.target import as_in_data

    values = pd.Series([0.0, 1.0, None, 1.0])

    assert as_in_data(values, "1.0") == "1"
    assert as_in_data(values, "0") == "0"
    assert as_in_data(pd.Series(["yes", "no"]), "yes") == "yes"
    assert as_in_data(pd.Series(["yes", "no"]), "maybe") == "maybe"
