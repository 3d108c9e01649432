"""featurize: preprocessing learnt from the train split only, applied to both splits."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer

from stages import featurize as featurize_stage
from stages import ingest, split
from stages.featurize import featurize
from tabml.errors import DataError, SchemaError
from tabml.features import DataInfo, FeatureSpec, build_transformer, load_features, load_matrix
from tabml.files import md5_file, read_csv
from tabml.layout import Layout
from tabml.params import FeaturizeParams
from tabml.schema import ColumnSpec, validate
from tests.naming import DATA_NAME_RE
from tests.unit.conftest import SNAPSHOT, cli, make_frame, revalidated

RAW = FeaturizeParams(scale_numeric=False)  # unscaled: imputed values stay readable


@pytest.fixture
def train() -> pd.DataFrame:
    return make_frame(40, seed=1)


@pytest.fixture
def test() -> pd.DataFrame:
    return make_frame(12, seed=2)


def data_info(train: pd.DataFrame) -> DataInfo:
    return DataInfo(
        snapshot=SNAPSHOT, train_file="train.csv", train_md5="0" * 32, train_rows=len(train)
    )


def featurized(train, test, spec, params=RAW):
    """featurize() as the stage calls it: processed train and test as (features, labels),
    the FeatureSpec and the fitted transformer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: unknown categories -> zeros
        return featurize(train, test, "tiny", spec, params, data_info(train))


def table(processed, names: list[str]) -> pd.DataFrame:
    """Processed (features, labels) as one frame: the feature columns, then ``y``, so a test
    reads values by feature name whether the matrix is sparse or dense."""
    X, y = processed
    out = pd.DataFrame(X.toarray() if sp.issparse(X) else X, columns=names)
    out["y"] = y
    return out


def run(train, test, spec, params=RAW):
    """featurize() with each processed split as a frame (:func:`table`)."""
    out_train, out_test, features, transformer = featurized(train, test, spec, params)
    names = features.feature_names
    return table(out_train, names), table(out_test, names), features, transformer


def test_processed_splits_are_a_feature_matrix_and_encoded_labels(train, test, spec):
    (X_train, y_train), (X_test, y_test), features, transformer = featurized(
        train, test, spec, FeaturizeParams()
    )

    width = len(features.feature_names)
    assert X_train.shape == (len(train), width) and X_test.shape == (len(test), width)
    assert X_train.dtype == X_test.dtype == np.float64
    assert y_train.tolist() == (train["y"] == "yes").astype(int).tolist()
    assert y_test.tolist() == (test["y"] == "yes").astype(int).tolist()
    assert y_train.dtype.kind == y_test.dtype.kind == "i"
    rows = train.drop(columns="y")
    np.testing.assert_array_equal(X_train, transformer.transform(rows))  # dense: few zeros


def test_mostly_zero_features_are_a_sparse_matrix(spec):
    """Many one-hot levels make the matrix mostly zeros: CSR, the same values as dense."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"x": rng.normal(size=200), "code": [f"k{i % 40}" for i in range(200)]}
    ).assign(y=["yes", "no"] * 100)

    (X_train, _), (X_test, _), features, transformer = featurized(train, train, spec)

    assert sp.issparse(X_train) and X_train.format == "csr"
    assert sp.issparse(X_test) and X_test.format == "csr"
    assert X_train.shape == (200, len(features.feature_names))
    assert transformer.sparse_output_  # decided at fit: served rows are CSR too
    dense = build_transformer(features.columns, RAW, dense=True)
    expected = dense.fit_transform(train[["x", "code"]])
    assert isinstance(expected, np.ndarray)
    np.testing.assert_array_equal(X_train.toarray(), expected)


def test_missing_values_imputed(train, test, spec):
    test.loc[0, "age"] = np.nan  # no missing age in train: imputed all the same
    out_train, out_test, _, _ = run(train, test, spec, FeaturizeParams())

    assert not out_train.isna().any().any()
    assert not out_test.isna().any().any()


def test_numeric_imputer_uses_train_median_or_mean(spec):
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 100.0, np.nan, 4.0], "y": ["yes", "no"] * 3})
    test = pd.DataFrame({"x": [np.nan, 1000.0], "y": ["yes", "no"]})

    _, by_median, features, _ = run(train, test, spec, RAW)
    _, by_mean, _, _ = run(train, test, spec, revalidated(RAW, numeric_imputer="mean"))

    assert by_median["num__x"].tolist() == [3.0, 1000.0]  # median of the train split
    assert by_mean["num__x"].iloc[0] == pytest.approx(22.0)
    assert by_median["num__missingindicator_x"].tolist() == [1.0, 0.0]
    assert "num__missingindicator_x" in features.feature_names


def test_scaler_fitted_on_train_only(train, test, spec):
    test["age"] = test["age"] + 100  # a shifted test split must not move the scaling

    out_train, out_test, _, _ = run(train, test, spec, FeaturizeParams())

    mean, std = train["age"].mean(), train["age"].std(ddof=0)
    assert out_train["num__age"].mean() == pytest.approx(0.0, abs=1e-9)
    assert out_train["num__age"].std(ddof=0) == pytest.approx(1.0)
    np.testing.assert_allclose(out_test["num__age"], (test["age"] - mean) / std)


def test_category_only_in_test_gets_all_zero_one_hot(train, test, spec):
    test.loc[0, "color"] = "purple"

    _, out_test, features, _ = run(train, test, spec)

    onehot = [n for n in features.feature_names if n.startswith("cat__color_")]
    assert "cat__color_purple" not in onehot
    assert (out_test.loc[0, onehot] == 0).all()
    assert (out_test.loc[1:, onehot].sum(axis=1) == 1).all()


def test_missing_category_imputed_as_constant_or_most_frequent(train, test, spec):
    test.loc[0, "color"] = np.nan

    _, constant, features, _ = run(train, test, spec)
    _, frequent, freq, _ = run(
        train, test, spec, revalidated(RAW, categorical_imputer="most_frequent")
    )

    assert "cat__color_missing" in features.feature_names  # train has one missing color
    assert constant.loc[0, "cat__color_missing"] == 1.0
    most_common = train["color"].value_counts().idxmax()
    assert "cat__color_missing" not in freq.feature_names
    assert frequent.loc[0, f"cat__color_{most_common}"] == 1.0


def test_min_category_frequency_groups_rare_categories(train, test, spec):
    train.loc[[1, 2], "color"] = ["green", "teal"]  # one row each: rare
    test.loc[0:2, "color"] = ["green", "teal", "purple"]  # rare, rare, unseen

    _, out_test, features, _ = run(train, test, spec, revalidated(RAW, min_category_frequency=3))

    names = features.feature_names  # grouped columns are the transformer's "many" block
    assert not any(n.startswith("cat__") for n in names)
    assert "many__color_green" not in names and "many__color_teal" not in names
    assert "many__color_infrequent_sklearn" in names
    assert out_test.loc[0:2, "many__color_infrequent_sklearn"].tolist() == [1.0, 1.0, 1.0]
    assert "many__color_blue" in names and "many__color_red" in names


def test_min_category_frequency_one_keeps_every_category(train, test, spec):
    _, _, features, _ = run(train, test, spec)

    assert "cat__color_green" in features.feature_names
    assert not any("infrequent" in n for n in features.feature_names)


def test_schema_and_classes_recorded_in_feature_spec(train, test, spec):
    spec = revalidated(spec, drop_columns=["age"])

    out_train, _, features, transformer = run(train, test, spec)

    assert isinstance(features, FeatureSpec)
    assert features.dataset == "tiny"
    assert features.columns == [
        ColumnSpec(name="income", kind="numeric", dtype="float64"),
        ColumnSpec(
            name="color", kind="categorical", dtype="object", categories=("blue", "green", "red")
        ),
    ]
    assert features.target == "y"
    assert features.classes == ("no", "yes")
    assert features.data == data_info(train)
    assert not any("age" in n for n in features.feature_names)
    assert isinstance(transformer, ColumnTransformer)
    np.testing.assert_allclose(
        transformer.transform(train[["income", "color"]]),
        out_train[features.feature_names].to_numpy(),
    )


def test_check_rows_recorded_in_feature_spec(train, test, spec):
    _, _, features, transformer = run(train, test, spec)

    assert len(features.check_rows) == 8
    assert all(set(row) == {"income", "age", "color"} for row in features.check_rows)
    assert transformer.transform(pd.DataFrame(features.check_rows)).shape == (
        8,
        len(features.feature_names),
    )


def test_classes_compare_as_text(spec):
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1, 0, 1, 0]})

    out_train, _, features, _ = run(train, train, revalidated(spec, positive_class="1"))

    assert features.classes == ("0", "1")
    assert out_train["y"].tolist() == [1, 0, 1, 0]


def test_all_missing_column_raises_naming_it(train, test, spec):
    train["notes"] = np.nan

    with pytest.raises(DataError) as info:
        run(train, test, spec)

    assert "column 'notes' is empty in the train split" in str(info.value)
    assert "drop_columns" in str(info.value)


def test_all_blank_column_is_empty_too(train, test, spec):
    """Blank text is missing (tabml.schema): a column of blanks is as empty as one of NaN."""
    train["notes"] = "  "
    test["notes"] = "  "

    with pytest.raises(DataError, match="column 'notes' is empty in the train split"):
        run(train, test, spec)


def test_all_missing_column_fine_when_dropped(train, test, spec):
    train["notes"] = np.nan
    test["notes"] = np.nan

    _, _, features, _ = run(train, test, revalidated(spec, drop_columns=["notes"]))

    assert "notes" not in [c.name for c in features.columns]


def test_only_target_column_raises(spec):
    frame = pd.DataFrame({"y": ["yes", "no"] * 3})

    with pytest.raises(DataError, match="no input columns left besides the target 'y'"):
        run(frame, frame, spec)


def test_column_missing_from_test_raises(train, test, spec):
    with pytest.raises(DataError, match="missing column 'income'"):
        run(train, test.drop(columns="income"), spec)


def test_bad_number_in_the_test_split_names_column_and_row(train, test, spec):
    test["income"] = test["income"].astype(object)
    test.loc[4, "income"] = "lots"

    with pytest.raises(SchemaError) as info:
        run(train, test, spec)

    assert str(info.value) == "column 'income', row 4: 'lots' is not a number"


def test_number_out_of_float32_range_in_the_train_split_is_refused(train, test, spec):
    train.loc[6, "income"] = 1e39

    with pytest.raises(SchemaError, match=r"column 'income', row 6: 1e\+39 is out of range"):
        run(train, test, spec)


def test_unseen_test_category_is_not_an_error(train, test, spec):
    test.loc[0, "color"] = "purple"

    _, out_test, _, _ = run(train, test, spec)

    assert len(out_test) == len(test)


# --- row ids (issue 8 item 7) ---------------------------------------------------------------


def ids(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def id_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_text_column_of_row_ids_is_dropped_with_one_warning(train, test, spec, caplog):
    """A text id is one one-hot feature per train row, and the served model would refuse
    every new id as an unseen category (a 422 listing 1,500 ids)."""
    train.insert(0, "customer", ids(len(train)))
    test.insert(0, "customer", ids(len(test), "N"))

    out_train, out_test, features, transformer = run(train, test, spec)

    assert [c.name for c in features.columns] == ["income", "age", "color"]
    assert not any("customer" in n for n in features.feature_names)
    assert out_test.columns.tolist() == out_train.columns.tolist() == [*features.feature_names, "y"]
    assert all("customer" not in row for row in features.check_rows)
    assert list(transformer.feature_names_in_) == ["income", "age", "color"]
    assert id_warnings(caplog) == [
        "column 'customer' looks like a row id (40 distinct values in 40 train rows): dropped "
        "from the features; list it in datasets.tiny.keep_columns to keep it, or in "
        "datasets.tiny.drop_columns to drop it without this warning"
    ]
    # What a client sends with the id: an extra column, ignored (no 422 for a new id).
    validate([test.drop(columns="y").iloc[0].to_dict()], features.columns)


def test_row_id_in_keep_columns_is_kept_without_warning(train, test, spec, caplog):
    train.insert(0, "customer", ids(len(train)))
    test.insert(0, "customer", ids(len(test)))

    _, _, features, _ = run(train, test, revalidated(spec, keep_columns=["customer"]))

    assert features.columns[0].name == "customer"
    assert "cat__customer_C00000" in features.feature_names
    assert id_warnings(caplog) == []


def test_row_id_in_drop_columns_is_dropped_without_warning(train, test, spec, caplog):
    train.insert(0, "customer", ids(len(train)))
    test.insert(0, "customer", ids(len(test)))

    _, _, features, _ = run(train, test, revalidated(spec, drop_columns=["customer"]))

    assert "customer" not in [c.name for c in features.columns]
    assert id_warnings(caplog) == []


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (
            "custmer",
            "datasets.tiny.keep_columns: 'custmer' is not a column of the train split "
            "(columns: 'income', 'age', 'color'): fix the name or remove it",
        ),
        (
            "y",
            "datasets.tiny.keep_columns lists the target column 'y': remove it (the target is "
            "never an input)",
        ),
    ],
    ids=["no-such-column", "the-target"],
)
def test_keep_columns_naming_no_column_or_the_target_raises(train, test, spec, keep, message):
    with pytest.raises(DataError) as info:
        run(train, test, revalidated(spec, keep_columns=[keep]))

    assert str(info.value) == message


def test_only_row_ids_left_raises(spec):
    frame = pd.DataFrame({"customer": ids(30), "y": ["yes", "no"] * 15})

    with pytest.raises(DataError) as info:
        run(frame, frame, spec)

    assert str(info.value) == (
        "every input column of dataset 'tiny' looks like a row id ('customer'): list the ones "
        "to keep in datasets.tiny.keep_columns"
    )


@pytest.mark.parametrize(("n_rows", "dropped"), [(19, False), (20, True)])
def test_row_ids_need_twenty_train_values(spec, n_rows, dropped):
    """On a handful of rows any text column is all distinct: that proves nothing."""
    frame = make_frame(n_rows, seed=4)
    frame.insert(0, "customer", ids(n_rows))

    _, _, features, _ = run(frame, frame, spec)

    assert ("customer" not in [c.name for c in features.columns]) is dropped


@pytest.mark.parametrize(("distinct", "dropped"), [(20, False), (21, True)])
def test_row_ids_are_counted_among_non_missing_values(train, test, spec, distinct, dropped):
    """max_unique_fraction=0.5 of 40 present values: 20 distinct is a category, 21 an id;
    missing and blank cells are not values."""
    values = [f"v{i % distinct}" for i in range(40)] + [None] * 10 + ["  "] * 10
    train = pd.concat([train, train.iloc[:20]], ignore_index=True)
    train.insert(0, "code", values)
    test.insert(0, "code", "v0")

    _, _, features, _ = run(train, test, spec, revalidated(RAW, max_unique_fraction=0.5))

    assert ("code" not in [c.name for c in features.columns]) is dropped


def test_numeric_columns_are_never_row_ids(train, test, spec, caplog):
    train.insert(0, "number", range(len(train)))
    test.insert(0, "number", range(len(test)))

    _, _, features, _ = run(train, test, spec)

    assert features.columns[0].name == "number"
    assert id_warnings(caplog) == []


def test_numbers_with_blank_cells_are_one_numeric_feature(spec):
    """pandas reads a numeric column with " " cells as text; blanks are missing values, so it
    is scaled and imputed as a number, not one-hot encoded per value."""
    source = "x,y\n" + "".join(
        f"{v},{c}\n" for v, c in zip([1.5, " ", 3, "  ", 5] * 6, ["yes", "no"] * 15, strict=True)
    )
    train = pd.read_csv(io.StringIO(source))
    assert train["x"].dtype == object

    out_train, _, features, _ = run(train, train, spec)

    assert features.columns == [ColumnSpec(name="x", kind="numeric", dtype="float64")]
    assert features.feature_names == ["num__x", "num__missingindicator_x"]
    assert out_train["num__x"].tolist()[:5] == [1.5, 3.0, 3.0, 3.0, 5.0]  # median imputed
    assert {row["x"] for row in features.check_rows} <= {1.5, 3.0, 5.0, None}


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
        f"tiny-features_processed_{SNAPSHOT}.json",
        f"tiny-test_processed_{SNAPSHOT}.npz",
        f"tiny-train_processed_{SNAPSHOT}.npz",
        f"tiny-transformer_processed_{SNAPSHOT}.pkl",
    ]
    assert all(DATA_NAME_RE.match(name) for name in files)
    features, transformer = load_features(layout, "tiny", SNAPSHOT)
    X, y = load_matrix(layout.processed("tiny", "train", SNAPSHOT, "npz"))
    assert X.shape == (30, len(features.feature_names))
    train_rows = read_csv(layout.interim("tiny", "train", SNAPSHOT))
    assert y.tolist() == (train_rows["y"] == "yes").astype(int).tolist()
    np.testing.assert_array_equal(
        X, transformer.transform(train_rows[[c.name for c in features.columns]])
    )
    X_test, y_test = load_matrix(layout.processed("tiny", "test", SNAPSHOT, "npz"))
    assert X_test.shape == (10, X.shape[1]) and len(y_test) == 10
    assert features.data.train_rows == 30
    assert features.data.train_md5 == md5_file(layout.interim("tiny", "train", SNAPSHOT))
    assert features.data.train_file == f"data/interim/tiny/tiny-train_interim_{SNAPSHOT}.csv"
    assert list(transformer.get_feature_names_out()) == features.feature_names


def test_main_drops_a_row_id_with_one_warning(project, caplog):
    frame = make_frame()
    frame.insert(0, "customer", ids(len(frame)))
    frame.to_csv(project / "src.csv", index=False)
    root = cli(project, dataset="tiny")
    assert ingest.main(root) == 0 and split.main(root) == 0
    caplog.clear()

    code = featurize_stage.main(root)

    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert code == 0
    assert [(r.name, r.getMessage().split(":")[0]) for r in warned] == [
        (
            "tabml.features",
            "column 'customer' looks like a row id (30 distinct values in 30 train rows)",
        )
    ]
    features, _ = load_features(Layout(project), "tiny", SNAPSHOT)
    assert [c.name for c in features.columns] == ["income", "age", "color"]


def test_main_is_reproducible(project):
    root = cli(project, dataset="tiny")
    assert ingest.main(root) == 0 and split.main(root) == 0
    layout = Layout(project)
    json_path = layout.processed("tiny", "features", SNAPSHOT, "json")

    assert featurize_stage.main(root) == 0
    first = {p.name: md5_file(p) for p in layout.processed_dir("tiny").iterdir()}
    assert featurize_stage.main(root) == 0
    second = {p.name: md5_file(p) for p in layout.processed_dir("tiny").iterdir()}

    assert first == second
    assert json_path.name in first


def test_main_with_a_bad_test_value_returns_2_and_keeps_the_old_output(project, capsys):
    root = cli(project, dataset="tiny")
    assert ingest.main(root) == 0 and split.main(root) == 0 and featurize_stage.main(root) == 0
    layout = Layout(project)
    before = {p.name: md5_file(p) for p in layout.processed_dir("tiny").iterdir()}
    test_path = layout.interim("tiny", "test", SNAPSHOT)
    test = read_csv(test_path).astype({"income": object})
    test.loc[1, "income"] = "n/a?"
    test.to_csv(test_path, index=False)

    code = featurize_stage.main(root)

    err = capsys.readouterr().err
    assert code == 2
    assert "error: column 'income', row 1: 'n/a?' is not a number" in err
    assert {p.name: md5_file(p) for p in layout.processed_dir("tiny").iterdir()} == before


def test_main_without_the_split_returns_2(project, capsys):
    assert featurize_stage.main(cli(project, dataset="tiny")) == 2

    assert "does not exist: run the stage that writes it first" in capsys.readouterr().err
