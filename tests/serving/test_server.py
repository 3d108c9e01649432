"""The real thing: uvicorn in its own process, called over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import DATASET, json_rows, uvicorn_server


@pytest.fixture(scope="module")
def server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    with uvicorn_server(project, log, SERVING_MAX_UPLOAD_MB="0.01") as (url, _):  # ~10 KB
        yield url
    assert "Traceback" not in log.read_text()


def test_real_server_answers_over_http(server, test_rows):
    with httpx.Client(base_url=server, timeout=30) as http:
        assert http.get("/health").json()["models_loaded"] == 3
        rows = json_rows(test_rows.head(3))
        body = http.post("/predict", json={"rows": rows, "dataset": DATASET}).json()
        assert body["n_rows"] == 3 and set(body["classes"]) == {"good", "bad"}
        csv = test_rows.head(20).to_csv(index=False).encode()
        response = http.post(
            "/validate", files={"file": ("r.csv", csv, "text/csv")}, data={"dataset": DATASET}
        )
        assert response.status_code == 200 and response.json()["evaluation"]["n_labelled"] == 20
        assert http.get("/models/..%2F..%2Fetc%2Fpasswd/schema").status_code == 404
        assert http.get("/openapi.json").status_code == 200


def test_real_server_limits_uploads_by_header_and_while_streaming(server, test_rows):
    csv = test_rows.head(400).to_csv(index=False).encode()
    assert len(csv) > 20_000
    with httpx.Client(base_url=server, timeout=30) as http:
        response = http.post(
            "/validate", files={"file": ("r.csv", csv, "text/csv")}, data={"dataset": DATASET}
        )
        assert response.status_code == 413
        assert "SERVING_MAX_UPLOAD_MB" in response.json()["detail"]
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="dataset"\r\n\r\n{DATASET}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n\r\n'
        ).encode()
        + csv
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    with httpx.Client(base_url=server, timeout=30) as http:
        response = http.post(
            "/validate",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413
