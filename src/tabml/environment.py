"""Is this python the project's environment? Every stage asks before it imports anything else.

``.venv/bin/dvc repro`` run without activating ``.venv`` makes DVC start each stage with the
``python`` first on PATH: another interpreter, where a stage dies on a missing import, or
worse, trains with other library versions and writes different models under the same lock.

The normal case costs two ``stat`` calls: ``sys.prefix`` is this checkout's ``.venv``. Any
other interpreter (a ``dvc exp run`` temporary copy, a test's copy, a system python) is
compared with ``uv.lock``: the libraries that decide results must be installed at a locked
version. Only stdlib here, and nothing heavy: this runs in every stage process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tabml.errors import PipelineError

log = logging.getLogger(__name__)

# The checkout this code runs from (src/tabml/environment.py -> the repository root).
ROOT = Path(__file__).resolve().parents[2]
# The libraries whose versions decide what the pipeline writes, each as the distribution
# names that provide it (uv.lock's first): the PyPI `xgboost` is the same module as the
# locked `xgboost-cpu` build.
RESULT_LIBRARIES: tuple[tuple[str, ...], ...] = (
    ("pandas",),
    ("numpy",),
    ("scikit-learn",),
    ("scipy",),
    ("xgboost-cpu", "xgboost"),
    ("joblib",),
    ("pydantic",),
)
ADVICE = "run `source .venv/bin/activate` first, or `uv run dvc repro`"


def locked_versions(lock_text: str, names: Iterable[str]) -> dict[str, set[str]]:
    """Every version ``uv.lock`` pins for each of ``names`` (one per python range at most).

    Only the leading one-line keys (``name``, ``version``, ``source``) of each ``[[package]]``
    table are parsed: tomllib takes 0.15 s over the whole 500 kB file (its wheel lists),
    more than the rest of a check-params run.
    """
    import tomllib

    wanted = {f'name = "{name}"' for name in names}
    pins: dict[str, set[str]] = {}
    for table in lock_text.split("\n[[package]]\n")[1:]:
        lines = table.split("\n", 8)
        if lines[0] not in wanted:  # uv writes `name = "..."` first
            continue
        head = []
        for line in lines[:-1]:
            if " = " not in line or line.endswith(("[", "{")):
                break  # the first multi-line value or sub-table
            head.append(line)
        package = tomllib.loads("\n".join(head))
        pins.setdefault(package["name"], set()).add(package["version"])
    return pins


def installed_versions(libraries: Sequence[tuple[str, ...]]) -> dict[str, str]:
    """The installed version of each distribution in ``libraries`` this python has."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for names in libraries:
        for name in names:
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                continue
            break
    return found


def differences(
    installed: Mapping[str, str],
    pins: Mapping[str, set[str]],
    libraries: Sequence[tuple[str, ...]] = RESULT_LIBRARIES,
) -> list[str]:
    """What differs from the lock, worded for the error: missing libraries first, together."""
    missing, other = [], []
    for names in libraries:
        locked_name = next((name for name in names if name in pins), None)
        if locked_name is None:
            continue  # not a dependency of this project
        allowed = pins[locked_name]
        here = next((name for name in names if name in installed), None)
        if here is None:
            missing.append(locked_name)
        elif installed[here] not in allowed:
            wanted = " or ".join(sorted(allowed))
            if here != locked_name:
                wanted = f"{locked_name} {wanted}"
            other.append(f"{here} {installed[here]} here, {wanted} in uv.lock")
    return ([f"{', '.join(missing)} missing here"] if missing else []) + other


def _is_dir(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_environment(root: Path = ROOT) -> None:
    """Raise a PipelineError naming this python when it is not the project's environment.

    Passes at once for ``root/.venv``; passes when there is no ``uv.lock`` to compare with
    (the package installed without its checkout).
    """
    if _is_dir(sys.prefix, root / ".venv"):
        return
    lock = root / "uv.lock"
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError:
        return
    try:
        pins = locked_versions(text, (name for names in RESULT_LIBRARIES for name in names))
    except ImportError:  # python < 3.11 has no tomllib
        problems = [f"python {sys.version_info[0]}.{sys.version_info[1]} here, too old"]
    else:
        problems = differences(installed_versions(RESULT_LIBRARIES), pins)
    if problems:
        raise PipelineError(
            f"python at {sys.executable} is not this project's environment "
            f"({'; '.join(problems)}): {ADVICE}"
        )
    log.debug("python at %s has the libraries of %s", sys.executable, lock)
