"""Reading and writing pipeline files: atomic writes, clear errors for missing inputs.

A crash or a bad input never leaves a half-written output for DVC to cache: an output is
written under a temporary name (:data:`TEMP_NAME`, ``.<name>.<pid>-<random>.tmp``) and
moved into place at the end. A ``kill -9`` skips every clean-up, so the temporary goes
where no DVC output or dependency (nor git) can see it: ``.dvc/tmp/tabml/`` of the
repository (:func:`temp_home`). Where that is impossible (no DVC repository above the output,
or another file system) it goes beside the output, under a name ``.dvcignore`` hides from
DVC's directory hashes. Either way the next stage deletes it on start
(:func:`remove_stale_temps`): a rerun may not start a stage at all (DVC restores outputs from
its run cache). An OSError about a temporary names the output it stands for.
Nothing heavy is imported here: pandas and joblib load inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tabml.errors import PipelineError

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
# Ours and nobody else's: the hidden name of the output, the writer's pid, and tempfile's
# 8 random characters. .dvcignore lists the same pattern as the glob `.*.[0-9]*-????????.tmp`.
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)-[a-z0-9_]{8}\.tmp")
# Inside the DVC repository: git-ignored (.dvc/.gitignore) and never part of a workspace hash.
TEMP_HOME = Path(".dvc", "tmp", "tabml")


def _umask() -> int:
    """The process umask (temp files are created 0600; outputs get the usual mode)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _require(path: Path) -> None:
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run the stage that writes it first")


def temp_home(folder: Path) -> Path | None:
    """``.dvc/tmp/tabml`` of the DVC repository holding ``folder``, or None (no repository)."""
    here = folder.absolute()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir():
            return candidate / TEMP_HOME
    return None


def _temp_dir(parent: Path) -> Path:
    """Where to write a temporary for an output in ``parent`` (which exists): the
    repository's temp home when a file can be renamed from there into ``parent``, else
    ``parent`` itself.

    Tried with an empty file, not judged by ``st_dev``: a bind mount (a container volume)
    shares the device yet refuses the rename (EXDEV).
    """
    home = temp_home(parent)
    if home is None:
        return parent
    probe = None
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(parent), suffix=TEMP_SUFFIX, dir=home)
        os.close(fd)
        moved = parent / Path(probe).name
        os.replace(probe, moved)
        moved.unlink()
        return home
    except OSError:  # another file system, a read-only .dvc or output directory
        if probe is not None:
            Path(probe).unlink(missing_ok=True)
        return parent


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


def _visible(name: str | os.PathLike[str], path: Path) -> str:
    """``name`` with the temporary standing for ``path`` (and whatever precedes it) replaced
    by ``path``: errors name the file the user knows, not ``.rf_credit_v1.pkl.42-k2j4x9a1.tmp``."""
    parts = Path(name).parts
    for i, part in enumerate(parts):
        match = TEMP_NAME.fullmatch(part)
        if match and match["name"] == path.name:
            return str(path.joinpath(*parts[i + 1 :]))
    return str(name)


@contextlib.contextmanager
def _name_the_output(path: Path) -> Iterator[None]:
    """Make an OSError raised while writing ``path`` name ``path``, not a temporary.

    A full disk raises ENOSPC from ``write()`` with no file name at all: the output being
    written is the file to blame.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        elif isinstance(exc.filename, str | os.PathLike):
            exc.filename = _visible(exc.filename, path)
        if isinstance(exc.filename2, str | os.PathLike):
            exc.filename2 = _visible(exc.filename2, path)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    with _name_the_output(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=_temp_dir(path.parent)
        )
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            tmp_path.chmod(0o666 & ~_umask())
            os.replace(tmp_path, path)
        finally:
            tmp_path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not; our own pid is a past run's)."""
    if pid == os.getpid():
        return False  # checked on start, before this process wrote anything
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True  # no /proc (macOS): it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def remove_stale_temps(dirs: Iterable[Path]) -> list[Path]:
    """Delete the temporaries that killed runs left under ``dirs``; return what went.

    Only names of :data:`TEMP_NAME` whose writer is gone: a run writing beside us keeps its
    files, and nobody else's hidden files are touched. Failing to delete one is only logged:
    it is out of DVC's sight already (in the temp home, or hidden by .dvcignore).
    """
    import shutil

    removed = []
    for top in dirs:
        for parent, subdirs, names in os.walk(top):
            for name in [*subdirs, *names]:
                match = TEMP_NAME.fullmatch(name)
                if match is None or _alive(int(match["pid"])):
                    continue
                stale = Path(parent, name)
                try:
                    if stale.is_dir() and not stale.is_symlink():
                        shutil.rmtree(stale)
                    else:
                        stale.unlink()
                except OSError as exc:
                    log.warning("could not remove %s, left by a killed run: %s", stale, exc)
                    continue
                log.info("removed %s, left by a killed run", stale)
                removed.append(stale)
            subdirs[:] = [d for d in subdirs if not TEMP_NAME.fullmatch(d)]
    return removed


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


def _has_bare_cr(frame: Any) -> bool:
    """Whether a column name or text cell holds "\r" (vectorised: text columns only)."""
    if any("\r" in str(name) for name in frame.columns):
        return True
    texts = [
        frame[name]
        for name in frame.columns
        if frame[name].dtype == object or str(frame[name].dtype).startswith("string")
    ]
    return any(t.astype("string").str.contains("\r", regex=False, na=False).any() for t in texts)


def write_csv(path: str | Path, frame: Any, *, sep: str = ",", quote_text: bool = False) -> None:
    """Write a DataFrame as CSV atomically, without the index, fields separated by ``sep``.

    ``quote_text`` quotes every value that is not a number (a reader that skips the spaces
    after a separator keeps those inside quotes). Python's csv writer quotes a cell holding
    the line end ("\n") but not a bare "\r", which every reader takes as a line end too: such
    a frame has all its text quoted.
    """
    import csv

    quote = quote_text or _has_bare_cr(frame)
    quoting = csv.QUOTE_NONNUMERIC if quote else csv.QUOTE_MINIMAL
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, sep=sep, lineterminator="\n", quoting=quoting)


def file_stamp(path: str | Path) -> tuple[int, int]:
    """(size, modification time in ns) of a file: whether it changed between two looks."""
    info = Path(path).stat()
    return info.st_size, info.st_mtime_ns


def copy_file(src: str | Path, dest: str | Path, *, stamp: tuple[int, int] | None = None) -> None:
    """Copy the bytes of ``src`` to ``dest`` atomically (in the kernel where it can).

    ``stamp`` is :func:`file_stamp` of ``src`` when its contents were read and checked: a
    source changed since then is refused, since the copy would not be what was checked.
    """
    import shutil

    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        if stamp is not None and file_stamp(src) != stamp:
            raise PipelineError(f"{src} changed while it was read: run the stage again")


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
    """Build a whole output directory in a temporary and swap it in for ``path`` at the end.

    For stages whose DVC output is a directory: stale files from a previous run never
    survive, and a failure leaves the previous directory as it was.
    """
    import shutil

    path = Path(path)
    with _name_the_output(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        where = _temp_dir(path.parent)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=where))
        # The previous directory moves onto a second (empty) temporary: a kill between the
        # two renames leaves only temporaries, which the next stage deletes.
        old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=where))
        try:
            write(tmp)
            tmp.chmod(0o777 & ~_umask())
            moved = path.exists()
            if moved:
                os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                if moved:
                    os.replace(old, path)  # put the previous output back
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
