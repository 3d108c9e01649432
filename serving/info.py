"""What the server says about the project it serves: name, version, stages, git revision.

Read from files (``pyproject.toml`` with tomllib, ``dvc.lock`` or ``dvc.yaml`` as plain YAML:
importing dvc would cost a second of start-up for a list of names) and from one
``git rev-parse HEAD`` at start-up.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

log = logging.getLogger("serving.info")

_REVISION_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def project_meta(root: Path) -> dict[str, str | None]:
    """``[project]`` name and version from pyproject.toml; None when absent or unreadable."""
    try:
        with (root / "pyproject.toml").open("rb") as handle:
            project = tomllib.load(handle).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {"name": None, "version": None}
    name, version = project.get("name"), project.get("version")
    return {
        "name": name if isinstance(name, str) else None,
        "version": version if isinstance(version, str) else None,
    }


def pipeline_stages(root: Path) -> dict[str, Any]:
    """Stage names of the last run (dvc.lock: ``ingest@credit``...), else dvc.yaml's templates."""
    import yaml

    for name in ("dvc.lock", "dvc.yaml"):
        path = root / name
        if not path.exists():
            continue
        try:
            stages = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages", {})
        except (OSError, yaml.YAMLError, AttributeError):
            log.warning("cannot read %s", name)
            continue
        if isinstance(stages, dict):
            return {"source": name, "names": [str(s) for s in stages]}
    return {"source": None, "names": []}


def git_revision(root: Path) -> str | None:
    """HEAD's commit, or None outside a git checkout or without git."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = proc.stdout.strip()
    return revision if proc.returncode == 0 and _REVISION_RE.fullmatch(revision) else None
