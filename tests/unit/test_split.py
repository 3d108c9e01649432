"""split: stratified, reproducible hold-out of labelled rows, with clear errors on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages import ingest, split
from stages.split import split_data
from tabml.errors import DataError
from tabml.files import read_csv
from tabml.layout import Layout
from tabml.params import SplitParams
from tests.naming import DATA_NAME_RE
from tests.unit.conftest import SNAPSHOT, cli, make_frame, revalidated


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
