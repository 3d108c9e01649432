"""featurize: preprocessing learnt from the train split only, applied to both splits."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from stages import featurize as featurize_stage
from stages import ingest, split
from stages.common import DATA_NAME_RE, Layout, read_csv, read_pickle
from stages.errors import DataError
from stages.featurize import featurize
from stages.model import ColumnSpec
from stages.params import FeaturizeParams
from tests.unit.conftest import SNAPSHOT, cli, make_frame

RAW = FeaturizeParams(scale_numeric=False)  # unscaled: imputed values stay readable


@pytest.fixture
def train() -> pd.DataFrame:
    return make_frame(40, seed=1)


@pytest.fixture
def test() -> pd.DataFrame:
    return make_frame(12, seed=2)


def run(train, test, spec, params=RAW):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: unknown categories -> zeros
        return featurize(train, test, spec, params)


def test_processed_frames_hold_features_then_encoded_target(train, test, spec):
    out_train, out_test, bundle = run(train, test, spec, FeaturizeParams())

    names = bundle["feature_names"]
    assert out_train.columns.tolist() == [*names, "y"]
    assert out_test.columns.tolist() == [*names, "y"]
    assert (len(out_train), len(out_test)) == (len(train), len(test))
    assert out_train["y"].tolist() == (train["y"] == "yes").astype(int).tolist()
    assert out_test["y"].tolist() == (test["y"] == "yes").astype(int).tolist()
    assert out_train[names].dtypes.eq("float64").all()


def test_missing_values_imputed(train, test, spec):
    test.loc[0, "age"] = np.nan  # no missing age in train: imputed all the same
    out_train, out_test, _ = run(train, test, spec, FeaturizeParams())

    assert not out_train.isna().any().any()
    assert not out_test.isna().any().any()


def test_numeric_imputer_uses_train_median_or_mean(spec):
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 100.0, np.nan, 4.0], "y": ["yes", "no"] * 3})
    test = pd.DataFrame({"x": [np.nan, 1000.0], "y": ["yes", "no"]})

    _, by_median, bundle = run(train, test, spec, RAW)
    _, by_mean, _ = run(train, test, spec, dataclasses.replace(RAW, numeric_imputer="mean"))

    assert by_median["num__x"].tolist() == [3.0, 1000.0]  # median of the train split
    assert by_mean["num__x"].iloc[0] == pytest.approx(22.0)
    assert by_median["num__missingindicator_x"].tolist() == [1.0, 0.0]
    assert "num__missingindicator_x" in bundle["feature_names"]


def test_scaler_fitted_on_train_only(train, test, spec):
    test["age"] = test["age"] + 100  # a shifted test split must not move the scaling

    out_train, out_test, _ = run(train, test, spec, FeaturizeParams())

    mean, std = train["age"].mean(), train["age"].std(ddof=0)
    assert out_train["num__age"].mean() == pytest.approx(0.0, abs=1e-9)
    assert out_train["num__age"].std(ddof=0) == pytest.approx(1.0)
    np.testing.assert_allclose(out_test["num__age"], (test["age"] - mean) / std)


def test_category_only_in_test_gets_all_zero_one_hot(train, test, spec):
    test.loc[0, "color"] = "purple"

    _, out_test, bundle = run(train, test, spec)

    onehot = [n for n in bundle["feature_names"] if n.startswith("cat__color_")]
    assert "cat__color_purple" not in onehot
    assert (out_test.loc[0, onehot] == 0).all()
    assert (out_test.loc[1:, onehot].sum(axis=1) == 1).all()


def test_missing_category_imputed_as_constant_or_most_frequent(train, test, spec):
    test.loc[0, "color"] = np.nan

    _, constant, bundle = run(train, test, spec)
    _, frequent, bundle_freq = run(
        train, test, spec, dataclasses.replace(RAW, categorical_imputer="most_frequent")
    )

    assert "cat__color_missing" in bundle["feature_names"]  # train has one missing color
    assert constant.loc[0, "cat__color_missing"] == 1.0
    most_common = train["color"].value_counts().idxmax()
    assert "cat__color_missing" not in bundle_freq["feature_names"]
    assert frequent.loc[0, f"cat__color_{most_common}"] == 1.0


def test_min_category_frequency_groups_rare_categories(train, test, spec):
    train.loc[[1, 2], "color"] = ["green", "teal"]  # one row each: rare
    test.loc[0:2, "color"] = ["green", "teal", "purple"]  # rare, rare, unseen

    _, out_test, bundle = run(train, test, spec, dataclasses.replace(RAW, min_category_frequency=3))

    names = bundle["feature_names"]
    assert "cat__color_green" not in names and "cat__color_teal" not in names
    assert "cat__color_infrequent_sklearn" in names
    assert out_test.loc[0:2, "cat__color_infrequent_sklearn"].tolist() == [1.0, 1.0, 1.0]
    assert "cat__color_blue" in names and "cat__color_red" in names


def test_min_category_frequency_one_keeps_every_category(train, test, spec):
    _, _, bundle = run(train, test, spec)

    assert "cat__color_green" in bundle["feature_names"]
    assert not any("infrequent" in n for n in bundle["feature_names"])


def test_schema_and_classes_recorded_in_bundle(train, test, spec):
    spec = dataclasses.replace(spec, drop_columns=["age"])

    out_train, _, bundle = run(train, test, spec)

    assert bundle["schema"] == [
        ColumnSpec("income", "numeric", "float64"),
        ColumnSpec("color", "categorical", "object", ("blue", "green", "red")),
    ]
    assert bundle["target"] == "y"
    assert bundle["classes"] == ("no", "yes")
    assert not any("age" in n for n in bundle["feature_names"])
    np.testing.assert_allclose(
        bundle["transformer"].transform(train[["income", "color"]]),
        out_train[bundle["feature_names"]].to_numpy(),
    )


def test_all_missing_column_raises_naming_it(train, test, spec):
    train["notes"] = np.nan

    with pytest.raises(DataError) as info:
        run(train, test, spec)

    assert "column 'notes' is empty in the train split" in str(info.value)
    assert "drop_columns" in str(info.value)


def test_all_missing_column_fine_when_dropped(train, test, spec):
    train["notes"] = np.nan
    test["notes"] = np.nan

    _, _, bundle = run(train, test, dataclasses.replace(spec, drop_columns=["notes"]))

    assert "notes" not in [c.name for c in bundle["schema"]]


def test_only_target_column_raises(spec):
    frame = pd.DataFrame({"y": ["yes", "no"] * 3})

    with pytest.raises(DataError, match="no input columns left besides the target 'y'"):
        run(frame, frame, spec)


def test_column_missing_from_test_raises(train, test, spec):
    with pytest.raises(DataError, match="missing column 'income'"):
        run(train, test.drop(columns="income"), spec)


def test_main_writes_processed_directory(project):
    root = cli(project, dataset="tiny")
    assert ingest.main(root) == 0 and split.main(root) == 0
    layout = Layout(project)
    stale = layout.processed_dir("tiny") / "stale.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("old", encoding="utf-8")

    code = featurize_stage.main(root)

    files = sorted(p.name for p in layout.processed_dir("tiny").iterdir())
    assert code == 0
    assert files == [
        f"tiny-test_processed_{SNAPSHOT}.csv",
        f"tiny-train_processed_{SNAPSHOT}.csv",
        f"tiny-transformer_processed_{SNAPSHOT}.pkl",
    ]
    assert all(DATA_NAME_RE.match(name) for name in files)
    bundle = read_pickle(layout.processed("tiny", "transformer", SNAPSHOT, "pkl"))
    processed = read_csv(layout.processed("tiny", "train", SNAPSHOT))
    assert processed.columns.tolist() == [*bundle["feature_names"], "y"]
    assert len(processed) == 30
