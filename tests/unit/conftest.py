"""Shared tiny fixtures for the unit tests: hand-made frames, params, a local HTTP server,
and a tiny project trained once by the real stage mains (ingest, split, featurize, train)."""

from __future__ import annotations

import copy
import functools
import os
import shutil
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.params import DatasetParams, FeaturizeParams
from tests.helpers import HttpServer

if TYPE_CHECKING:
    from tabml.model import Model

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "params.yaml"
SNAPSHOT = "20251130"


def make_frame(n: int = 40, *, positives: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A small mixed-type frame whose target ``y`` ("yes"/"no") depends on income and color.

    Columns: income (float, two NaN), age (int), color (categorical, one NaN), y.
    """
    rng = np.random.default_rng(seed)
    positives = n // 2 if positives is None else positives
    y = np.array(["yes"] * positives + ["no"] * (n - positives), dtype=object)
    rng.shuffle(y)
    pos = y == "yes"
    income = np.round(np.where(pos, 30.0, 60.0) + rng.normal(0.0, 5.0, n), 1)
    age = rng.integers(20, 70, n)
    color = np.where(pos, "red", "blue").astype(object)
    color[1] = "green"
    color[2] = "green"
    frame = pd.DataFrame({"income": income, "age": age, "color": color, "y": y})
    frame.loc[[3, 7], "income"] = np.nan
    frame.loc[5, "color"] = np.nan
    return frame


def revalidated(model: Any, **changes: Any) -> Any:
    """A copy of a frozen params (or any pydantic) model with ``changes``, validated again
    (``model_copy(update=...)`` would skip validation)."""
    return type(model).model_validate({**model.model_dump(), **changes})


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def spec() -> DatasetParams:
    return DatasetParams(source="src.csv", target="y", positive_class="yes", snapshot=SNAPSHOT)


@pytest.fixture
def featurize_params() -> FeaturizeParams:
    return FeaturizeParams()


@pytest.fixture
def raw_params() -> dict[str, Any]:
    """The repository's params.yaml as a plain mapping, safe to modify."""
    return copy.deepcopy(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8")))


def project_params(source: str = "src.csv", *, target: str = "y", algos=("lr",)) -> dict:
    """A params mapping for a throwaway project root with one dataset named ``tiny``."""
    raw = copy.deepcopy(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8")))
    raw["datasets"] = {
        "tiny": {
            "source": source,
            "target": target,
            "positive_class": "yes",
            "snapshot": SNAPSHOT,
            "drop_columns": [],
        }
    }
    raw["train"]["algos"] = list(algos)
    raw["train"]["model_version"] = 1
    raw["train"]["rf"].update(n_estimators=20, n_jobs=2)
    raw["train"]["xgb"].update(n_estimators=30, early_stopping_rounds=None)
    raw["evaluate"].update(metric="roc_auc", importance_repeats=2, calibration_bins=5)
    return raw


def write_params(path: Path, raw: Any) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path, frame: pd.DataFrame) -> Path:
    """A project root holding params.yaml and the source CSV ``src.csv`` of dataset ``tiny``."""
    write_params(tmp_path / "params.yaml", project_params())
    frame.to_csv(tmp_path / "src.csv", index=False)
    return tmp_path


def cli(root: Path, **extra: str) -> list[str]:
    """Command-line arguments shared by every stage for a project at ``root``."""
    argv = ["--params", str(root / "params.yaml"), "--root", str(root)]
    for key, value in extra.items():
        argv += [f"--{key}", value]
    return argv


def run_stages(root: Path, algos: tuple[str, ...] = ("lr",), dataset: str = "tiny") -> Path:
    """Run the real ingest, split, featurize and train mains for a project at ``root``."""
    from stages import featurize, ingest, split, train

    argv = cli(root, dataset=dataset)
    for stage in (ingest, split, featurize):
        assert stage.main(argv) == 0, stage.__name__
    cwd = Path.cwd()
    os.chdir(root)  # dvclive (xgb) looks for a DVC repo from the cwd: never this repository
    try:
        for algo in algos:
            assert train.main([*argv, "--algo", algo]) == 0, algo
    finally:
        os.chdir(cwd)
    return root


def make_project(root: Path, frame: pd.DataFrame, algos: tuple[str, ...] = ("lr",)) -> Path:
    """A project at ``root`` whose dataset ``tiny`` is ``frame``, trained with ``algos``."""
    root.mkdir(parents=True, exist_ok=True)
    write_params(root / "params.yaml", project_params(algos=algos))
    frame.to_csv(root / "src.csv", index=False)
    return run_stages(root, algos)


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make_frame()`` ingested, split, featurized and fitted with lr and rf by the stage
    mains. Shared by the whole session: never modify it (copy it with ``trained``)."""
    return make_project(tmp_path_factory.mktemp("trained"), make_frame(), ("lr", "rf"))


@pytest.fixture
def trained(trained_project: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_project`` that a test may change."""
    return Path(shutil.copytree(trained_project, tmp_path / "trained"))


@pytest.fixture
def tiny_model(trained_project: Path) -> Model:
    """The lr model of ``trained_project``, loaded as evaluate and serving load it."""
    from tabml.artifact import read_model
    from tabml.layout import Layout

    return read_model(Layout(trained_project), "lr", "tiny", 1)


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Serve a fresh directory over HTTP on 127.0.0.1; yield (directory, base URL)."""
    served = tmp_path / "served"
    served.mkdir()

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with HttpServer(functools.partial(QuietHandler, directory=str(served))) as server:
        yield served, f"http://127.0.0.1:{server.port}"


@pytest.fixture
def separable() -> Callable[[int, int], tuple[np.ndarray, np.ndarray]]:
    """Factory of a well separated binary problem: (X, y) with y depending on X[:, 0]."""

    def make(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, n)
        X = rng.normal(size=(n, 4))
        X[:, 0] += np.where(y == 1, 2.5, -2.5)
        return X, y

    return make
