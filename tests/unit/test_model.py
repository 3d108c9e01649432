"""A loaded model (tabml.model.Model): the pipeline from the model file plus its card, every
prediction going through the one validation path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tabml.artifact import read_model
from tabml.errors import SchemaError
from tabml.layout import Layout
from tabml.schema import FLOAT_LIMIT, validate
from tests.unit.conftest import make_frame, make_project


def test_model_predicts_class_names_from_raw_rows(tiny_model, frame):
    labels = tiny_model.predict(frame)
    proba = tiny_model.predict_proba(frame)

    assert tiny_model.model_id == "lr_tiny_v1"
    assert tiny_model.classes == ("no", "yes")
    assert tiny_model.card.positive_class == "yes"
    assert set(labels) == {"no", "yes"}
    assert proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(np.array(labels) == frame["y"].to_numpy()) > 0.9
    assert tiny_model.predict(frame, threshold=1.01) == ["no"] * len(frame)


def test_model_unseen_category_strict_by_default(tiny_model, frame):
    rows = frame.drop(columns=["y"]).head(3).assign(color="purple")

    with pytest.raises(SchemaError, match="purple"):
        tiny_model.predict(rows)
    assert len(tiny_model.predict(rows, strict_categories=False)) == 3


def test_model_exposes_its_card(tiny_model):
    card = tiny_model.card

    assert tiny_model.schema == card.columns
    assert [c.name for c in tiny_model.schema] == ["income", "age", "color"]
    assert tiny_model.classes == card.classes
    assert tiny_model.sep == ","
    assert [name for name, _ in tiny_model.pipeline.steps] == ["preprocess", "model"]
    assert tiny_model.estimator is tiny_model.pipeline.steps[-1][1]
    assert type(tiny_model.estimator).__name__ == "LogisticRegression"


def test_records_frames_and_batches_predict_alike(tiny_model, frame):
    inputs = frame.drop(columns="y").head(6)
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in inputs.to_dict("records")
    ]
    batch = validate(records, tiny_model.schema)

    from_frame = tiny_model.predict_proba(inputs)
    np.testing.assert_array_equal(tiny_model.predict_proba(records), from_frame)
    np.testing.assert_array_equal(tiny_model.predict_proba(batch), from_frame)
    assert tiny_model.predict(batch) == tiny_model.predict(inputs)


def test_numbers_as_text_predict_like_numbers(tiny_model, frame):
    inputs = frame.drop(columns="y").head(4)
    as_text = inputs.assign(
        income=[("" if pd.isna(v) else f" {v} ") for v in inputs["income"]],
        age=inputs["age"].astype(str),
    )

    np.testing.assert_array_equal(
        tiny_model.predict_proba(as_text), tiny_model.predict_proba(inputs)
    )


def test_features_are_the_transformer_output(tiny_model, frame):
    batch = tiny_model.validate(frame)

    features = tiny_model.features(batch)

    assert features.shape == (len(frame), len(tiny_model.card.feature_names))
    np.testing.assert_array_equal(
        features, tiny_model.pipeline[:-1].transform(batch.frame(tiny_model.schema))
    )


def test_predict_threshold_is_inclusive(tiny_model, frame):
    proba = tiny_model.predict_proba(frame.head(1))[0, 1]

    assert tiny_model.predict(frame.head(1), threshold=proba) == ["yes"]
    assert tiny_model.predict(frame.head(1), threshold=np.nextafter(proba, 2.0)) == ["no"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("income", "lots", "'lots' is not a number"),
        ("income", 1e39, "is out of range"),
        ("age", True, "True is not a number"),
        ("income", "inf", "'inf' is not a finite number"),
        ("color", "purple", "unseen category 'purple'"),
    ],
)
def test_model_refuses_bad_values_naming_column_and_row(tiny_model, frame, column, value, reason):
    records = [
        {"income": 30.0, "age": 40, "color": "red"},
        {"income": 30.0, "age": 40, "color": "red", column: value},
    ]

    with pytest.raises(SchemaError) as info:
        tiny_model.predict(records)

    assert str(info.value).startswith(f"column {column!r}, row 1: ")
    assert reason in str(info.value)


def test_model_missing_column(tiny_model, frame):
    with pytest.raises(SchemaError, match="missing column 'age'"):
        tiny_model.predict(frame.drop(columns="age"))


@pytest.fixture(scope="module")
def narrow_model(tmp_path_factory):
    """lr on data whose ``ratio`` column varies by about 1e-4: scaling multiplies by ~1e4."""
    frame = make_frame(40, seed=3)
    rng = np.random.default_rng(0)
    frame["ratio"] = 0.001 + rng.normal(0, 1e-4, len(frame))
    root = make_project(tmp_path_factory.mktemp("narrow"), frame)
    return read_model(Layout(root), "lr", "tiny", 1)


def test_number_whose_scaled_value_overflows_float32_is_refused(narrow_model):
    value = 1e35  # within FLOAT_LIMIT, but ~1e39 once scaled
    records = [
        {"income": 30.0, "age": 40, "color": "red", "ratio": 0.001},
        {"income": 30.0, "age": 40, "color": "red", "ratio": value},
    ]

    with pytest.raises(SchemaError) as info:
        narrow_model.predict_proba(records)

    assert str(info.value) == (
        f"column 'ratio', row 1: {value!r} is out of range for this model "
        f"(its scaled value exceeds {FLOAT_LIMIT:.3g})"
    )
    assert len(narrow_model.predict_proba(records[:1])) == 1


def test_scaled_overflow_names_the_csv_line(narrow_model):
    frame = pd.DataFrame({"income": [30.0], "age": [40], "color": ["red"], "ratio": [-1e35]})
    batch = validate(frame, narrow_model.schema, first_line=2)

    with pytest.raises(SchemaError, match=r"^column 'ratio', row 0 \(CSV line 2\): -1e\+35 "):
        narrow_model.predict_proba(batch)


@pytest.fixture(scope="module")
def sparse_narrow_model(tmp_path_factory):
    """``narrow_model`` plus a 15-level ``code`` column: its transformer outputs CSR."""
    frame = make_frame(40, seed=3)
    rng = np.random.default_rng(0)
    frame["ratio"] = 0.001 + rng.normal(0, 1e-4, len(frame))
    frame["code"] = [f"k{i % 15}" for i in range(len(frame))]
    root = make_project(tmp_path_factory.mktemp("sparse-narrow"), frame)
    return read_model(Layout(root), "lr", "tiny", 1)


def test_sparse_features_are_checked_like_dense_ones(sparse_narrow_model):
    model = sparse_narrow_model
    good = {"income": 30.0, "age": 40, "color": "red", "ratio": 0.001, "code": "k3"}
    batch = model.validate([good, good | {"ratio": -1e35}])

    with pytest.raises(SchemaError) as info:
        model.predict_proba(batch)

    assert sp.issparse(model.pipeline[:-1].transform(batch.frame(model.schema)))
    assert str(info.value) == (
        "column 'ratio', row 1: -1e+35 is out of range for this model "
        f"(its scaled value exceeds {FLOAT_LIMIT:.3g})"
    )
    features = model.features(model.validate([good, good | {"code": "k4"}]))
    assert sp.issparse(features) and features.shape[1] == len(model.card.feature_names)
    assert model.predict_proba([good]).shape == (1, 2)
