"""`kill -9` in the middle of a write, then `dvc repro` again: dvc.lock must come out exactly
as before and nothing may be left in a directory DVC hashes or git shows.

A SIGKILL skips every ``finally``: the temporary of an atomic write survives. Beside the
output it used to be counted in a directory dependency (evaluate's ``models``: ``nfiles: 8``
instead of 7), so the rerun recorded a lock a clone never matches. The kill is aimed by
watching for the temporary's name (wherever it is written), at three moments: during a model
write (train), during a split write, during evaluate's directory swap.

DVC's own locks after a SIGKILL: ``.dvc/tmp/lock`` is an flock, gone with the process;
``.dvc/tmp/rwlock`` keeps the dead pid, and the next ``dvc`` drops it ("had been killed.
Auto removed it from the lock file."): the rerun needs no manual step.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import copy_repo, credit_only, dvc, git, start_dvc

TREES = ("data", "models", "metrics", "plots")  # every output and dependency directory
TEMP_HOME = Path(".dvc", "tmp", "tabml")
TARGETS = ("check-params", "evaluate")  # all but plot: the moments are upstream of evaluate
ATTEMPTS = 6


def small_deterministic(params: dict) -> None:
    """credit only, one small forest (a few seconds a stage); predicting on one thread it
    sums its trees in one order, so a rerun of evaluate writes the same bytes (with two
    threads, one ulp of noise can move a permutation importance)."""
    credit_only(params)
    params["train"]["algos"] = ["rf"]
    params["train"]["rf"]["n_jobs"] = 1


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, list[str]]:
    """A committed copy after one clean `dvc repro evaluate`: its dvc.lock and its files."""
    repo = copy_repo(tmp_path_factory.mktemp("kill"), small_deterministic)
    (repo / "dvc.lock").unlink(missing_ok=True)  # the committed lock is the real params'
    dvc("repro", *TARGETS, cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "repro", cwd=repo)
    return repo, (repo / "dvc.lock").read_bytes(), listing(repo)


def listing(repo: Path) -> list[str]:
    """Every file and directory under the output and dependency trees, hidden ones too."""
    return sorted(
        path.relative_to(repo).as_posix()
        for tree in TREES
        if (repo / tree).exists()
        for path in (repo / tree).rglob("*")
    )


def temps(repo: Path, watch: list[Path], pattern: re.Pattern[str]) -> list[Path]:
    found = []
    for folder in watch:
        try:
            found += [folder / name for name in os.listdir(folder) if pattern.fullmatch(name)]
        except FileNotFoundError:
            continue
    return found


def kill_during(repo: Path, stage: str, watch: list[Path], pattern: re.Pattern[str]) -> Path:
    """Run ``dvc repro -s -f stage`` in its own process group and SIGKILL the whole group
    the moment a temporary named ``pattern`` appears; return that temporary."""
    for _ in range(ATTEMPTS):
        proc = start_dvc("repro", "-s", "-f", stage, cwd=repo)
        deadline = time.monotonic() + 180
        hit: list[Path] = []
        while not hit and proc.poll() is None and time.monotonic() < deadline:
            hit = temps(repo, watch, pattern)
        if hit:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not hit:  # a fast write (split copies raw lines) can fall between two polls
            continue
        gone = time.monotonic() + 10
        while time.monotonic() < gone:  # the stage process dies with its group
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"processes of {stage} survived SIGKILL")
        left = [path for path in hit if path.exists()]
        if left:  # killed while writing: the crash the test is about
            return left[0]
        # The write finished between seeing the temporary and the kill: aim again.
    raise AssertionError(
        f"could not kill {stage} during a write ({pattern.pattern}) in {ATTEMPTS} attempts"
    )


@pytest.mark.parametrize(
    ("stage", "folder", "name"),
    [
        ("train@credit-rf", "models/credit", r"\.rf_credit_v1\.pkl\..+"),
        ("split@credit", "data/interim", r"\.credit\..+"),
        ("evaluate@credit", "plots/data/roc", r"\.credit\..+"),
    ],
    ids=["model-write", "split-write", "evaluate"],
)
def test_sigkill_during_a_write_then_repro_restores_the_same_lock(project, stage, folder, name):
    repo, lock, files = project
    pattern = re.compile(name)

    stray = kill_during(repo, stage, [repo / folder, repo / TEMP_HOME], pattern)

    proc = dvc("repro", *TARGETS, cwd=repo)
    assert (repo / "dvc.lock").read_bytes() == lock, proc.stdout[-3000:]
    assert listing(repo) == files, f"stray files after the rerun (killed at {stray})"
    assert "Data and pipelines are up to date." in dvc("status", *TARGETS, cwd=repo).stdout
    assert git("status", "--porcelain", cwd=repo).stdout == ""
    if temps(repo, [repo / TEMP_HOME], pattern):
        # The rerun restored the outputs from DVC's run cache without starting the stage
        # (split): the temporary waits in .dvc/tmp/tabml, seen by neither DVC nor git, until
        # the next stage starts.
        dvc("repro", "-s", "-f", "check-params", cwd=repo)
        assert temps(repo, [repo / TEMP_HOME], pattern) == []
        assert (repo / "dvc.lock").read_bytes() == lock
