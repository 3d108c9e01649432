"""Reading and writing pipeline files: atomic writes, clear errors for missing inputs.

A crash or a bad input never leaves a half-written output for DVC to cache. Nothing heavy is
imported here: pandas and joblib load inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tabml.errors import PipelineError


def _umask() -> int:
    """The process umask (temp files are created 0600; outputs get the usual mode)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _require(path: Path) -> None:
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run the stage that writes it first")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_text(obj: Any) -> str:
    """Stable JSON (sorted keys, fixed indent) so unchanged results keep their hash."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json_text(obj))


def read_json(path: str | Path) -> Any:
    """Read a pipeline JSON, with a clear error when an upstream stage has not run."""
    path = Path(path)
    _require(path)
    return json.loads(path.read_text(encoding="utf-8"))


def write_csv(path: str | Path, frame: Any) -> None:
    """Write a DataFrame as CSV atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def read_csv(path: str | Path, **kwargs: Any) -> Any:
    """Read a pipeline CSV, with a clear error when an upstream stage has not run."""
    import pandas as pd

    path = Path(path)
    _require(path)
    return pd.read_csv(path, **kwargs)


def write_pickle(path: str | Path, obj: Any) -> None:
    """joblib-pickle a library object atomically (compressed: models stay a few MB)."""
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp, compress=3)


def read_pickle(path: str | Path) -> Any:
    """Load a pickle this pipeline wrote. Never call it on a file a user sent."""
    import joblib

    path = Path(path)
    _require(path)
    return joblib.load(path)


def read_yaml(path: str | Path) -> Any:
    """Plain data from a YAML file, read as YAML 1.2 like DVC (``yes``/``no`` stay text).

    Raises OSError or ``ruamel.yaml.YAMLError``; the caller words the message.
    """
    from ruamel.yaml import YAML

    text = Path(path).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)  # safe: builds plain data, runs no code


def md5_file(path: str | Path) -> str:
    """The md5 of a file's bytes, as DVC records it in dvc.lock."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def replace_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Build a whole output directory beside ``path`` and swap it in at the end.

    For stages whose DVC output is a directory: stale files from a previous run never
    survive, and a failure leaves the previous directory as it was.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        write(tmp)
        tmp.chmod(0o777 & ~_umask())
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
