"""The framework-free core: the numpy fast path, JSON validation rules, settings, imports."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from serving.errors import SettingsError
from serving.fastpath import compile_model, try_compile, verify
from serving.registry import MODEL_ID_RE, csv_shape, is_model_id
from serving.scoring import (
    Predictor,
    _number,
    _text,
    batch_from_frame,
    batch_from_records,
    columns_frame,
    single_threaded,
)
from serving.settings import Settings
from stages.errors import SchemaError
from tests.serving.conftest import ALGOS, DATASET, REPO, json_rows

MODEL_IDS = [f"{a}_{DATASET}_v1" for a in ALGOS]


def load(project: Path, model_id: str):
    return joblib.load(project / "models" / f"{model_id}.pkl")


def frame_of(model):
    return lambda num, cat, n: columns_frame(model.schema, num, cat, n)


# --- fast path -----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_fast_path_is_exactly_the_sklearn_pipeline(project, test_rows, model_id):
    fast = Predictor(load(project, model_id))
    slow = Predictor(load(project, model_id), fast_path=False)
    assert fast.compiled is not None and slow.compiled is None
    batch = batch_from_frame(test_rows, fast.model.schema)
    np.testing.assert_array_equal(fast.predict_proba(batch), slow.predict_proba(batch))
    for i in range(5):  # one row at a time takes other code paths in some libraries
        one = batch_from_records(json_rows(test_rows.iloc[[i]]), fast.model.schema)
        np.testing.assert_array_equal(fast.predict_proba(one), slow.predict_proba(one))


def test_fast_path_features_equal_the_fitted_transformer(project, test_rows):
    model = load(project, f"lr_{DATASET}_v1")
    compiled = compile_model(model)
    batch = batch_from_frame(test_rows, model.schema)
    features = compiled.features(batch.numeric, batch.categorical, batch.n_rows)
    expected = model.pipeline.steps[0][1].transform(
        columns_frame(model.schema, batch.numeric, batch.categorical, batch.n_rows)
    )
    np.testing.assert_array_equal(features, expected)
    assert features.shape[1] == len(model.feature_names)


def test_unknown_pipeline_shapes_fall_back_to_sklearn(project):
    model = copy.deepcopy(load(project, f"lr_{DATASET}_v1"))
    encoder = model.pipeline.steps[0][1].named_transformers_["cat"].named_steps["onehot"]
    encoder.min_frequency = 5  # infrequent-category grouping: not replicated
    assert try_compile(model, frame_of(model)) is None
    assert Predictor(model).compiled is None


def test_a_fast_path_that_disagrees_is_not_used(project):
    model = load(project, f"rf_{DATASET}_v1")
    single_threaded(model)  # as Predictor does: the 2-thread forest is not deterministic
    compiled = compile_model(model)
    assert verify(model, compiled, frame_of(model))
    wrong = dataclasses.replace(compiled, proba=lambda X: compiled.proba(X) + 1e-12)
    assert not verify(model, wrong, frame_of(model))


def test_estimators_are_single_threaded_after_loading(project):
    for model_id in ("rf_credit_v1", "xgb_credit_v1"):
        predictor = Predictor(load(project, model_id))
        assert predictor.model.pipeline.steps[-1][1].get_params()["n_jobs"] == 1


# --- JSON validation rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        (" 12 ", 12.0),
        ("1e3", 1000.0),
        ("-.5", -0.5),
        (None, math.nan),
        ("", math.nan),
        ("  ", math.nan),
        (float("nan"), math.nan),
    ],
)
def test_numbers(value, expected):
    got = _number(value)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize("value", [True, "nan", "inf", "1_000", "0x10", "12abc", [1], {}, 10**400])
def test_not_numbers(value):
    with pytest.raises(ValueError):
        _number(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rent", "rent"),
        (" rent", " rent"),
        (1, "1"),
        (1.0, "1"),
        (1.5, "1.5"),
        (True, "True"),
        (None, None),
        ("", None),
        ("   ", None),
        (float("nan"), None),
    ],
)
def test_category_text_follows_as_text(value, expected):
    assert _text(value) == expected


def test_json_rows_validate_like_conform(project, test_rows):
    """The JSON path and the pipeline's conform agree on every test row."""
    model = load(project, f"lr_{DATASET}_v1")
    from_json = batch_from_records(json_rows(test_rows), model.schema)
    from_frame = batch_from_frame(test_rows, model.schema)
    assert from_json.categorical == from_frame.categorical
    for name, values in from_frame.numeric.items():
        np.testing.assert_array_equal(from_json.numeric[name], values)


def test_missing_key_error_names_column_and_row(project):
    schema = load(project, f"lr_{DATASET}_v1").schema
    with pytest.raises(SchemaError, match=r"column 'Seniority', row 0: missing"):
        batch_from_records([{}], schema)


# --- settings, ids, helpers -----------------------------------------------------------------------


def test_settings_from_env():
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {
            "SERVING_ROOT": "/srv/project",
            "SERVING_PARAMS": "other.yaml",
            "SERVING_MAX_ROWS": "50",
            "SERVING_MAX_UPLOAD_MB": "0.5",
            "SERVING_FAST_PATH": "0",
        }
    )
    assert settings.params_path == Path("/srv/project/other.yaml")
    assert (settings.max_rows, settings.max_upload_bytes, settings.fast_path) == (50, 524288, False)
    assert Settings(params_file=Path("/etc/p.yaml")).params_path == Path("/etc/p.yaml")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SERVING_MAX_ROWS": "many"}, "SERVING_MAX_ROWS"),
        ({"SERVING_MAX_ROWS": "0"}, "SERVING_MAX_ROWS"),
        ({"SERVING_MAX_UPLOAD_MB": "-1"}, "SERVING_MAX_UPLOAD_MB"),
        ({"SERVING_FAST_PATH": "maybe"}, "SERVING_FAST_PATH"),
    ],
)
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("xgb_credit_v1", True),
        ("rf_churn2_v12", True),
        ("rf_credit_v0", False),
        ("rf_credit_v1\n", False),
        ("../rf_credit_v1", False),
        ("rf-credit_v1", False),
        ("Rf_credit_v1", False),
        ("rf_credit", False),
        (None, False),
    ],
)
def test_model_id_pattern(text, ok):
    assert is_model_id(text) is ok
    assert MODEL_ID_RE.pattern.startswith("(?P<algo>")


def test_csv_shape_counts_quoted_newlines(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('a,b\n1,"two\nlines"\n3,4\n')
    assert csv_shape(path) == (2, 2)
    assert csv_shape(tmp_path / "absent.csv") is None


def test_batch_cli_and_core_do_not_import_the_web_framework():
    code = (
        "import sys, json, serving.predict, serving.scoring, serving.registry\n"
        "print(json.dumps(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'pandas', "
        "'sklearn') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []  # pandas and sklearn load only when predicting


def test_non_finite_metrics_become_null(tmp_path):
    from serving.registry import _read_json

    path = tmp_path / "m.json"
    path.write_text('{"roc_auc": NaN, "log_loss": Infinity, "f1": 0.5}')
    assert _read_json(path) == {"roc_auc": None, "log_loss": None, "f1": 0.5}
