"""The wrong interpreter: `.venv/bin/dvc repro` without activating .venv runs each stage with
whatever `python` is first on PATH. Every stage must say so in one line before it imports a
third-party package, and never block the project's own environment."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tabml.environment import RESULT_LIBRARIES, differences, locked_versions
from tests.helpers import (
    REPO,
    VENV_BIN,
    capture,
    copy_repo,
    credit_only,
    error_lines,
    run,
    without_coverage,
)

STAGES = [
    ["stages.check_params"],
    ["stages.ingest", "--dataset", "credit"],
    ["stages.split", "--dataset", "credit"],
    ["stages.featurize", "--dataset", "credit"],
    ["stages.train", "--dataset", "credit", "--algo", "rf"],
    ["stages.evaluate", "--dataset", "credit"],
    ["stages.plot", "--dataset", "credit"],
    ["stages.report"],
]
ADVICE = "run `source .venv/bin/activate` first, or `uv run dvc repro`"


def locked(name: str) -> str:
    """The version uv.lock pins for ``name`` (read independently of the code under test)."""
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    (version,) = {p["version"] for p in lock["package"] if p["name"] == name}
    return version


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh `python -m venv` without the project's dependencies (like a system python)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def fake_installed(python: Path, versions: dict[str, str]) -> None:
    """Give ``python``'s site-packages distribution metadata (only what the check reads)."""
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name, version in versions.items():
        info = Path(site) / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )


def run_stage_with(python: Path, module: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return capture([str(python), "-m", *module], cwd, env=env)


@pytest.mark.parametrize("module", STAGES, ids=lambda m: m[0])
def test_every_stage_refuses_a_python_without_the_project_libraries(bare_python, module):
    proc = run_stage_with(bare_python, module, REPO)

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [
        f"error: python at {bare_python} is not this project's environment (pandas, numpy, "
        f"scikit-learn, scipy, xgboost-cpu, joblib, pydantic missing here): {ADVICE}"
    ]


def test_a_python_with_other_library_versions_is_refused(tmp_path):
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(python.parents[1])], check=True
    )
    same = ("pandas", "numpy", "scipy", "joblib", "pydantic")
    versions = {name: importlib.metadata.version(name) for name in same}  # .venv's: uv.lock's
    # The PyPI `xgboost` provides the same module as the locked `xgboost-cpu`.
    fake_installed(python, {**versions, "scikit-learn": "1.3.0", "xgboost": "2.0.3"})

    proc = run_stage_with(python, ["stages.check_params"], REPO)

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [
        f"error: python at {python} is not this project's environment (scikit-learn 1.3.0 "
        f"here, {locked('scikit-learn')} in uv.lock; xgboost 2.0.3 here, xgboost-cpu "
        f"{locked('xgboost-cpu')} in uv.lock): {ADVICE}"
    ]


def test_dvc_repro_without_the_environment_stops_at_the_first_stage(tmp_path, bare_python):
    """`.venv/bin/dvc repro` with another `python` first on PATH, as in a new shell."""
    repo = copy_repo(tmp_path / "repo", credit_only)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PATH=f"{bare_python.parent}{os.pathsep}/usr/bin:/bin", DVC_NO_ANALYTICS="1")

    proc = capture([str(VENV_BIN / "dvc"), "repro"], repo, env=env, timeout=300)

    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Running stage 'check-params'" in out
    assert "Running stage 'ingest@credit'" not in out
    assert "Traceback" not in out and "ModuleNotFoundError" not in out
    assert error_lines(out) == [
        f"error: python at {bare_python} is not this project's environment (pandas, numpy, "
        f"scikit-learn, scipy, xgboost-cpu, joblib, pydantic missing here): {ADVICE}"
    ]
    assert "exited with 2" in out


def test_the_project_environment_passes_in_the_checkout_and_in_a_copy(tmp_path):
    """Its own .venv (the fast path), and a copy without .venv whose uv.lock it matches
    (a `dvc exp run` temporary copy, the pipeline tests' copies)."""
    copy = copy_repo(tmp_path / "repo", credit_only)
    assert not (copy / ".venv").exists()

    for cwd in (REPO, copy):
        proc = run([str(VENV_BIN / "python"), "-m", "stages.check_params"], cwd)
        assert error_lines(proc.stderr) == [], proc.stderr


def test_the_fast_path_reads_neither_uv_lock_nor_package_metadata():
    code = (
        "import sys; from tabml.environment import check_environment; check_environment(); "
        "print(sorted(m for m in ('tomllib', 'importlib.metadata') if m in sys.modules))"
    )
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", code],
        cwd=REPO,
        env=without_coverage(),  # coverage's start-up hook imports both modules itself
        capture_output=True,
        text=True,
        check=True,
    )

    assert proc.stdout.strip() == "[]"


# --- the core: uv.lock's pins against what is installed ---------------------------------

LOCK = """version = 1
requires-python = ">=3.11, <3.14"

[[package]]
name = "numpy"
version = "2.4.6"
source = { registry = "https://pypi.org/simple" }
resolution-markers = [
    "python_full_version < '3.12'",
]

[[package]]
name = "numpy"
version = "2.5.5"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pandas"
version = "2.3.3"
dependencies = [
    { name = "numpy", version = "2.4.6" },
]

[package.optional-dependencies]
pyarrow = [
    { name = "pyarrow" },
]

[[package]]
name = "pandas-stubs"
version = "9.9.9"
"""


def test_locked_versions_reads_every_pin_of_the_wanted_packages():
    assert locked_versions(LOCK, {"numpy", "pandas", "scipy"}) == {
        "numpy": {"2.4.6", "2.5.5"},
        "pandas": {"2.3.3"},
    }


def test_locked_versions_agrees_with_a_full_parse_of_the_real_lock():
    text = (REPO / "uv.lock").read_text(encoding="utf-8")
    wanted = {name for names in RESULT_LIBRARIES for name in names}
    full: dict[str, set[str]] = {}
    for package in tomllib.loads(text)["package"]:
        if package["name"] in wanted:
            full.setdefault(package["name"], set()).add(package["version"])

    assert locked_versions(text, wanted) == full
    assert {"pandas", "numpy", "scikit-learn", "scipy", "xgboost-cpu"} <= set(full)


def test_differences():
    pins = {"numpy": {"2.4.6", "2.5.5"}, "pandas": {"2.3.3"}, "xgboost-cpu": {"3.2.0"}}
    libraries = (("pandas",), ("numpy",), ("xgboost-cpu", "xgboost"), ("polars",))

    assert (
        differences({"pandas": "2.3.3", "numpy": "2.5.5", "xgboost-cpu": "3.2.0"}, pins, libraries)
        == []
    )
    assert (
        differences({"pandas": "2.3.3", "numpy": "2.4.6", "xgboost": "3.2.0"}, pins, libraries)
        == []
    )
    assert differences({"numpy": "1.26.4", "xgboost-cpu": "3.1.0"}, pins, libraries) == [
        "pandas missing here",
        "numpy 1.26.4 here, 2.4.6 or 2.5.5 in uv.lock",
        "xgboost-cpu 3.1.0 here, 3.2.0 in uv.lock",
    ]
