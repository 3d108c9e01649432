"""split: stratified, reproducible hold-out of labelled rows, with clear errors on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages import ingest, split
from stages.split import split_data
from tabml.csvfile import CsvOptions, read_dataset
from tabml.errors import DataError
from tabml.files import read_csv
from tabml.layout import Layout
from tabml.params import DatasetParams, SplitParams
from tests.naming import DATA_NAME_RE
from tests.unit.conftest import (
    SNAPSHOT,
    cli,
    make_frame,
    project_params,
    revalidated,
    write_params,
)


@pytest.fixture
def imbalanced() -> pd.DataFrame:
    """60 rows, 15 positives, with a unique id per row to track where rows go."""
    return make_frame(60, positives=15).assign(id=range(60))


def positives(frame: pd.DataFrame) -> int:
    return int((frame["y"] == "yes").sum())


def test_split_sizes_and_rows_preserved(imbalanced, spec):
    train, test = split_data(imbalanced, spec, SplitParams(test_size=0.25, seed=1))

    assert (len(train), len(test)) == (45, 15)
    assert set(train["id"]).isdisjoint(test["id"])
    assert sorted([*train["id"], *test["id"]]) == list(range(60))
    assert train.columns.tolist() == imbalanced.columns.tolist()
    assert train.index.tolist() == list(range(45))  # fresh index for clean CSVs
    row = test.iloc[0]
    original = imbalanced.set_index("id").loc[row["id"]]
    assert row["y"] == original["y"] and row["color"] == original["color"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_is_stratified(imbalanced, spec, seed):
    train, test = split_data(imbalanced, spec, SplitParams(test_size=0.25, seed=seed))

    ratio = positives(imbalanced) / len(imbalanced)
    assert abs(positives(test) - ratio * len(test)) <= 1
    assert abs(positives(train) - ratio * len(train)) <= 1


def test_split_deterministic_with_same_seed(imbalanced, spec):
    first = split_data(imbalanced, spec, SplitParams(seed=7))
    second = split_data(imbalanced.copy(), spec, SplitParams(seed=7))

    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])


def test_split_differs_with_another_seed(imbalanced, spec):
    _, test_a = split_data(imbalanced, spec, SplitParams(seed=7))
    _, test_b = split_data(imbalanced, spec, SplitParams(seed=8))

    assert set(test_a["id"]) != set(test_b["id"])


def test_rows_with_missing_target_dropped(imbalanced, spec, caplog):
    imbalanced.loc[[0, 10, 20], "y"] = np.nan

    with caplog.at_level("WARNING", logger="stages.split"):
        train, test = split_data(imbalanced, spec, SplitParams(test_size=0.25))

    assert len(train) + len(test) == 57
    assert not {0, 10, 20} & (set(train["id"]) | set(test["id"]))
    assert train["y"].notna().all() and test["y"].notna().all()
    assert "dropped 3 rows with a missing target 'y'" in caplog.text


def test_int_target_split_stratified(spec):
    frame = pd.DataFrame({"x": range(40), "y": [1] * 10 + [0] * 30})

    train, test = split_data(frame, revalidated(spec, positive_class="1"), SplitParams())

    assert (len(train), len(test)) == (30, 10)
    assert abs(int(test["y"].sum()) - 2.5) <= 1


def test_rows_with_blank_target_dropped_like_missing(imbalanced, spec, caplog):
    """Blank text is a missing label (tabml.schema.text), as check_raw in ingest counts it."""
    imbalanced["y"] = imbalanced["y"].astype(object)
    imbalanced.loc[[0, 10], "y"] = ["", "   "]
    imbalanced.loc[20, "y"] = np.nan

    with caplog.at_level("WARNING", logger="stages.split"):
        train, test = split_data(imbalanced, spec, SplitParams(test_size=0.25))

    assert len(train) + len(test) == 57
    assert set(train["y"]) | set(test["y"]) == {"yes", "no"}
    assert "dropped 3 rows with a missing target 'y'" in caplog.text


def test_float_read_int_target_split_stratified(spec):
    frame = pd.DataFrame({"x": range(41), "y": [1.0] * 10 + [0.0] * 30 + [np.nan]})

    train, test = split_data(frame, revalidated(spec, positive_class="1"), SplitParams())

    assert len(train) + len(test) == 40
    assert int(train["y"].sum()) + int(test["y"].sum()) == 10


@pytest.mark.parametrize(
    ("n_pos", "n_neg", "test_size"),
    [
        (1, 20, 0.25),  # a class with a single row cannot be in both parts
        (2, 2, 0.1),  # test part smaller than the number of classes
        (3, 3, 0.9),  # train part smaller than the number of classes
    ],
)
def test_too_few_rows(spec, n_pos, n_neg, test_size):
    frame = pd.DataFrame({"x": range(n_pos + n_neg), "y": ["yes"] * n_pos + ["no"] * n_neg})

    with pytest.raises(DataError) as info:
        split_data(frame, spec, SplitParams(test_size=test_size))

    assert "too few rows to split" in str(info.value)
    assert f"split.test_size={test_size}" in str(info.value)


def test_too_few_train_rows_after_ceil_is_a_data_error(spec):
    frame = pd.DataFrame({"x": range(6), "y": ["yes", "no"] * 3})

    with pytest.raises(DataError, match="too few rows"):
        split_data(frame, spec, SplitParams(test_size=0.7))


def test_single_class_after_dropping_missing_targets(spec):
    frame = pd.DataFrame({"x": range(10), "y": ["yes"] * 8 + [None] * 2})

    with pytest.raises(DataError, match="fewer than two classes"):
        split_data(frame, spec, SplitParams())


def test_missing_target_column(imbalanced, spec):
    with pytest.raises(DataError) as info:
        split_data(imbalanced.drop(columns="y"), spec, SplitParams())

    assert "target column 'y' not in data" in str(info.value)
    assert "income, age, color, id" in str(info.value)


def test_main_writes_train_and_test(project, frame):
    assert ingest.main(cli(project, dataset="tiny")) == 0

    code = split.main(cli(project, dataset="tiny"))

    layout = Layout(project)
    train = read_csv(layout.interim("tiny", "train", SNAPSHOT))
    test = read_csv(layout.interim("tiny", "test", SNAPSHOT))
    assert code == 0
    assert DATA_NAME_RE.match(layout.interim("tiny", "train", SNAPSHOT).name)
    assert (len(train), len(test)) == (30, 10)
    assert sorted([*train["income"].fillna(-1), *test["income"].fillna(-1)]) == sorted(
        frame["income"].fillna(-1)
    )


def test_main_without_raw_snapshot_returns_2(project, capsys):
    code = split.main(cli(project, dataset="tiny"))

    assert code == 2
    assert "does not exist: run the stage that writes it first" in capsys.readouterr().err


# --- the interim files: the raw lines, in the split order -----------------------------------


def split_text(root, text: str, **dataset) -> tuple[int, Layout, CsvOptions]:
    """Ingest and split a source CSV written as ``text``; (split's exit code, layout, the
    dataset's CSV options)."""
    raw = project_params()
    raw["datasets"]["tiny"].update(dataset)
    write_params(root / "params.yaml", raw)
    (root / "src.csv").write_bytes(text.encode("utf-8"))
    assert ingest.main(cli(root, dataset="tiny")) == 0
    return (
        split.main(cli(root, dataset="tiny")),
        Layout(root),
        CsvOptions.of(raw["datasets"]["tiny"]),
    )


def expected_split(layout: Layout, options: CsvOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What split_data makes of the raw snapshot as every stage reads it."""
    spec = revalidated(
        DatasetParams(source="s", target="y", positive_class="yes", snapshot=SNAPSHOT)
    )
    raw = read_dataset(layout.raw("tiny", SNAPSHOT), options)
    return split_data(raw, spec, SplitParams())


def source_rows(n: int = 40, sep: str = ",", end: str = "\n") -> list[str]:
    return [
        sep.join(
            [
                str(i),
                f"{i * 1.25:g}",
                "" if i % 6 == 0 else ("red" if i % 3 else "?"),
                "yes" if i % 4 == 0 else "no",
            ]
        )
        + end
        for i in range(n)
    ]


def test_main_interim_files_are_raw_lines_in_the_split_order(tmp_path):
    rows = source_rows()
    code, layout, options = split_text(tmp_path, "id,income,color,y\n" + "".join(rows))

    assert code == 0
    train_rows, test_rows = expected_split(layout, options)
    for part, expected in (("train", train_rows), ("test", test_rows)):
        written = layout.interim("tiny", part, SNAPSHOT).read_bytes()
        lines = ["id,income,color,y\n", *(rows[i] for i in expected["id"])]
        assert written == "".join(lines).encode()
        pd.testing.assert_frame_equal(
            read_dataset(layout.interim("tiny", part, SNAPSHOT), options), expected
        )


def test_main_semicolon_source_lines_stay_as_written(tmp_path):
    rows = source_rows(sep="; ", end="\r\n")
    text = "\ufeffid; income; color; y\r\n" + "".join(rows[:20]) + "\r\n" + "".join(rows[20:])
    code, layout, options = split_text(
        tmp_path, text.rstrip("\r\n"), sep=";", na_values=["?"], skipinitialspace=True
    )

    assert code == 0
    train_rows, test_rows = expected_split(layout, options)
    test_bytes = layout.interim("tiny", "test", SNAPSHOT).read_bytes()
    lines = ["\ufeffid; income; color; y\r\n", *(rows[i] for i in test_rows["id"])]
    assert test_bytes == "".join(lines).encode()  # the last line gains its line end
    for part, expected in (("train", train_rows), ("test", test_rows)):
        got = read_dataset(layout.interim("tiny", part, SNAPSHOT), options)
        pd.testing.assert_frame_equal(got, expected)
    assert test_rows["color"].isna().any()  # "?" and blank cells are missing


def test_main_quoted_line_breaks_take_the_pandas_writer(tmp_path, caplog):
    rows = [
        f'{i},"note {i}{chr(10) + "more" if i % 5 == 0 else ""}",{"yes" if i % 4 == 0 else "no"}\n'
        for i in range(40)
    ]

    with caplog.at_level("INFO", logger="stages.split"):
        code, layout, options = split_text(tmp_path, "id,note,y\n" + "".join(rows))

    assert code == 0
    assert "a record spans several lines" in caplog.text
    train_rows, test_rows = expected_split(layout, options)
    assert "note 0\nmore" in set(train_rows["note"]) | set(test_rows["note"])
    for part, expected in (("train", train_rows), ("test", test_rows)):
        got = read_dataset(layout.interim("tiny", part, SNAPSHOT), options)
        pd.testing.assert_frame_equal(got, expected)


def test_main_same_split_as_the_frame_split_with_missing_targets(tmp_path):
    """Rows without a target are left out of both files, as split_data leaves them out."""
    rows = [r if i % 7 else r.rsplit(",", 1)[0] + ",\n" for i, r in enumerate(source_rows(60))]
    code, layout, options = split_text(tmp_path, "id,income,color,y\n" + "".join(rows))

    train_rows, test_rows = expected_split(layout, options)
    assert code == 0
    assert len(train_rows) + len(test_rows) == 51
    for part, expected in (("train", train_rows), ("test", test_rows)):
        written = layout.interim("tiny", part, SNAPSHOT).read_text(encoding="utf-8")
        assert written.splitlines(keepends=True)[1:] == [rows[i] for i in expected["id"]]


def test_main_missing_target_column_names_it(tmp_path, capsys):
    raw = project_params()
    write_params(tmp_path / "params.yaml", raw)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    Layout(tmp_path).raw("tiny", SNAPSHOT).write_text("a,b\n1,2\n3,4\n", encoding="utf-8")

    code = split.main(cli(tmp_path, dataset="tiny"))

    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: target column 'y' not in data (columns: a, b)"
    ]


def test_main_replaces_the_whole_interim_folder(project):
    stale = Layout(project).interim_dir("tiny") / "tiny-train_interim_20240101.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("old", encoding="utf-8")
    assert ingest.main(cli(project, dataset="tiny")) == 0

    assert split.main(cli(project, dataset="tiny")) == 0

    assert sorted(p.name for p in stale.parent.iterdir()) == [
        f"tiny-test_interim_{SNAPSHOT}.csv",
        f"tiny-train_interim_{SNAPSHOT}.csv",
    ]
