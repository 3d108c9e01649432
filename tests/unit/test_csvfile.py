"""tabml.csvfile: the one way a CSV is read (ingest sources, uploads, the batch CLI).

Blank cells are missing, ``na_values`` are honoured, ``skipinitialspace`` works, and what
pandas would silently repair (duplicate headers, short rows, an inferred index) is refused
naming the column or the line.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tabml.csvfile import (
    CsvOptions,
    csv_shape,
    load_csv,
    mark_missing,
    read_dataset,
    record_lines,
    spaced_names,
    text_in_numbers,
    write_dataset,
)
from tabml.errors import DataError, PipelineError
from tabml.files import write_csv
from tabml.params import DatasetParams

WHAT = "source data.csv"


def read(text: str, **options) -> pd.DataFrame:
    return load_csv(text.encode("utf-8"), CsvOptions(**options), WHAT)


def one_line_error(error: type[Exception], call: Callable[..., object], /, *args, **kwargs) -> str:
    """The message of the ``error`` that ``call(*args, **kwargs)`` raises: one line."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def error(text: str, **options) -> str:
    return one_line_error(DataError, read, text, **options)


# --- options ---------------------------------------------------------------------------------


def test_options_from_dataset_params_and_card_params():
    spec = DatasetParams(
        source="x.csv",
        target="y",
        positive_class="1",
        snapshot="20251130",
        sep=";",
        na_values=["?", "-"],
        skipinitialspace=True,
    )

    expected = CsvOptions(sep=";", na_values=("?", "-"), skipinitialspace=True)
    assert CsvOptions.of(spec) == expected
    assert CsvOptions.of(spec.model_dump()) == expected
    assert CsvOptions.of({"sep": ","}) == CsvOptions()  # a card written before the options


# --- missing values --------------------------------------------------------------------------


def test_blank_and_whitespace_only_cells_are_missing_and_numbers_stay_numbers():
    frame = read("x,c,y\n1.5, ,a\n ,b,b\n\t,  ,a\n2,d,b\n")

    assert frame["x"].dtype == "float64"
    assert frame["x"].isna().tolist() == [False, True, True, False]
    assert frame["c"].isna().tolist() == [True, False, True, False]


def test_numeric_column_with_many_blank_cells_is_not_categorical():
    rows = "".join(f"{i}.5,{'  ' if i % 9 == 0 else i},a\n" for i in range(100))

    frame = read("a,b,y\n" + rows)

    assert frame["b"].dtype == "float64"
    assert int(frame["b"].isna().sum()) == 12


def test_na_values_are_honoured_besides_pandas_defaults():
    frame = read("x,c\n?,a\nNA,-\n3,b\n", na_values=("?", "-"))

    assert frame["x"].dtype == "float64"
    assert frame["x"].isna().tolist() == [True, True, False]
    assert frame["c"].isna().tolist() == [False, True, False]


def test_na_values_match_numbers_too():
    frame = read("x,y\n-999,a\n4,b\n", na_values=("-999",))

    assert frame["x"].isna().tolist() == [True, False]


def test_mark_missing_on_a_frame_that_was_not_read_from_csv():
    frame = pd.DataFrame(
        {
            "x": pd.Series(["1", " ", "?", "2.5"], dtype=object),
            "n": [1.0, -1.0, 2.0, 3.0],
            "c": ["a", "", "b", "?"],
        }
    )

    out = mark_missing(frame, ("?", "-1"))

    assert out["x"].dtype == "float64"
    assert out["x"].isna().tolist() == [False, True, True, False]
    assert out["n"].isna().tolist() == [False, True, False, False]
    assert out["c"].isna().tolist() == [False, True, False, True]


def test_mark_missing_leaves_clean_frames_alone():
    frame = pd.DataFrame({"x": [1, 2], "c": ["a", "b"]})

    out = mark_missing(frame, ())

    pd.testing.assert_frame_equal(out, frame)
    assert out["x"].dtype == "int64"


# --- separators and spaces -------------------------------------------------------------------


def test_skipinitialspace_reads_comma_space_files():
    frame = read("a, b, c\n1, x, 2\n3, , 4\n", skipinitialspace=True)

    assert frame.columns.tolist() == ["a", "b", "c"]
    assert frame["b"].tolist()[0] == "x"
    assert pd.isna(frame["b"].tolist()[1])
    assert frame["c"].tolist() == [2, 4]


def test_without_skipinitialspace_the_spaces_stay_and_are_reported():
    frame = read("a, b, c\n1, x, 2\n")

    assert frame.columns.tolist() == ["a", " b", " c"]
    assert spaced_names(frame.columns) == [" b", " c"]


@pytest.mark.parametrize("names", [["a", "b", "c"], ["a", " b", "c", "d", "e"], ["only"], [" x"]])
def test_spaced_names_only_when_most_names_start_with_a_space(names):
    assert spaced_names(names) == []


def test_separator_option():
    frame = read("a;b\n1,5;x\n", sep=";")

    assert frame.to_dict("list") == {"a": ["1,5"], "b": ["x"]}


# --- refused instead of repaired -------------------------------------------------------------


def test_duplicate_header_is_refused_naming_the_column():
    message = error("id,Income,Income,y\n1,2,3,a\n")

    assert message.startswith(f"{WHAT}: column 'Income' appears twice in the header")


def test_duplicate_header_after_skipping_spaces():
    message = error("a, b,b\n1,2,3\n", skipinitialspace=True)

    assert "column 'b' appears twice" in message


def test_blank_header_names_are_not_duplicates():
    frame = read("a,b,,\n1,2,,\n")

    assert frame.columns.tolist() == ["a", "b", "Unnamed: 2", "Unnamed: 3"]


def test_names_pandas_would_mangle_are_not_duplicates_when_distinct():
    frame = read("x,x.1,y\n1,2,a\n")

    assert frame.columns.tolist() == ["x", "x.1", "y"]


@pytest.mark.parametrize(
    ("text", "line", "fields"),
    [
        ("a,b,c,d,e\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5\n1,2,3\n", 7, 3),
        ("a,b,c\n1,2,3\n4,5\n", 3, 2),
        ("a,b,c\n1,2,3\n4,5,6\n7", 4, 1),  # truncated transfer: the last line cut short
        ('a,b,c\n"x, y",2,3\n"multi\nline",5\n6,7,8\n', 3, 2),  # a quoted newline: first line
        ('a,b,c\r\n"q ""x"", y",2,3\r\n4,5\r\n', 3, 2),
    ],
)
def test_short_rows_are_refused_naming_the_line(text, line, fields):
    message = error(text)

    header = len(text.splitlines()[0].split(","))
    assert message == (
        f"{WHAT}: line {line} has {fields} field{'s' if fields > 1 else ''}, the header has "
        f"{header}: a truncated or shifted row (fix or re-export the file)"
    )


def test_rows_longer_than_the_header_are_refused_not_read_as_an_index():
    message = error("a,b\n1,2,3\n4,5,6\n")

    assert "line 2 has 3 fields, the header has 2" in message


def test_one_long_row_is_not_readable():
    message = error("a,b\n1,2\n3,4,5,6\n")

    assert "is not a readable CSV" in message and "line 3" in message


def test_trailing_empty_fields_and_quoted_separators_are_fine():
    frame = read('a,b,c\n1,,\n"x,y","p\nq",3\n2,"",\n')

    assert frame.shape == (3, 3)
    assert frame["a"].tolist() == ["1", "x,y", "2"]


def test_blank_and_whitespace_only_lines_are_skipped_as_pandas_does():
    frame = read("a,b\n1,2\n\n   \n3,4\n")

    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_stray_quote_inside_a_field_is_no_short_row():
    frame = read('a,b\n12" pipe,3\n4,5\n')

    assert frame["a"].tolist() == ['12" pipe', "4"]


def test_tab_separated_short_row():
    assert "line 3 has 1 field, the header has 2" in error("a\tb\n1\t2\n3\n", sep="\t")


def test_non_ascii_separator():
    frame = read("a§b\n1§2\n", sep="§")

    assert frame.to_dict("list") == {"a": [1], "b": [2]}
    assert "line 3 has 1 field" in error("a§b\n1§2\n3\n", sep="§")


def test_empty_and_unreadable():
    assert error("") == f"{WHAT} is empty (no rows)"
    assert error("\n\n") == f"{WHAT} is empty (no rows)"
    with pytest.raises(DataError, match="is not a readable CSV"):
        load_csv(bytes(range(256)) * 8, CsvOptions(), WHAT)


def test_header_only_gives_no_rows():
    assert len(read("a,b\n")) == 0


# --- files, chunks ---------------------------------------------------------------------------


def test_file_in_chunks_is_the_same_as_whole(tmp_path):
    rows = "".join(f"{i},{'' if i % 5 == 0 else ' '},{i % 3}\n" for i in range(50))
    path = tmp_path / "data.csv"
    path.write_text("a,b,y\n" + rows, encoding="utf-8")
    seen: list[int] = []

    chunked = load_csv(path, CsvOptions(), WHAT, chunk_rows=7, progress=seen.append)

    pd.testing.assert_frame_equal(chunked, load_csv(path, CsvOptions(), WHAT))
    assert seen[-1] == 50 and len(seen) == 8
    assert chunked["b"].isna().all()


def test_file_short_row_names_its_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n" + "1,2\n" * 30 + "3\n", encoding="utf-8")

    with pytest.raises(DataError, match="line 32 has 1 field, the header has 2"):
        load_csv(path, CsvOptions(), WHAT, chunk_rows=7)


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("\ufeffa,a\n1,2\n".encode())

    with pytest.raises(DataError, match="column 'a' appears twice"):
        load_csv(path, CsvOptions(), WHAT)


# --- numbers written as text -----------------------------------------------------------------


def test_text_in_numbers_counts_and_shows_the_first_values():
    numbers = [str(i) for i in range(200)]
    numbers[3] = "n/a "
    numbers[10] = "?"
    numbers[11] = "?"
    numbers[50] = "unknown"
    frame = pd.DataFrame({"x": numbers, "c": ["a", "b"] * 100, "n": range(200)})

    found = text_in_numbers(frame)

    assert list(found) == ["x"]
    assert found["x"] == (4, 3, ["n/a ", "?", "unknown"])
    assert (found["x"].cells, found["x"].distinct) == (4, 3)


def test_text_in_numbers_shows_only_the_first_few():
    numbers = [str(i) for i in range(100)]
    numbers[1:6] = ["a", "b", "c", "d", "a"]

    assert text_in_numbers(pd.DataFrame({"x": numbers}))["x"] == (5, 4, ["a", "b", "c"])


def test_text_in_numbers_ignores_text_columns_and_clean_numbers():
    frame = pd.DataFrame({"c": ["1", "a", "b", "c"], "n": [1.0, 2.0, np.nan, 4.0]})

    assert text_in_numbers(frame) == {}


# --- uploads: /validate and the batch CLI (tabml.serving.scoring) ----------------------------


def upload_error(data: bytes, **kwargs) -> str:
    from tabml.serving.errors import InputError
    from tabml.serving.scoring import read_csv_bytes

    return one_line_error(InputError, read_csv_bytes, data, **kwargs)


def test_upload_short_row_is_refused_naming_the_line():
    data = b"a,b,c,d,e\n" + b"1,2,3,4,5\n" * 5 + b"1,2,3\n"

    assert upload_error(data) == (
        "the uploaded file: line 7 has 3 fields, the header has 5: a truncated or shifted "
        "row (fix or re-export the file)"
    )


def test_upload_duplicate_header_is_refused():
    assert upload_error(b"income,age,age\n1,2,3\n", what="rows.csv") == (
        "rows.csv: column 'age' appears twice in the header (line 1): rename one of them"
    )


def test_upload_blank_cells_are_missing():
    from tabml.serving.scoring import read_csv_bytes

    frame = read_csv_bytes(b"income,color\n 1.5,red\n  ,  \n2,blue\n")

    assert frame["income"].dtype == "float64"
    assert frame["income"].isna().tolist() == [False, True, False]
    assert frame["color"].isna().tolist() == [False, True, False]


def test_upload_still_refuses_what_is_not_a_csv():
    assert upload_error(b"") == (
        "the uploaded file is empty: send a CSV with a header row and at least one row"
    )
    assert upload_error(b"a,b\n") == "the uploaded file has a header but no rows"
    assert (
        upload_error(b"a,b\n\x00\x01,2\n")
        == "the uploaded file is not a CSV (it holds binary data)"
    )
    assert "is not a readable CSV" in upload_error(b"a,b\n1,2\n3,4,5,6\n")


def with_dataset_options(model, **options):
    """``model`` as if its dataset had been read with ``options``."""
    from tabml.model import Model

    params = {**model.card.params, "dataset": {**model.card.params["dataset"], **options}}
    return Model(model.pipeline, model.card.model_copy(update={"params": params}))


def test_model_csv_options_come_from_the_card(tiny_model):
    assert tiny_model.csv_options == CsvOptions()
    model = with_dataset_options(tiny_model, sep=";", na_values=["?"], skipinitialspace=True)

    assert model.csv_options == CsvOptions(sep=";", na_values=("?",), skipinitialspace=True)


def test_read_model_csv_reads_uploads_as_the_dataset_was_read(tiny_model):
    from tabml.serving.scoring import csv_batch, read_model_csv

    model = with_dataset_options(tiny_model, sep=";", na_values=["?"], skipinitialspace=True)
    data = b"income; age; color\n31.5; 40; red\n?; 22; ?\n"

    frame = read_model_csv(data, model)

    assert frame.columns.tolist() == ["income", "age", "color"]
    assert frame["income"].isna().tolist() == [False, True]
    assert frame["color"].isna().tolist() == [False, True]
    assert csv_batch(frame, model).n_rows == 2


def test_read_model_csv_names_a_column_with_a_leading_space(tiny_model):
    from tabml.serving.errors import InputError
    from tabml.serving.scoring import read_model_csv

    with pytest.raises(InputError) as info:
        read_model_csv(b"income, age, color\n31.5, 40, red\n", tiny_model, "rows.csv")

    assert str(info.value) == (
        "rows.csv: column ' age' starts with a space, the model expects 'age': write the "
        "file without spaces after its separators"
    )


# --- pipeline files: raw snapshots and interim splits ---------------------------------------
#
# Ingest keeps a local CSV source's bytes as the raw snapshot and split keeps its lines, so
# every stage reads them with the dataset's options (read_dataset). Before, ingest rewrote
# the source with pandas (comma-separated, missing cells blank) and stages read that with
# pandas' defaults: reading the bytes with the options must give those same values.
# (Floats here have at most 15 significant digits: pandas' default float parser does not
# round-trip every 17-digit repr, so the old rewrite could move those by an ulp.)

TRICKY_SOURCES = {
    "whitespace cells, CRLF": (b"x,c,y\r\n1.5, ,yes\r\n ,b,no\r\n\t,  ,yes\r\n2,d,no\r\n", {}),
    "semicolons, decimal text, na_values": (
        b"x;c;y\n1,5;a;yes\n?;-;no\n3;b;yes\nNA;c;no\n",
        {"sep": ";", "na_values": ("?", "-")},
    ),
    "numeric na_values": (b"x,y\n1,yes\n-999,no\n2.5,yes\n", {"na_values": ("-999",)}),
    "comma-space": (
        b'x, c, y\n1, a, yes\n2, , no\n3, " b", yes\n',
        {"skipinitialspace": True},
    ),
    "BOM, booleans with a blank": (b"\xef\xbb\xbfid,flag,y\n1,True,yes\n2, ,no\n3,False,yes\n", {}),
    "quotes": (b'a,b,y\n"1,5","he said ""hi""",yes\n2,x,no\n3,"",yes\n', {}),
    "blank lines, no final newline": (b"a,b,y\n1,2,yes\n\n   \n3,4,no", {}),
    "numbers as written": (b"n,t,y\n007,1e3,yes\n,2.50,no\n12,-0,yes\n", {}),
    "all blank column": (b"a,b,y\n1, ,yes\n2,,no\n", {}),
    "text numbers and text": (b"a,y\n1,yes\n?,no\n3,yes\n", {}),
}


@pytest.mark.parametrize(("data", "options"), TRICKY_SOURCES.values(), ids=TRICKY_SOURCES.keys())
def test_a_byte_copy_read_with_the_options_gives_what_the_old_rewrite_gave(tmp_path, data, options):
    options = CsvOptions(**options)
    source = tmp_path / "source.csv"
    source.write_bytes(data)
    rewritten = tmp_path / "rewritten.csv"
    write_csv(rewritten, load_csv(source, options, WHAT))  # what ingest wrote before

    got = read_dataset(source, options)

    pd.testing.assert_frame_equal(got, pd.read_csv(rewritten, low_memory=False))


@pytest.mark.parametrize(("data", "options"), TRICKY_SOURCES.values(), ids=TRICKY_SOURCES.keys())
def test_write_dataset_reads_back_to_the_same_values(tmp_path, data, options):
    """The fallback writer (bundled sources, split of a file with multi-line records)."""
    options = CsvOptions(**options)
    frame = load_csv(data, options, WHAT)

    write_dataset(tmp_path / "out.csv", frame, options)

    pd.testing.assert_frame_equal(read_dataset(tmp_path / "out.csv", options), frame)


def test_write_dataset_uses_the_dataset_separator(tmp_path):
    frame = pd.DataFrame({"a": [1.5, None], "b": ["x;y", "z"]})

    write_dataset(tmp_path / "out.csv", frame, CsvOptions(sep=";"))

    assert (tmp_path / "out.csv").read_bytes() == b'a;b\n1.5;"x;y"\n;z\n'


def test_write_dataset_keeps_leading_spaces_when_the_reader_skips_them(tmp_path):
    frame = pd.DataFrame({"a": [" x", "y"], "n": [1, 2]})
    options = CsvOptions(skipinitialspace=True)

    write_dataset(tmp_path / "out.csv", frame, options)

    assert read_dataset(tmp_path / "out.csv", options)["a"].tolist() == [" x", "y"]


def test_mark_missing_reads_true_false_with_blanks_as_pandas_reads_booleans():
    """pandas reads ``True,,False`` as booleans: so must a column whose blanks were spaces."""
    frame = pd.DataFrame({"f": ["True", "  ", "FALSE", "true"], "t": ["True", " ", "x", "y"]})

    out = mark_missing(frame)

    assert out["f"].tolist()[0] is True and out["f"].tolist()[2] is False
    assert out["f"].isna().tolist() == [False, True, False, False]
    assert out["t"].tolist()[0] == "True"  # not every value is a boolean: text stays text


def test_read_dataset_reads_only_the_columns_asked(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_bytes(b"a;b;y\n1;?;yes\n2; ;no\n")

    frame = read_dataset(path, CsvOptions(sep=";", na_values=("?",)), usecols=["b"])

    assert frame.columns.tolist() == ["b"]
    assert frame["b"].isna().all() and frame["b"].dtype == "float64"


def test_read_dataset_of_a_missing_file_says_which_stage_to_run(tmp_path):
    message = one_line_error(PipelineError, read_dataset, tmp_path / "raw.csv", CsvOptions())

    assert message == f"{tmp_path / 'raw.csv'} does not exist: run the stage that writes it first"


def test_read_kwargs_are_what_load_csv_and_read_dataset_give_pandas():
    assert CsvOptions(sep=";", na_values=("?",), skipinitialspace=True).read_kwargs() == {
        "sep": ";",
        "na_values": ["?"],
        "skipinitialspace": True,
        "low_memory": False,
    }
    assert CsvOptions(sep="§").read_kwargs()["engine"] == "python"  # two bytes in UTF-8


# --- record_lines: one physical line per record ----------------------------------------------


def test_record_lines_are_the_header_and_the_data_lines_as_written():
    data = b'\xef\xbb\xbfa,b\r\n1,"x,y"\r\n\r\n  \r\n2,z\r\n3,w'

    lines = record_lines(data, 3, CsvOptions())

    assert lines == (b"\xef\xbb\xbfa,b\r\n", [b'1,"x,y"\r\n', b"2,z\r\n", b"3,w\r\n"])


def test_record_lines_of_a_quoted_newline_is_none():
    data = b'a,b\n1,"two\nlines"\n2,z\n'

    assert record_lines(data, 2, CsvOptions()) is None


def test_record_lines_with_a_record_count_that_differs_is_none():
    assert record_lines(b"a,b\n1,2\n3,4\n", 3, CsvOptions()) is None


def test_record_lines_blank_lines_are_those_pandas_skips():
    """Spaces and tabs only, unless one of them is the separator (then it is a record)."""
    tab = b"a\tb\n1\t2\n\t\n3\t4\n"

    assert len(pd.read_csv(io.BytesIO(tab), sep="\t")) == 3
    assert record_lines(tab, 3, CsvOptions(sep="\t")) == (
        b"a\tb\n",
        [b"1\t2\n", b"\t\n", b"3\t4\n"],
    )
    spaced = b"a;b\n1;2\n \t \n3;4\n"
    assert len(pd.read_csv(io.BytesIO(spaced), sep=";")) == 2
    assert record_lines(spaced, 2, CsvOptions(sep=";")) == (b"a;b\n", [b"1;2\n", b"3;4\n"])


def test_record_lines_take_a_stray_quote_only_when_no_line_was_skipped():
    """pandas reads ``12" pipe`` as it is, on its line: as many lines as records proves it.
    With blank lines skipped, an odd quote count might hide a record over two lines."""
    data = b'a,b\n1,12" pipe\n2,x\n'

    assert len(pd.read_csv(io.BytesIO(data))) == 2
    assert record_lines(data, 2, CsvOptions()) == (b"a,b\n", [b'1,12" pipe\n', b"2,x\n"])
    assert record_lines(b'a,b\n1,12" pipe\n\n2,x\n', 2, CsvOptions()) is None


def test_stages_read_values_as_uploads_are_read_not_as_the_pyarrow_engine_would(tmp_path):
    """Why the C parser stays: pyarrow's engine reads ISO dates as dates, rounds some
    17-digit floats otherwise and refuses skipinitialspace, so a stage would see other
    values than the server, which reads uploads with load_csv."""
    data = b"d,x,y\n2024-01-01,0.30000000000000004,yes\n2024-02-01,1.5,no\n"
    path = tmp_path / "raw.csv"
    path.write_bytes(data)

    got = read_dataset(path, CsvOptions())

    pd.testing.assert_frame_equal(got, load_csv(data, CsvOptions(), WHAT))
    assert got["d"].tolist() == ["2024-01-01", "2024-02-01"]
    arrow = pd.read_csv(io.BytesIO(data), engine="pyarrow")
    assert arrow["d"].tolist() != got["d"].tolist()


def test_csv_shape_counts_records_as_pandas_reads_them(tmp_path):
    """For GET /datasets: the raw snapshot's rows and columns without pandas, in the
    dataset's format (blank lines skipped, a quoted line break inside its record)."""
    path = tmp_path / "raw.csv"
    path.write_bytes(b'\xef\xbb\xbfa;b;y\r\n1;"two\r\nlines";yes\r\n\r\n   \r\n2;x;no\r\n3; ;no')

    assert csv_shape(path, CsvOptions(sep=";")) == (3, 3)
    assert len(read_dataset(path, CsvOptions(sep=";"))) == 3
    (tmp_path / "empty.csv").write_bytes(b"")
    assert csv_shape(tmp_path / "empty.csv", CsvOptions()) == (0, 0)
