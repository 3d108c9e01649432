"""Helpers for tests that run real dvc commands in a throw-away copy of this repository."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Stage commands say `python -m stages...`: make that the project's interpreter.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("VIRTUAL_ENV", None)
    # Never reach a real cloud account from a test: remote tests pass their own .env.
    for key in [k for k in env if k.startswith(("AWS_", "DVC_S3_"))]:
        del env[key]
    # pytest-cov would measure every stage process of the copies under their temp paths.
    for key in [k for k in env if k.startswith("COV_CORE_")]:
        del env[key]
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env[key] = "pipeline-test"
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env[key] = "pipeline-test@example.invalid"
    return env


def run(
    cmd: list[str], cwd: Path, *, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run a command in the copy; on failure show its output in the assertion message."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(VENV_BIN / "dvc"), *args], cwd, check=check)


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run(["git", *args], cwd, check=check)


def ran_stages(output: str) -> set[str]:
    """Stage names from dvc's "Running stage 'x':" lines."""
    prefix = "Running stage '"
    return {
        line[len(prefix) : line.index("'", len(prefix))]
        for line in output.splitlines()
        if line.startswith(prefix)
    }


def copy_repo(dest: Path, edit_params: Callable[[dict], None] | None = None) -> Path:
    """Copy the files git tracks or would track (working tree state) into a new git repo."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if edit_params is not None:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        edit_params(params)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("init", "-q", "-b", "main", cwd=dest)
    git("config", "user.name", "pipeline-test", cwd=dest)
    git("config", "user.email", "pipeline-test@example.invalid", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-qm", "copy", cwd=dest)
    return dest


def small_params(params: dict) -> None:
    """Fewer trees and repeats: the same pipeline, a few times faster."""
    params["train"]["rf"]["n_estimators"] = 20
    params["train"]["xgb"]["n_estimators"] = 40
    params["evaluate"]["importance_repeats"] = 1


def credit_only(params: dict) -> None:
    """One dataset and small models: the same pipeline, quicker to run and to ship."""
    small_params(params)
    params["datasets"] = {"credit": params["datasets"]["credit"]}


def built_project(dest: Path, *targets: str) -> Path:
    """A committed copy of the repository (credit only, small models) after a real
    ``dvc repro`` of ``targets`` (all stages when none): dvc.lock vouches for its outputs."""
    copy_repo(dest, credit_only)
    (dest / "dvc.lock").unlink(missing_ok=True)  # the committed lock is the real params'
    dvc("repro", *targets, cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-qm", "repro", cwd=dest)
    return dest


STANDALONE = """
import importlib.util, json, sys
sys.path.append(SITE_PACKAGES)  # -S: no site, so no .pth file puts this repository on the path
def ours(name):
    spec = importlib.util.find_spec(name)
    places = [spec.origin or "", *(spec.submodule_search_locations or [])] if spec else []
    return any(
        p.startswith(REPOSITORY) and not p.startswith(SITE_PACKAGES) for p in map(str, places)
    )
found = [m for m in ("tabml", "stages", "tests", "tools") if ours(m)]
assert not found, f"repository modules importable: {found}"
import joblib, pandas as pd
card = json.load(open(CARD))
pipeline = joblib.load(MODEL)
rows = pd.read_csv(ROWS)[[c["name"] for c in card["columns"]]]
threaded = pipeline.predict_proba(rows)
estimator = pipeline.steps[-1][1]
if "n_jobs" in estimator.get_params():
    estimator.set_params(n_jobs=1)  # a forest sums its trees in thread order: one ulp of noise
print(json.dumps({
    "type": f"{type(pipeline).__module__}.{type(pipeline).__name__}",
    "classes": card["classes"],
    "threaded": threaded.tolist(),
    "proba": pipeline.predict_proba(rows).tolist(),
    "ours_loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("tabml", "stages")),
}))
"""


def standalone_predictions(model: Path, card: Path, rows: Path, cwd: Path) -> dict:
    """Load a model file as a user without this repository would: ``python -I -S`` in an
    empty directory, site-packages on the path but no .pth file (so not the editable
    install of tabml), ``joblib.load``, and ``predict_proba`` on the columns the card lists."""
    import json
    import sysconfig

    code = STANDALONE
    for name, value in (
        ("SITE_PACKAGES", sysconfig.get_paths()["purelib"]),
        ("CARD", str(card)),
        ("MODEL", str(model)),
        ("ROWS", str(rows)),
        ("REPOSITORY", str(REPO)),
    ):
        code = code.replace(name, repr(value))
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate a server the tests started; kill it if it does not stop in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_dvc(*args: str, cwd: Path) -> subprocess.Popen:
    """Start a dvc command in its own process group, output discarded: a fault test can
    SIGKILL the whole group (dvc and the stage it runs) with ``os.killpg(proc.pid, ...)``."""
    return subprocess.Popen(
        [str(VENV_BIN / "dvc"), *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def error_lines(text: str) -> list[str]:
    """The ``error:`` lines of a command's output (a failure must be exactly one)."""
    return [line for line in text.splitlines() if line.startswith("error:")]


def capture(
    cmd: list[str],
    cwd: Path = REPO,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` to its end and keep its output as text whatever its exit code: the test
    asserts on the code. ``env=None`` passes this process's environment on unchanged."""
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def batch_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """The batch CLI, ``python -m tabml.serving.predict args``, in a real process (a new
    interpreter: its import errors, exit code and stderr are the user's)."""
    return capture([sys.executable, "-m", "tabml.serving.predict", *args], **kwargs)


class HttpServer:
    """An HTTP server on a free 127.0.0.1 port, answering from a thread until ``close()``
    (or the end of a ``with`` block); ``handler`` is a request handler class (or a partial)."""

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CsvHandler(BaseHTTPRequestHandler):
    """A request handler for an ``HttpServer`` of a test: it logs nothing, and ``send_csv``
    answers 200 with a whole CSV file."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_csv(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def without_coverage() -> dict[str, str]:
    """This environment minus pytest-cov's subprocess hook: for a child whose own imports or
    resource limits are under test (coverage would import more, and write its data file)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE_")}
