"""The input schema and its one validation path (tabml.schema): schema inference, the two
per-value rules, validate/conform of DataFrames and JSON records alike."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from tabml.errors import DataError, SchemaError
from tabml.schema import (
    FLOAT_LIMIT,
    Batch,
    ColumnSpec,
    as_text,
    conform,
    infer_schema,
    number,
    text,
    validate,
)


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


def rows(n: int = 1, **columns) -> list[dict]:
    """JSON-like records of the ``schema`` fixture: good values unless given."""
    base = {"income": 1.0, "age": 30, "color": "red"}
    return [{**base, **{k: v[i] for k, v in columns.items()}} for i in range(n)]


def schema_error(data, schema, **kwargs) -> str:
    with pytest.raises(SchemaError) as info:
        validate(data, schema, **kwargs)
    return str(info.value)


# --- ColumnSpec and infer_schema --------------------------------------------------------


def test_infer_schema_kinds_dtypes_and_categories(schema):
    by_name = {c.name: c for c in schema}

    assert [c.name for c in schema] == ["income", "age", "color"]
    assert by_name["income"] == ColumnSpec(name="income", kind="numeric", dtype="float64")
    assert by_name["age"] == ColumnSpec(name="age", kind="numeric", dtype="int64")
    assert by_name["color"].kind == "categorical"
    assert by_name["color"].categories == ("blue", "red")  # sorted, NaN left out


def test_infer_schema_bools_and_mixed_objects_are_categorical():
    frame = pd.DataFrame({"flag": [True, False, True], "code": ["1", 2, "x"]})

    by_name = {c.name: c for c in infer_schema(frame)}

    assert by_name["flag"].kind == "categorical"
    assert by_name["flag"].categories == ("False", "True")
    assert by_name["code"].categories == ("1", "2", "x")


def test_infer_schema_categories_leave_blank_text_out():
    frame = pd.DataFrame({"color": ["red", " ", "", "blue", None]})

    assert infer_schema(frame)[0].categories == ("blue", "red")


def test_infer_schema_numbers_with_blank_cells_are_numeric():
    """pandas reads a numeric column holding a " " cell as text; blank cells are missing
    values, so the column is numeric all the same (not one category per number)."""
    frame = pd.read_csv(io.StringIO("income,code,blank\n1.5,1, \n ,x,\n20, ,\t\n,2,\n"))
    assert frame["income"].dtype == object  # what pandas does with the " " cell

    by_name = {c.name: c for c in infer_schema(frame)}

    assert by_name["income"] == ColumnSpec(name="income", kind="numeric", dtype="float64")
    assert by_name["code"].kind == "categorical"  # "x" is text
    assert by_name["code"].categories == ("1", "2", "x")
    assert by_name["blank"].kind == "categorical"  # nothing but blanks: no number seen
    assert by_name["blank"].categories == ()
    out = conform(frame, [by_name["income"]])
    assert out["income"].dtype == "float64"
    np.testing.assert_array_equal(out["income"].to_numpy(), [1.5, np.nan, 20.0, np.nan])


def test_infer_schema_text_numbers_with_blanks_from_records_are_numeric():
    frame = pd.DataFrame({"x": [" 2 ", "   ", None, 3, "1e3"], "flag": [True, " ", 1, 2, 3]})

    by_name = {c.name: c for c in infer_schema(frame)}

    assert by_name["x"].kind == "numeric"
    assert by_name["flag"].kind == "categorical"  # a boolean is never a number


def test_column_spec_is_frozen_hashable_and_built_with_keywords():
    spec = ColumnSpec(name="color", kind="categorical", dtype="object", categories=("a", "b"))

    with pytest.raises((AttributeError, ValidationError)):
        spec.name = "other"  # type: ignore[misc]
    assert spec == ColumnSpec(
        name="color", kind="categorical", dtype="object", categories=("a", "b")
    )
    assert hash(spec) == hash(
        ColumnSpec(name="color", kind="categorical", dtype="object", categories=("a", "b"))
    )
    assert ColumnSpec(name="x", kind="numeric", dtype="float64").categories == ()


def test_column_spec_round_trips_through_json_and_is_checked_when_read():
    """Cards and feature specs store the schema as JSON; reading it back validates it."""
    adapter = TypeAdapter(ColumnSpec)
    spec = ColumnSpec(name="color", kind="categorical", dtype="object", categories=("a", "b"))

    assert adapter.validate_json(adapter.dump_json(spec)) == spec
    good = {"name": "x", "kind": "numeric", "dtype": "float64", "categories": []}
    assert adapter.validate_python(good) == ColumnSpec(name="x", kind="numeric", dtype="float64")
    for bad in ({**good, "kind": "text"}, {**good, "unit": "kg"}, {"name": "x"}):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


# --- the two rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (-2.5, -2.5),
        ("1.5", 1.5),
        (" 12 ", 12.0),
        ("+.5e-3", 0.0005),
        ("1E3", 1000.0),
        ("-0", 0.0),
        ("7.", 7.0),
        (FLOAT_LIMIT, FLOAT_LIMIT),
        (-FLOAT_LIMIT, -FLOAT_LIMIT),
        (2**63, float(2**63)),
    ],
)
def test_number_accepts_numbers_and_ascii_decimal_text(value, expected):
    assert number(value) == expected


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, "", " ", "\t\n"])
def test_number_blank_is_missing(value):
    assert math.isnan(number(value))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "\uff16\uff14",
            "is not a number",
        ),  # fullwidth "64": float() takes them, pandas never does
        ("\u0661\u0662", "is not a number"),  # Arabic-Indic digits
        ("1_000", "is not a number"),
        ("0x10", "is not a number"),
        ("1,5", "is not a number"),
        ("lots", "is not a number"),
        ("nan", "is not a number"),
        ("e5", "is not a number"),
        ("1e", "is not a number"),
        (True, "is not a number"),  # booleans are never numbers
        (False, "is not a number"),
        (np.True_, "is not a number"),
        ([1], "is not a number"),
        ({"a": 1}, "is not a number"),
        ("inf", "is not a finite number"),
        ("-Infinity", "is not a finite number"),
        ("INF", "is not a finite number"),
        (float("inf"), "is not a finite number"),
        (float("-inf"), "is not a finite number"),
        ("1e400", "is not a finite number"),
        (1e39, "is out of range"),
        (-1e39, "is out of range"),
        ("3.5e38", "is out of range"),
        (10**39, "is out of range"),
    ],
)
def test_number_refuses_with_a_reason(value, reason):
    with pytest.raises(ValueError) as info:
        number(value)

    assert str(info.value).startswith(reason)


def test_number_out_of_range_names_the_limit():
    with pytest.raises(ValueError) as info:
        number(1e39)

    assert str(info.value) == f"is out of range (at most {FLOAT_LIMIT:.3g} in size)"
    assert float(np.finfo(np.float32).max) == FLOAT_LIMIT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("red", "red"),
        (" red ", " red "),  # text is kept as is
        (1, "1"),
        (1.0, "1"),  # numbers as their shortest text: pandas reads 1 as 1.0 beside a blank
        (-3.0, "-3"),
        (1.5, "1.5"),
        (True, "True"),
        (False, "False"),
    ],
)
def test_text_of_categories(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize("value", [None, float("nan"), "", "   ", "\t"])
def test_text_blank_is_missing(value):
    assert text(value) is None


@pytest.mark.parametrize("value", [[1], {"a": 1}, b"red", object()])
def test_text_refuses_other_values(value):
    with pytest.raises(ValueError, match="is not a string or a number"):
        text(value)


def test_as_text_keeps_index_and_missing():
    values = pd.Series([1.0, np.nan, 2.0, " "], index=[5, 6, 7, 8])

    out = as_text(values)

    assert out.index.tolist() == [5, 6, 7, 8]
    assert out.tolist()[0] == "1" and out.tolist()[2] == "2"
    assert out.isna().tolist() == [False, True, False, True]


# --- conform ----------------------------------------------------------------------------


def test_conform_drops_extra_columns_and_orders_as_schema(schema):
    frame = pd.DataFrame(
        {"extra": [1, 2], "color": ["red", "blue"], "age": [1, 2], "income": [1.0, 2.0]}
    )

    out = conform(frame, schema)

    assert out.columns.tolist() == ["income", "age", "color"]
    assert out["age"].dtype == "float64"
    assert out["color"].tolist() == ["red", "blue"]


def test_conform_missing_column_named(schema):
    frame = pd.DataFrame({"income": [1.0], "color": ["red"]})

    with pytest.raises(SchemaError) as info:
        conform(frame, schema)

    assert str(info.value) == "missing column 'age' (expected: income, age, color)"
    assert isinstance(info.value, DataError)  # the CLI reports it as a user error


def test_conform_non_numeric_value_names_column_and_row(schema):
    frame = pd.DataFrame({"income": ["1.5", "2", "lots"], "age": [1, 2, 3], "color": "red"})

    with pytest.raises(SchemaError) as info:
        conform(frame, schema)

    assert str(info.value) == "column 'income', row 2: 'lots' is not a number"


@pytest.mark.parametrize("value", [float("inf"), "-inf", "Infinity"])
def test_conform_rejects_infinite_numbers_naming_column_and_row(schema, value):
    frame = pd.DataFrame({"income": [1.0, value], "age": [1, 2], "color": "red"})

    with pytest.raises(SchemaError) as info:
        conform(frame, schema)

    assert str(info.value).startswith("column 'income', row 1: ")
    assert str(info.value).endswith("is not a finite number")


def test_conform_parses_numeric_text_and_keeps_blanks_missing(schema):
    frame = pd.DataFrame({"income": ["1.5", "", None, "  "], "age": [1, 2, 3, 4], "color": "red"})

    out = conform(frame, schema)

    assert out["income"].iloc[0] == 1.5
    assert out["income"].iloc[1:].isna().all()
    assert out["income"].dtype == "float64"


def test_conform_unseen_category_strict_raises_with_row(schema):
    frame = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": ["red", "purple"]})

    with pytest.raises(SchemaError) as info:
        conform(frame, schema)

    message = str(info.value)
    assert "column 'color', row 1: unseen category 'purple'" in message
    assert "blue, red" in message


def test_unseen_category_lists_only_the_first_ten_allowed():
    """A column of 1,500 codes must not put 1,500 codes into one error line."""
    schema = infer_schema(pd.DataFrame({"code": [f"c{i:04d}" for i in range(1500)]}))

    message = schema_error([{"code": "zzz"}], schema)

    first = ", ".join(f"c{i:04d}" for i in range(10))
    assert (
        message
        == f"column 'code', row 0: unseen category 'zzz' (allowed: {first}, ... and 1490 more)"
    )


def test_unseen_category_lists_all_of_ten_allowed():
    schema = infer_schema(pd.DataFrame({"code": [f"c{i}" for i in range(10)]}))

    message = schema_error([{"code": "zzz"}], schema)

    assert message.endswith(f"(allowed: {', '.join(f'c{i}' for i in range(10))})")


def test_missing_column_lists_only_the_first_ten_expected():
    wide = infer_schema(pd.DataFrame({f"c{i:02d}": [1.0] for i in range(30)}))
    first = ", ".join(f"c{i:02d}" for i in range(10))

    from_frame = schema_error(pd.DataFrame({"c00": [1.0]}), wide)
    from_records = schema_error([{"c00": 1.0}], wide)

    assert from_frame == f"missing column 'c01' (expected: {first}, ... and 20 more)"
    assert from_records == (
        "column 'c01', row 0: missing (send null for an unknown value; "
        f"expected columns: {first}, ... and 20 more)"
    )


def test_conform_unseen_category_accepted_when_not_strict(schema):
    frame = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": ["red", "purple"]})

    out = conform(frame, schema, strict_categories=False)

    assert out["color"].tolist() == ["red", "purple"]


def test_conform_keeps_missing_as_nan(schema):
    frame = pd.DataFrame({"income": [np.nan, 3.0], "age": [1, None], "color": [None, "blue"]})

    out = conform(frame, schema)

    assert np.isnan(out["income"].iloc[0])
    assert np.isnan(out["age"].iloc[1])
    assert pd.isna(out["color"].iloc[0])
    assert out["color"].iloc[1] == "blue"


def test_conform_blank_category_is_missing_not_unseen(schema):
    frame = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": ["", "  "]})

    out = conform(frame, schema)

    assert out["color"].isna().all()


def test_conform_compares_categories_as_text():
    schema = infer_schema(pd.DataFrame({"grade": ["1", "2", "A"]}))

    out = conform(pd.DataFrame({"grade": [1, 2]}), schema)  # ints, as read_csv parses them

    assert out["grade"].tolist() == ["1", "2"]


def test_conform_integer_codes_with_missing_values_match_trained_categories():
    schema = infer_schema(pd.DataFrame({"grade": ["1", "2", "A"]}))
    frame = pd.DataFrame({"grade": [1.0, 2.0, np.nan]})  # read_csv of "1\n2\n\n"

    out = conform(frame, schema)

    assert out["grade"].tolist()[:2] == ["1", "2"]
    assert pd.isna(out["grade"].iloc[2])


def test_conform_booleans_compare_as_text():
    schema = infer_schema(pd.DataFrame({"flag": ["True", "False"]}))

    out = conform(pd.DataFrame({"flag": [True, False]}), schema)

    assert out["flag"].tolist() == ["True", "False"]


def test_conform_rows_are_numbered_from_zero(schema):
    """Rows are positional: errors say "row 1" for the second row whatever the index, and
    the frame the pipeline reads is indexed 0..n-1 (the caller's index is not kept)."""
    frame = pd.DataFrame({"income": [1.0, 2.0], "age": [1, 2], "color": "red"}, index=[7, 9])

    out = conform(frame, schema)

    assert out.index.tolist() == [0, 1]
    assert out["income"].tolist() == [1.0, 2.0]
    bad = frame.assign(color=["red", "purple"])
    assert schema_error(bad, schema).startswith("column 'color', row 1:")


# --- validate: DataFrames and JSON records ----------------------------------------------


def test_validate_batch_is_column_wise(schema):
    batch = validate(rows(2, income=[1.5, None], color=["red", None]), schema)

    assert isinstance(batch, Batch)
    assert batch.n_rows == 2
    assert set(batch.numeric) == {"income", "age"}
    assert batch.numeric["income"].dtype == np.float64
    assert batch.numeric["income"][0] == 1.5 and np.isnan(batch.numeric["income"][1])
    assert batch.categorical == {"color": ["red", None]}
    frame = batch.frame(schema)
    assert frame.columns.tolist() == ["income", "age", "color"]
    assert frame["color"].tolist()[0] == "red" and pd.isna(frame["color"].iloc[1])


def test_validate_records_ignore_extra_keys(schema):
    records = [{**rows()[0], "extra": "anything", "y": "yes"}]

    assert validate(records, schema).frame(schema).columns.tolist() == ["income", "age", "color"]


def test_validate_empty_input(schema):
    assert validate([], schema).n_rows == 0
    empty = pd.DataFrame({"income": [], "age": [], "color": []})
    assert len(validate(empty, schema).frame(schema)) == 0


def test_record_missing_a_key_asks_for_null(schema):
    records = [rows()[0], {"income": 1.0, "color": "red"}]

    message = schema_error(records, schema)

    assert message.startswith("column 'age', row 1: missing (send null")
    assert "expected columns: income, age, color" in message


def test_record_with_null_is_missing(schema):
    batch = validate([{"income": None, "age": None, "color": None}], schema)

    assert np.isnan(batch.numeric["income"][0]) and np.isnan(batch.numeric["age"][0])
    assert batch.categorical["color"] == [None]


def test_duplicate_column_in_a_frame_is_named(schema):
    frame = pd.DataFrame([[1.0, 2, "red", 3]], columns=["income", "age", "color", "age"])

    assert schema_error(frame, schema) == "column 'age' appears twice"


def test_first_line_names_the_csv_line(schema):
    frame = pd.DataFrame({"income": [1.0, 2.0, "x"], "age": [1, 2, 3], "color": "red"})

    message = schema_error(frame, schema, first_line=2)

    assert message == "column 'income', row 2 (CSV line 4): 'x' is not a number"
    batch = validate(frame.iloc[:2], schema, first_line=2)
    assert batch.where("income", 1) == "column 'income', row 1 (CSV line 3)"
    assert validate(frame.iloc[:2], schema).where("age", 0) == "column 'age', row 0"


def test_first_line_names_the_csv_line_of_an_unseen_category(schema):
    frame = pd.DataFrame({"income": [1.0], "age": [1], "color": ["purple"]})

    message = schema_error(frame, schema, first_line=2)

    assert message.startswith("column 'color', row 0 (CSV line 2): unseen category 'purple'")


def test_numbers_parsed_by_pandas_are_range_checked(schema):
    frame = pd.DataFrame({"income": [1.0, 2.0, 1e39], "age": [1, 2, 3], "color": "red"})

    message = schema_error(frame, schema)

    assert message == (
        f"column 'income', row 2: 1e+39 is out of range (at most {FLOAT_LIMIT:.3g} in size)"
    )


def test_boolean_column_is_not_numeric(schema):
    frame = pd.DataFrame({"income": [True, False], "age": [1, 2], "color": "red"})

    assert schema_error(frame, schema) == "column 'income', row 0: True is not a number"


def test_nullable_pandas_dtypes_missing_is_missing(schema):
    """pd.NA is pandas' missing value in nullable columns (Int64, string): missing, like NaN."""
    frame = pd.DataFrame(
        {
            "income": pd.array([1.5, None], dtype="Float64"),
            "age": pd.array([1, None], dtype="Int64"),
            "color": pd.array(["red", None], dtype="string"),
        }
    )

    batch = validate(frame, schema)

    assert np.isnan(batch.numeric["income"][1]) and np.isnan(batch.numeric["age"][1])
    assert batch.categorical["color"] == ["red", None]


BAD_NUMBERS = [
    "\uff16\uff14",
    "1_000",
    "0x10",
    "lots",
    "inf",
    "-Infinity",
    float("inf"),
    float("-inf"),
    "1e400",
    True,
    False,
    1e39,
    "3.5e38",
    10**39,
    10**400,
    [1],
    {"a": 1},
]
BAD_CATEGORIES = ["purple", 3, 1.5, True, [1], {"a": 1}]


def one_column_frame(column: str, values: list) -> pd.DataFrame:
    """A frame of the ``schema`` fixture as pandas builds it (object dtype if it must)."""
    good = {"income": 1.0, "age": 30, "color": "red"}
    data = {name: [value] * len(values) for name, value in good.items()}
    try:
        column_values = pd.Series(values)
    except OverflowError:  # an int too large for any numeric dtype
        column_values = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data)
    frame[column] = column_values
    return frame


def decision(data, schema, **kwargs) -> str:
    """'ok' or the error message: what a caller sees for ``data``."""
    try:
        validate(data, schema, **kwargs)
    except SchemaError as exc:
        return str(exc)
    return "ok"


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_records_and_frames_refuse_a_bad_number_with_the_same_message(schema, value):
    records = [rows()[0], rows()[0] | {"income": value}]
    frame = one_column_frame("income", [1.0, value])

    from_records, from_frame = decision(records, schema), decision(frame, schema)

    assert from_records == from_frame
    assert from_records.startswith("column 'income', row 1: ")
    assert from_records.endswith(("is not a number", "is not a finite number", "in size)"))


@pytest.mark.parametrize("value", BAD_CATEGORIES, ids=repr)
def test_records_and_frames_refuse_a_bad_category_with_the_same_message(schema, value):
    records = [rows()[0], rows()[0] | {"color": value}]
    frame = one_column_frame("color", ["red", value])

    from_records, from_frame = decision(records, schema), decision(frame, schema)

    assert from_records == from_frame
    assert from_records.startswith("column 'color', row 1: ")


GOOD_VALUES = [
    ("income", None),
    ("income", float("nan")),
    ("income", ""),
    ("income", "   "),
    ("income", "1.5"),
    ("income", " 2 "),
    ("income", 7),
    ("income", FLOAT_LIMIT),
    ("age", -3),
    ("color", None),
    ("color", ""),
    ("color", "  "),
    ("color", "blue"),
]


@pytest.mark.parametrize(("column", "value"), GOOD_VALUES, ids=repr)
def test_records_and_frames_accept_the_same_values_alike(schema, column, value):
    records = [rows()[0], rows()[0] | {column: value}]
    frame = pd.DataFrame([records[0], records[1]])

    from_records = validate(records, schema).frame(schema)
    from_frame = validate(frame, schema).frame(schema)

    pd.testing.assert_frame_equal(from_records, from_frame)


def test_unseen_category_check_is_skipped_without_strict(schema):
    records = rows(2, color=["purple", 3])

    batch = validate(records, schema, strict_categories=False)

    assert batch.categorical["color"] == ["purple", "3"]
