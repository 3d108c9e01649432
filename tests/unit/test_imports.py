"""Each stage is its own process, so import time is run time: check what each one loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.stage_deps import REPO
from tools import importtime

# What `make importtime` reports as heavy, and the frameworks no stage should ever load.
HEAVY = (*importtime.HEAVY, "dvc", "fastapi")
# Every stage module (stages/*.py), so a new stage is checked without being listed here.
STAGES = tuple(sorted(p.stem for p in (REPO / "stages").glob("*.py") if p.stem != "__init__"))


def loaded_after(code: str, *args: str) -> set[str]:
    """Heavy top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    report = "import sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    return set(json.loads(out.splitlines()[-1])) & set(HEAVY)


@pytest.mark.parametrize("stage", STAGES)
def test_importing_a_stage_does_no_work_and_loads_nothing_heavy(stage: str) -> None:
    assert loaded_after(f"import stages.{stage}") == set()


@pytest.mark.parametrize("stage", STAGES)
def test_stage_help_loads_nothing_heavy(stage: str) -> None:
    code = f"""
import stages.{stage} as stage
try:
    stage.main(["--help"])
except SystemExit:
    pass
"""
    assert loaded_after(code) == set()


def test_help_names_the_module_to_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stages.train", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert proc.stdout.startswith("usage: python -m stages.train ")


def test_split_core_never_loads_xgboost_or_matplotlib() -> None:
    code = """
import pandas as pd
from tabml.params import DatasetParams, SplitParams
from stages.split import split_data
frame = pd.DataFrame({"x": range(40), "y": ["a", "b"] * 20})
spec = DatasetParams(source="s", target="y", positive_class="a", snapshot="20250101")
split_data(frame, spec, SplitParams())
"""
    loaded = loaded_after(code)
    assert "sklearn" in loaded  # sanity: the probe sees what the core imported
    assert not loaded & {"xgboost", "matplotlib", "dvclive", "dvc", "jinja2", "fastapi"}


def test_rf_training_never_loads_xgboost_or_dvclive() -> None:
    code = """
import numpy as np
from tabml.params import RFParams
from stages.train import fit_estimator
X = np.arange(80, dtype=float).reshape(40, 2); y = np.array([0, 1] * 20)
fit_estimator("rf", RFParams(n_estimators=3), X, y)
"""
    assert not loaded_after(code) & {"xgboost", "dvclive", "matplotlib", "dvc", "jinja2"}


def test_the_batch_cli_help_loads_no_web_framework_and_no_model_library() -> None:
    code = """
from tabml.serving import predict
try:
    predict.main(["--help"])
except SystemExit:
    pass
"""
    assert not loaded_after(code) & {"fastapi", "pandas", "sklearn", "xgboost", "joblib"}
