"""Fixtures for tests that run real dvc commands in a throw-away copy of this repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_repo, dvc, git, small_params


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy with small params in which `dvc repro` has run once and been committed."""
    repo = copy_repo(tmp_path_factory.mktemp("small"), small_params)
    # The committed lock belongs to the real params; this copy starts its own history.
    (repo / "dvc.lock").unlink(missing_ok=True)
    proc = dvc("repro", cwd=repo)
    (repo.parent / f"{repo.name}-repro.log").write_text(proc.stdout + proc.stderr)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "repro", cwd=repo)
    return repo
