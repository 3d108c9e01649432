"""The featurize -> train hand-off (tabml.features): the transformer, its typed description
(FeatureSpec, JSON) and the check rows every model of a dataset is scored on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.compose import ColumnTransformer

from tabml.errors import DataError
from tabml.features import (
    CHECK_ROWS,
    DataInfo,
    FeatureSpec,
    build_transformer,
    check_rows,
    load_features,
    load_matrix,
    save_features,
    save_matrix,
)
from tabml.files import md5_file
from tabml.layout import Layout
from tabml.params import FeaturizeParams
from tabml.schema import conform, infer_schema, validate
from tests.unit.conftest import SNAPSHOT


@pytest.fixture
def inputs(frame) -> pd.DataFrame:
    return frame.drop(columns="y")


def test_featurize_writes_a_feature_spec_that_load_features_reads_back(trained_project):
    layout = Layout(trained_project)
    path = layout.processed("tiny", "features", SNAPSHOT, "json")

    spec, transformer = load_features(layout, "tiny", SNAPSHOT)

    assert spec == FeatureSpec.model_validate_json(path.read_text(encoding="utf-8"))
    assert isinstance(transformer, ColumnTransformer)
    assert spec.dataset == "tiny"
    assert [(c.name, c.kind) for c in spec.columns] == [
        ("income", "numeric"),
        ("age", "numeric"),
        ("color", "categorical"),
    ]
    assert spec.columns[2].categories == ("blue", "green", "red")
    assert spec.feature_names == [str(n) for n in transformer.get_feature_names_out()]
    assert (spec.target, spec.classes) == ("y", ("no", "yes"))
    train_file = layout.interim("tiny", "train", SNAPSHOT)
    assert spec.data == DataInfo(
        snapshot=SNAPSHOT,
        train_file="data/interim/tiny/tiny-train_interim_20251130.csv",
        train_md5=md5_file(train_file),
        train_rows=30,
    )
    assert len(spec.check_rows) == CHECK_ROWS
    X, y = load_matrix(layout.processed("tiny", "train", SNAPSHOT, "npz"))
    assert X.shape == (30, len(spec.feature_names)) and y.shape == (30,)


def test_feature_spec_json_is_stable_sorted_json(trained_project):
    path = Layout(trained_project).processed("tiny", "features", SNAPSHOT, "json")
    text = path.read_text(encoding="utf-8")

    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_save_features_writes_the_pair_and_load_features_reads_it(trained_project, tmp_path):
    spec, transformer = load_features(Layout(trained_project), "tiny", SNAPSHOT)
    layout = Layout(tmp_path)
    out = layout.processed_dir("tiny")

    save_features(layout, out, spec, transformer)

    assert sorted(p.name for p in out.iterdir()) == [
        f"tiny-features_processed_{SNAPSHOT}.json",
        f"tiny-transformer_processed_{SNAPSHOT}.pkl",
    ]
    back, back_transformer = load_features(layout, "tiny", SNAPSHOT)
    assert back == spec
    rows = validate(spec.check_rows, spec.columns).frame(spec.columns)
    np.testing.assert_array_equal(back_transformer.transform(rows), transformer.transform(rows))


def test_transformer_file_holds_only_the_column_transformer(trained_project):
    import joblib

    path = Layout(trained_project).processed("tiny", "transformer", SNAPSHOT, "pkl")

    assert type(joblib.load(path)) is ColumnTransformer


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop("columns"),
        lambda s: s.update(extra=1),
        lambda s: s.update(classes=["no", "yes", "maybe"]),
        lambda s: s["data"].pop("train_md5"),
    ],
)
def test_feature_spec_refuses_another_shape(trained_project, edit):
    path = Layout(trained_project).processed("tiny", "features", SNAPSHOT, "json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    edit(raw)

    with pytest.raises(ValidationError):
        FeatureSpec.model_validate(raw)


# --- build_transformer ------------------------------------------------------------------


def test_build_transformer_parts_follow_the_schema(inputs):
    schema = infer_schema(inputs)

    transformer = build_transformer(schema, FeaturizeParams())

    parts = {name: columns for name, _, columns in transformer.transformers}
    assert parts == {"num": ["income", "age"], "cat": ["color"]}
    assert transformer.remainder == "drop"


def test_build_transformer_only_numeric_or_only_categorical(inputs):
    numeric = build_transformer(infer_schema(inputs[["income"]]), FeaturizeParams())
    categorical = build_transformer(infer_schema(inputs[["color"]]), FeaturizeParams())

    assert [name for name, _, _ in numeric.transformers] == ["num"]
    assert [name for name, _, _ in categorical.transformers] == ["cat"]


def test_build_transformer_without_scaling(inputs):
    schema = infer_schema(inputs)
    transformer = build_transformer(schema, FeaturizeParams(scale_numeric=False))

    out = transformer.fit(conform(inputs, schema)).transform(conform(inputs, schema))

    names = list(transformer.get_feature_names_out())
    income = out[:, names.index("num__income")]
    assert np.nanmax(income) == inputs["income"].max()


# --- check_rows -------------------------------------------------------------------------


def test_check_rows_span_the_train_split(inputs):
    schema = infer_schema(inputs)

    rows = check_rows(inputs, schema)

    assert len(rows) == CHECK_ROWS
    assert all(list(row) == ["income", "age", "color"] for row in rows)
    for spec in schema:
        values = [row[spec.name] for row in rows]
        assert values.count(None) == 1, spec.name  # one missing value per column
        present = [v for v in values if v is not None]
        if spec.kind == "numeric":
            low, high = inputs[spec.name].min(), inputs[spec.name].max()
            assert all(low <= v <= high for v in present)
            assert low in present
        else:
            assert set(present) == set(spec.categories)  # every category in turn
    assert [i for i, row in enumerate(rows) if None in row.values()] == [5, 6, 7]


def test_check_rows_are_deterministic_and_valid(inputs):
    schema = infer_schema(inputs)

    rows = check_rows(inputs, schema)

    assert rows == check_rows(inputs.sample(frac=1.0, random_state=0), schema)
    assert json.loads(json.dumps(rows)) == rows
    validate(rows, schema)  # strict categories: the check rows are valid input


def test_check_rows_count(inputs):
    schema = infer_schema(inputs)

    assert len(check_rows(inputs, schema, n=3)) == 3


# --- save_matrix / load_matrix: the processed data featurize hands to train -----------------


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_save_matrix_round_trips_features_and_labels(tmp_path, kind):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    dense = rng.normal(size=(50, 7)) * (rng.random((50, 7)) < 0.2)
    dense[3, 2] = np.nan  # stored as is, not dropped
    X = sp.csr_matrix(dense) if kind == "sparse" else dense
    y = rng.integers(0, 2, 50)
    path = tmp_path / "tiny-train_processed_20251130.npz"

    save_matrix(path, X, y)
    back, labels = load_matrix(path)

    assert sp.issparse(back) is (kind == "sparse")
    if kind == "sparse":
        assert back.format == "csr" and back.nnz == X.nnz
        back = back.toarray()
    np.testing.assert_array_equal(back, dense)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(labels, y)
    assert labels.dtype == np.int64
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_save_matrix_stores_plain_arrays_only(tmp_path):
    """Read back with allow_pickle=False: a processed file can never run code."""
    import scipy.sparse as sp

    path = tmp_path / "m.npz"
    save_matrix(path, sp.eye(4, format="csr"), [0, 1, 0, 1])

    with np.load(path, allow_pickle=False) as stored:
        assert sorted(stored.files) == ["data", "indices", "indptr", "shape", "y"]
        assert all(stored[name].dtype != object for name in stored.files)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "npy", "no-labels"])
def test_load_matrix_refuses_a_damaged_file_in_one_line(tmp_path, damage):
    import scipy.sparse as sp

    path = tmp_path / "tiny-train_processed_20251130.npz"
    save_matrix(path, sp.eye(40, format="csr"), np.arange(40) % 2)
    data = path.read_bytes()
    if damage == "npy":
        np.save(tmp_path / "a.npy", np.arange(3))
        data = (tmp_path / "a.npy").read_bytes()
    elif damage == "no-labels":
        np.savez(tmp_path / "other.npz", X=np.ones((2, 2)))
        data = (tmp_path / "other.npz").read_bytes()
    path.write_bytes(
        {"garbage": b"not a matrix\n" * 10, "truncated": data[: len(data) // 2], "empty": b""}.get(
            damage, data
        )
    )

    with pytest.raises(DataError) as info:
        load_matrix(path)

    message = str(info.value)
    assert message.startswith(f"{path} is not processed data (")
    assert message.endswith("): rerun featurize")
    assert "\n" not in message and "pickle" not in message


def test_load_matrix_without_the_file_says_to_run_featurize(tmp_path):
    path = tmp_path / "tiny-train_processed_20251130.npz"

    with pytest.raises(
        DataError, match=r"_processed_20251130\.npz does not exist: run featurize first"
    ):
        load_matrix(path)
