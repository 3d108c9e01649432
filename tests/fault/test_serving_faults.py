"""The REST API under faults (issue 8 items 4 and 5): a real uvicorn over loopback.

- Slow clients: a body that stalls or dribbles gets a 408 after ``SERVING_BODY_TIMEOUT``
  while the server keeps answering others.
- Memory: bytes of request bodies in flight are bounded (``SERVING_MAX_INFLIGHT_MB``); beyond
  it a request is a 503 with Retry-After before its body is read.
- Reload during ``dvc repro``: a half-written model set is refused (409) and the old one
  keeps serving; the reload token never reaches a log.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import dvc
from tests.serving.conftest import (  # noqa: F401  (fixtures)
    DATASET,
    MODEL_IDS,
    json_rows,
    project,
    test_rows,
    uvicorn_server,
)

TOKEN = "fault-test-reload-token-0123456789"
BODY_TIMEOUT = 1.0
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """1 MB uploads, 2 MB of bodies in flight, 1 s to send a body."""
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    with uvicorn_server(
        project,
        log,
        SERVING_MAX_UPLOAD_MB="1",
        SERVING_MAX_INFLIGHT_MB="2",
        SERVING_BODY_TIMEOUT=str(BODY_TIMEOUT),
    ) as (url, _):
        yield url
    assert "Traceback" not in log.read_text()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def start_post(url: str, length: int | None, first: bytes = b"") -> socket.socket:
    """A POST /predict whose headers announce ``length`` body bytes (chunked when None), of
    which only ``first`` is sent: the rest is up to the test."""
    sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=15)
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    head = "\r\n".join(
        ("POST /predict HTTP/1.1", "Host: test", "Content-Type: application/json", framing, "", "")
    )
    sock.sendall(head.encode() + first)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_stalled_body_is_a_408_and_other_clients_are_served(server, test_rows):  # noqa: F811
    sock = start_post(server, 1000, b'{"rows": [')
    started = time.monotonic()
    with sock, httpx.Client(base_url=server, timeout=10) as http:
        health = http.get("/health")  # while the stalled request waits
        assert health.status_code == 200 and health.json()["status"] == "ok"
        rows = json_rows(test_rows.head(2))
        assert http.post("/predict", json={"rows": rows, "dataset": DATASET}).status_code == 200
        status, headers, body = read_response(sock)
        waited = time.monotonic() - started
        assert status == 408
        assert BODY_TIMEOUT * 0.9 <= waited < BODY_TIMEOUT + 3
        detail = json.loads(body)["detail"]
        assert "SERVING_BODY_TIMEOUT" in detail and "1 s" in detail
        assert headers["connection"] == "close" and closed_by_server(sock)
        assert http.get("/health").status_code == 200


def test_a_dribbling_body_is_a_408_too(server):
    """One byte at a time resets no per-read timer: the whole body has one deadline."""
    sock = start_post(server, 1000)
    started = time.monotonic()
    with sock:
        status = None
        for _ in range(int(BODY_TIMEOUT * 20) + 40):  # 0.05 s apart: far past the deadline
            try:
                sock.sendall(b" ")
            except OSError:  # the server answered and closed
                break
            time.sleep(0.05)
        sock.settimeout(10)
        status, _, body = read_response(sock)
        assert status == 408, body
        assert time.monotonic() - started < BODY_TIMEOUT + 3


def test_bodies_in_flight_are_bounded_with_a_503_and_retry_after(server, test_rows):  # noqa: F811
    """Two announced 1 MB bodies fill the 2 MB budget: a third request is refused before its
    body is read (Content-Length) or as soon as it passes the budget (chunked)."""
    rows = json_rows(test_rows.head(2))
    stalled = [start_post(server, MB, b'{"rows": [') for _ in range(2)]
    try:
        time.sleep(0.2)  # both are being read
        with httpx.Client(base_url=server, timeout=10) as http:
            response = http.post("/predict", json={"rows": rows, "dataset": DATASET})
            assert response.status_code == 503
            assert response.headers["Retry-After"].isdigit()
            detail = response.json()["detail"]
            assert "SERVING_MAX_INFLIGHT_MB" in detail and "retry" in detail
            chunked = start_post(server, None, b"10\r\n" + b" " * 16 + b"\r\n")
            with chunked:
                status, headers, _ = read_response(chunked)
                assert status == 503 and "retry-after" in headers
            assert http.get("/health").status_code == 200  # no body: never refused
            for sock in stalled:
                assert read_response(sock)[0] == 408  # ... and their budget is released
            response = http.post("/predict", json={"rows": rows, "dataset": DATASET})
            assert response.status_code == 200, response.text
    finally:
        for sock in stalled:
            sock.close()


@pytest.fixture
def served_copy(project: Path, tmp_path: Path) -> Path:  # noqa: F811
    return Path(shutil.copytree(project, tmp_path / "project"))


def test_reload_during_dvc_repro_never_drops_the_served_models(
    served_copy: Path,
    test_rows,  # noqa: F811
    tmp_path: Path,
):
    """The issue's scenario: `dvc repro` deletes a stage's outputs before running it (here
    evaluate's: the leaderboard goes first, for the whole run of the stage). Every reload
    meanwhile either swaps in a complete set (200) or is refused (409), and the
    dataset's champion answers throughout. The token never reaches the server log."""
    log = tmp_path / "uvicorn.log"
    rows = json_rows(test_rows.head(2))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        uvicorn_server(served_copy, log, SERVING_RELOAD_TOKEN=TOKEN) as (url, _),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        assert http.post("/reload").status_code == 401
        # A token in the URL is no token (and the access log must not keep it either).
        assert http.post("/reload", params={"token": TOKEN}).status_code == 401
        done: list[object] = []
        repro = threading.Thread(
            target=lambda: done.append(
                dvc("repro", "--force", "--single-item", "evaluate", cwd=served_copy)
            )
        )
        repro.start()
        statuses = []
        try:
            while not done and repro.is_alive():
                response = http.post("/reload", headers=auth)
                statuses.append(response.status_code)
                body = response.json()
                if response.status_code == 200:
                    assert body["model_ids"] == MODEL_IDS and body["problems"] == []
                else:
                    assert response.status_code == 409, response.text
                    assert body["problems"] and "still serving the previous 3" in body["detail"]
                predicted = http.post("/predict", json={"rows": rows, "dataset": DATASET})
                assert predicted.status_code == 200, predicted.text
                assert http.get("/health").json() == {"status": "ok", "models_loaded": 3}
                time.sleep(0.2)  # leave the cores to dvc
        finally:
            repro.join()
        assert done, "dvc repro failed"
        assert 409 in statuses  # the run was caught half-way at least once
        final = http.post("/reload", headers=auth)
        assert final.status_code == 200 and final.json()["problems"] == []
    text = log.read_text()
    assert TOKEN not in text and "Traceback" not in text
    assert "reload refused" in text  # the operator sees why in the log, too
