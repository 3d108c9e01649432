"""The framework-free core of serving: the numpy fast path, the feature check, settings, ids."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from tabml.errors import SchemaError
from tabml.layout import parse_model_id
from tabml.schema import validate
from tabml.serving.errors import SettingsError
from tabml.serving.fastpath import compile_model, try_compile, verify
from tabml.serving.registry import raw_shape, read_json
from tabml.serving.scoring import Predictor
from tabml.serving.settings import MB, Settings
from tests.serving.conftest import DATASET, MODEL_IDS, REPO, json_rows, model_file

# --- fast path -----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_fast_path_is_exactly_the_sklearn_pipeline(project, test_rows, model_id):
    fast = Predictor(model_file(project, model_id))
    slow = Predictor(model_file(project, model_id), fast_path=False)
    assert fast.compiled is not None and slow.compiled is None
    batch = validate(test_rows, fast.model.schema)
    np.testing.assert_array_equal(fast.predict_proba(batch), slow.predict_proba(batch))
    for i in range(5):  # one row at a time takes other code paths in some libraries
        one = validate(json_rows(test_rows.iloc[[i]]), fast.model.schema)
        np.testing.assert_array_equal(fast.predict_proba(one), slow.predict_proba(one))


def test_fast_path_features_equal_the_fitted_transformer(project, test_rows):
    model = model_file(project, f"lr_{DATASET}_v1")
    compiled = compile_model(model)
    batch = validate(test_rows, model.schema)
    features = compiled.features(batch)
    expected = model.pipeline.steps[0][1].transform(batch.frame(model.schema))
    np.testing.assert_array_equal(features, expected)
    assert features.shape[1] == len(model.card.feature_names)


def test_unknown_pipeline_shapes_fall_back_to_sklearn_with_a_warning(project, caplog):
    model = copy.deepcopy(model_file(project, f"lr_{DATASET}_v1"))
    encoder = model.pipeline.steps[0][1].named_transformers_["cat"].named_steps["onehot"]
    encoder.handle_unknown = "error"  # an unseen category raises: not replicated
    with caplog.at_level(logging.WARNING):
        assert try_compile(model) is None
        assert Predictor(model).compiled is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("sklearn pipeline" in r.getMessage() for r in warnings)
    assert f"lr_{DATASET}_v1" in warnings[0].getMessage()


def test_a_fast_path_that_disagrees_is_not_used(project):
    model = model_file(project, f"rf_{DATASET}_v1")
    compiled = compile_model(model)
    assert verify(model, compiled)
    wrong = dataclasses.replace(compiled, proba=lambda X: compiled.proba(X) + 1e-12)
    assert not verify(model, wrong)


def test_verify_compares_each_batch_size_with_the_pipeline_on_the_same_rows(project):
    """A matrix product over many rows may round differently from the same row alone (BLAS):
    that is the estimator's own behaviour, on both paths, and must not disable the fast path
    (it did for lr_churn_v1 when one row was compared with a slice of the 64-row result)."""
    model = copy.deepcopy(model_file(project, f"lr_{DATASET}_v1"))
    estimator, real = model.estimator, model.estimator.predict_proba
    estimator.predict_proba = lambda X: real(X) + (0.0 if len(X) == 1 else 2.0**-40)
    compiled = compile_model(model)  # the fast path calls the same (patched) estimator
    assert verify(model, compiled)
    assert try_compile(model) is not None


def test_estimators_are_single_threaded_once_served(project):
    for model_id in (f"rf_{DATASET}_v1", f"xgb_{DATASET}_v1"):
        algo, dataset, version = parse_model_id(model_id)
        from tabml.artifact import read_model
        from tabml.layout import Layout

        model = read_model(Layout(project), algo, dataset, version)
        assert model.estimator.get_params()["n_jobs"] == 2  # as trained
        predictor = Predictor(model)
        assert predictor.model.estimator.get_params()["n_jobs"] == 1


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_number_the_scaled_features_cannot_hold_is_refused_on_both_paths(
    project, test_rows, fast_path
):
    """Validation refuses numbers beyond float32; scaling can still push one past it, and
    then both paths refuse it alike (naming column and row) instead of a 500 or a NaN."""
    model = copy.deepcopy(model_file(project, f"rf_{DATASET}_v1"))
    scaler = model.pipeline.steps[0][1].named_transformers_["num"].named_steps["scale"]
    income = list(model.pipeline.steps[0][1].transformers_[0][2]).index("Income")
    scaler.scale_[income] = 1e-6  # a column with a tiny spread in training
    predictor = Predictor(model, fast_path=fast_path)
    assert (predictor.compiled is not None) is fast_path
    rows = json_rows(test_rows.head(3))
    rows[2]["Income"] = 1e35  # valid input, but 1e41 once scaled
    with pytest.raises(SchemaError) as info:
        predictor.predict_proba(validate(rows, model.schema))
    assert str(info.value).startswith("column 'Income', row 2: 1e+35 is out of range")
    rows[2]["Income"] = 1e30
    assert predictor.predict_proba(validate(rows, model.schema)).shape == (3, 2)


def test_json_rows_validate_like_csv_rows(project, test_rows):
    """The JSON records and the DataFrame of the same rows give the same validated batch."""
    model = model_file(project, f"lr_{DATASET}_v1")
    from_json = validate(json_rows(test_rows), model.schema)
    from_frame = validate(test_rows, model.schema)
    assert from_json.categorical == from_frame.categorical
    for name, values in from_frame.numeric.items():
        np.testing.assert_array_equal(from_json.numeric[name], values)


def test_missing_key_error_names_column_and_row(project):
    schema = model_file(project, f"lr_{DATASET}_v1").schema
    with pytest.raises(SchemaError, match=r"column 'Seniority', row 0: missing"):
        validate([{}], schema)


# --- settings, ids, helpers -----------------------------------------------------------------------


SETTINGS_KEYS = (
    "ROOT",
    "PARAMS",
    "MAX_ROWS",
    "MAX_UPLOAD_MB",
    "FAST_PATH",
    "RELOAD_TOKEN",
    "BODY_TIMEOUT",
    "MAX_INFLIGHT_MB",
)


def test_settings_from_env(monkeypatch):
    for key in SETTINGS_KEYS:
        monkeypatch.delenv(f"SERVING_{key}", raising=False)
    assert Settings.from_env() == Settings()
    monkeypatch.setenv("SERVING_ROOT", "/srv/project")
    monkeypatch.setenv("SERVING_PARAMS", "other.yaml")
    monkeypatch.setenv("SERVING_MAX_ROWS", "50")
    monkeypatch.setenv("SERVING_MAX_UPLOAD_MB", "0.5")
    monkeypatch.setenv("SERVING_FAST_PATH", "0")
    settings = Settings.from_env()
    assert settings.params_path.as_posix() == "/srv/project/other.yaml"
    assert (settings.max_rows, settings.max_upload_bytes, settings.fast_path) == (50, 524288, False)
    monkeypatch.setenv("SERVING_MAX_ROWS", "")  # empty is unset
    assert Settings.from_env().max_rows == 10_000
    from pathlib import Path

    assert Settings(params_file=Path("/etc/p.yaml")).params_path == Path("/etc/p.yaml")


def test_hardening_settings_from_env(monkeypatch):
    for key in SETTINGS_KEYS:
        monkeypatch.delenv(f"SERVING_{key}", raising=False)
    default = Settings.from_env()
    assert default.reload_token is None  # POST /reload is disabled until a token is set
    assert default.body_timeout == 30.0
    assert default.max_inflight_bytes == 4 * default.max_upload_bytes
    monkeypatch.setenv("SERVING_MAX_UPLOAD_MB", "1")
    assert Settings.from_env().max_inflight_bytes == 4 * 1024 * 1024  # follows the upload limit
    monkeypatch.setenv("SERVING_RELOAD_TOKEN", TOKEN)
    monkeypatch.setenv("SERVING_BODY_TIMEOUT", "2.5")
    monkeypatch.setenv("SERVING_MAX_INFLIGHT_MB", "3")
    settings = Settings.from_env()
    assert settings.reload_token.get_secret_value() == TOKEN
    assert (settings.body_timeout, settings.max_inflight_bytes) == (2.5, 3 * 1024 * 1024)
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)


TOKEN = "s3cret-reload-token-0123456789"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SERVING_MAX_ROWS", "many", "expected an integer"),
        ("SERVING_MAX_ROWS", "0", "must be positive"),
        ("SERVING_MAX_ROWS", "2.5", "expected an integer"),
        ("SERVING_MAX_UPLOAD_MB", "-1", "must be positive"),
        ("SERVING_FAST_PATH", "maybe", "expected 1 or 0"),
        ("SERVING_BODY_TIMEOUT", "0", "must be positive"),
        ("SERVING_BODY_TIMEOUT", "soon", "expected a number"),
        ("SERVING_MAX_INFLIGHT_MB", "-5", "must be positive"),
        ("SERVING_MAX_INFLIGHT_MB", "10", "must be at least SERVING_MAX_UPLOAD_MB (20)"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    assert str(info.value) == f"{name}={value!r}: {words}"


@pytest.mark.parametrize("value", ["short-token", "   spaced-12345   "])
def test_a_weak_reload_token_is_refused_without_echoing_it(monkeypatch, value):
    monkeypatch.setenv("SERVING_RELOAD_TOKEN", value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    message = str(info.value)
    assert message.startswith("SERVING_RELOAD_TOKEN: must be at least 16 characters")
    assert "secrets.token_urlsafe" in message  # how to make a good one
    assert value.strip() not in message and "\n" not in message


def test_bad_settings_stop_the_server_with_one_line():
    env = {"PATH": "/usr/bin:/bin", "SERVING_MAX_ROWS": "many"}
    proc = subprocess.run(
        [sys.executable, "-c", "import tabml.serving.app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == "error: SERVING_MAX_ROWS='many': expected an integer\n"


def test_body_guard_releases_its_budget_and_trims_after_large_bodies(tmp_path, monkeypatch):
    """Every way a body ends (read, too large, too slow) gives its bytes back to the budget;
    a large one returns freed memory to the system (glibc malloc_trim) once it is done."""
    import asyncio
    import platform

    import httpx

    import tabml.serving.app as serving_app

    if platform.libc_ver()[0] == "glibc":
        assert serving_app.malloc_trim() is not None
    trims: list[int] = []
    monkeypatch.setattr(serving_app, "malloc_trim", lambda: lambda: trims.append(1))
    app = serving_app.create_app(Settings(root=tmp_path, max_upload_mb=4, body_timeout=0.3))

    async def stalled():
        yield b'{"rows": ['
        await asyncio.sleep(30)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            big = b'{"rows": [{}], "dataset": "credit", "pad": "' + b"x" * (2 * MB) + b'"}'
            json_type = {"Content-Type": "application/json"}
            statuses = [(await http.post("/predict", content=big, headers=json_type)).status_code]
            await asyncio.sleep(0.2)  # the trim runs in a thread after the response
            assert trims == [1]
            statuses.append((await http.post("/predict", content=b"x" * (5 * MB))).status_code)
            statuses.append((await http.post("/predict", content=stalled())).status_code)
            statuses.append((await http.post("/predict", json={"rows": [{}]})).status_code)
        guard = app.middleware_stack
        while not isinstance(guard, serving_app.BodyGuard):
            guard = guard.app
        assert guard.inflight == 0
        return statuses

    assert asyncio.run(scenario()) == [503, 413, 408, 422]  # 503: no model loaded here
    assert trims == [1]  # small and refused bodies do not trim


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
    assert (parse_model_id(text) is not None) is ok


def test_raw_shape_counts_quoted_newlines(tmp_path):
    spec = {"sep": ","}  # a dataset's params (CsvOptions.of reads a dump too)
    path = tmp_path / "x.csv"
    path.write_text('a,b\n1,"two\nlines"\n3,4\n')
    assert raw_shape(path, spec) == (2, 2)
    assert raw_shape(tmp_path / "absent.csv", spec) is None


def test_batch_cli_and_core_do_not_import_the_web_framework():
    code = (
        "import sys, json, tabml.serving.predict, tabml.serving.scoring, tabml.serving.registry\n"
        "print(json.dumps(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'pandas', "
        "'sklearn') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []  # pandas and sklearn load only when predicting


def test_non_finite_metrics_become_null(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"roc_auc": NaN, "log_loss": Infinity, "f1": 0.5}')
    assert read_json(path) == {"roc_auc": None, "log_loss": None, "f1": 0.5}


def test_dataset_info_counts_raw_columns_of_a_semicolon_source(tmp_path):
    """ingest keeps a CSV source's bytes, separator included: /datasets reads the raw
    snapshot with the dataset's options."""
    from tabml.params import parse_params
    from tabml.serving.registry import dataset_info
    from tests.unit.conftest import SNAPSHOT, project_params

    raw = project_params("src.csv")
    raw["datasets"]["tiny"]["sep"] = ";"
    snapshot = tmp_path / "data" / "raw" / f"tiny_raw_{SNAPSHOT}.csv"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text("a;b;y\n1;2;yes\n3;4;no\n")

    (info,) = dataset_info(parse_params(raw), tmp_path)

    assert (info["raw_rows"], info["raw_columns"]) == (2, 3)


def test_target_metrics_read_a_float_coded_target_as_its_classes():
    """A model trained with positive_class "1.0" on a 0.0/1.0 target: an upload writing the
    target 0/1 (or 0.0/1.0) holds its classes, not unknown ones."""
    from types import SimpleNamespace

    import pandas as pd

    from tabml.serving.scoring import target_metrics

    card = SimpleNamespace(target="y", classes=("0", "1.0"), positive_class="1.0")
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    for written in ([0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0], ["0", "1", "0", "1.0"]):
        frame = pd.DataFrame({"y": written})

        result = target_metrics(frame, SimpleNamespace(card=card), proba, 0.5)

        assert result["n_labelled"] == 4
        assert result["metrics"]["roc_auc"] == 1.0
        assert result["metrics"]["accuracy"] == 1.0
