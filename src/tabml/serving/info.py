"""What the server says about the project it serves: name, version, stages, git revision,
and the params of its models (with any credential in a URL masked: :func:`tabml.secrets.redacted`).

Read from files (``pyproject.toml`` with tomllib, ``dvc.lock`` or ``dvc.yaml`` as plain YAML:
importing dvc would cost a second of start-up for a list of names) and from one
``git rev-parse HEAD`` at start-up. The project name and version come from the root's
pyproject.toml, else from the installed package's metadata.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger("tabml.serving.info")

_REVISION_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


DISTRIBUTION = "tabular-dvc-pipeline"


def project_meta(root: Path) -> dict[str, str | None]:
    """``[project]`` name and version: from the root's pyproject.toml, else from the installed
    package (a serving machine may hold the pipeline's outputs without its sources)."""
    try:
        with (root / "pyproject.toml").open("rb") as handle:
            project = tomllib.load(handle).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        try:
            return {"name": DISTRIBUTION, "version": metadata.version(DISTRIBUTION)}
        except metadata.PackageNotFoundError:
            return {"name": None, "version": None}
    name, version = project.get("name"), project.get("version")
    return {
        "name": name if isinstance(name, str) else None,
        "version": version if isinstance(version, str) else None,
    }


def pipeline_stages(root: Path) -> dict[str, Any]:
    """Stage names of the last run (dvc.lock: ``ingest@credit``...), else dvc.yaml's templates."""
    from ruamel.yaml import YAMLError

    from tabml.files import read_yaml

    for name in ("dvc.lock", "dvc.yaml"):
        path = root / name
        if not path.exists():
            continue
        try:
            stages = (read_yaml(path) or {}).get("stages", {})
        except (OSError, YAMLError, AttributeError):
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
