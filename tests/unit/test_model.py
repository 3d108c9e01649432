"""The model file's contract: schema inference, conforming raw rows, target encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.errors import DataError, SchemaError
from stages.model import ColumnSpec, conform, encode_target, infer_schema, negative_class


@pytest.fixture
def schema() -> list[ColumnSpec]:
    return infer_schema(
        pd.DataFrame(
            {
                "income": [10.5, 20.0, np.nan, 40.0],
                "age": [30, 40, 50, 60],
                "color": ["red", "blue", None, "red"],
            }
        )
    )


# --- infer_schema -----------------------------------------------------------------------


def test_infer_schema_kinds_dtypes_and_categories(schema):
    by_name = {c.name: c for c in schema}

    assert [c.name for c in schema] == ["income", "age", "color"]
    assert by_name["income"] == ColumnSpec("income", "numeric", "float64")
    assert by_name["age"] == ColumnSpec("age", "numeric", "int64")
    assert by_name["color"].kind == "categorical"
    assert by_name["color"].categories == ("blue", "red")  # sorted, NaN left out


def test_infer_schema_bools_and_mixed_objects_are_categorical():
    frame = pd.DataFrame({"flag": [True, False, True], "code": ["1", 2, "x"]})

    by_name = {c.name: c for c in infer_schema(frame)}

    assert by_name["flag"].kind == "categorical"
    assert by_name["flag"].categories == ("False", "True")
    assert by_name["code"].categories == ("1", "2", "x")


# --- conform ----------------------------------------------------------------------------


def test_conform_drops_extra_columns_and_orders_as_schema(schema):
    rows = pd.DataFrame(
        {"extra": [1, 2], "color": ["red", "blue"], "age": [1, 2], "income": [1.0, 2.0]}
    )

    out = conform(rows, schema)

    assert out.columns.tolist() == ["income", "age", "color"]
    assert out["age"].dtype == "float64"
    assert out["color"].tolist() == ["red", "blue"]


def test_conform_missing_column_named(schema):
    rows = pd.DataFrame({"income": [1.0], "color": ["red"]})

    with pytest.raises(SchemaError) as info:
        conform(rows, schema)

    assert "missing column 'age'" in str(info.value)
    assert isinstance(info.value, DataError)  # the CLI reports it as a user error


def test_conform_non_numeric_value_names_column_and_row(schema):
    rows = pd.DataFrame({"income": ["1.5", "2", "lots"], "age": [1, 2, 3], "color": "red"})

    with pytest.raises(SchemaError) as info:
        conform(rows, schema)

    assert str(info.value) == "column 'income', row 2: 'lots' is not a number"


@pytest.mark.parametrize("value", [float("inf"), "-inf", "Infinity"])
def test_conform_rejects_infinite_numbers_naming_column_and_row(schema, value):
    rows = pd.DataFrame({"income": [1.0, value], "age": [1, 2], "color": "red"})

    with pytest.raises(SchemaError) as info:
        conform(rows, schema)

    assert str(info.value).startswith("column 'income', row 1: ")
    assert str(info.value).endswith("is not a finite number")


def test_conform_parses_numeric_text_and_keeps_blanks_missing(schema):
    rows = pd.DataFrame({"income": ["1.5", "", None], "age": [1, 2, 3], "color": "red"})

    out = conform(rows, schema)

    assert out["income"].iloc[0] == 1.5
    assert out["income"].iloc[1:].isna().all()


def test_conform_unseen_category_strict_raises_with_row(schema):
    rows = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": ["red", "purple"]})

    with pytest.raises(SchemaError) as info:
        conform(rows, schema)

    message = str(info.value)
    assert "column 'color', row 1: unseen category 'purple'" in message
    assert "blue, red" in message


def test_conform_unseen_category_accepted_when_not_strict(schema):
    rows = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": ["red", "purple"]})

    out = conform(rows, schema, strict_categories=False)

    assert out["color"].tolist() == ["red", "purple"]


def test_conform_keeps_missing_as_nan(schema):
    rows = pd.DataFrame({"income": [np.nan, 3.0], "age": [1, None], "color": [None, "blue"]})

    out = conform(rows, schema)

    assert np.isnan(out["income"].iloc[0])
    assert np.isnan(out["age"].iloc[1])
    assert pd.isna(out["color"].iloc[0])
    assert out["color"].iloc[1] == "blue"


def test_conform_compares_categories_as_text():
    schema = infer_schema(pd.DataFrame({"grade": ["1", "2", "A"]}))

    out = conform(pd.DataFrame({"grade": [1, 2]}), schema)  # ints, as read_csv parses them

    assert out["grade"].tolist() == ["1", "2"]


def test_conform_integer_codes_with_missing_values_match_trained_categories():
    schema = infer_schema(pd.DataFrame({"grade": ["1", "2", "A"]}))
    rows = pd.DataFrame({"grade": [1.0, 2.0, np.nan]})  # read_csv of "1\n2\n\n"

    out = conform(rows, schema)

    assert out["grade"].tolist()[:2] == ["1", "2"]


def test_conform_keeps_row_index(schema):
    rows = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": "red"}, index=[7, 9])

    assert conform(rows, schema).index.tolist() == [7, 9]


# --- target -----------------------------------------------------------------------------


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


def test_negative_class():
    assert negative_class(pd.Series(["yes", "no", None, "yes"]), "yes") == "no"
    assert negative_class(pd.Series([0, 1, 1]), "1") == "0"


@pytest.mark.parametrize("values", [["yes", "yes"], ["yes", "no", "maybe"]])
def test_negative_class_requires_exactly_one_other_label(values):
    with pytest.raises(SchemaError, match="exactly one class besides 'yes'"):
        negative_class(pd.Series(values), "yes")


# --- TrainedModel -----------------------------------------------------------------------


def test_trained_model_predicts_class_names_from_raw_rows(tiny_model, frame):
    labels = tiny_model.predict(frame)
    proba = tiny_model.predict_proba(frame)

    assert tiny_model.model_id == "lr_tiny_v1"
    assert tiny_model.classes == ("no", "yes")
    assert tiny_model.positive_class == "yes"
    assert set(labels) == {"no", "yes"}
    assert proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(np.array(labels) == frame["y"].to_numpy()) > 0.9
    assert tiny_model.predict(frame, threshold=1.01) == ["no"] * len(frame)


def test_trained_model_unseen_category_strict_by_default(tiny_model, frame):
    rows = frame.drop(columns=["y"]).head(3).assign(color="purple")

    with pytest.raises(SchemaError, match="purple"):
        tiny_model.predict(rows)
    assert len(tiny_model.predict(rows, strict_categories=False)) == 3
