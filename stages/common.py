"""The one home for what every stage shares: paths and naming rules, atomic writes, the CLI.

File names follow the project conventions (see README, "Naming conventions"):

- data:    ``data/<phase>/<dataset>[-<part>]_<phase>_<YYYYMMDD>.<ext>``, phase in raw,
  interim, processed (processed files sit in ``data/processed/<dataset>/`` so one directory
  is the whole output of ``featurize@<dataset>``);
- models:  ``models/<algo>_<dataset>_v<N>.pkl``;
- figures: ``plots/figures/<topic>_<dataset>_<YYYYMMDD>.png``; plot data for DVC:
  ``plots/data/<topic>/<topic>_<dataset>-<algo>_<YYYYMMDD>.csv``.

Nothing heavy is imported here: pandas, joblib and friends load inside the functions
that need them, so a stage pays only for what it uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.errors import PipelineError
from stages.params import Params, load_params

log = logging.getLogger("stages")

PHASES = ("raw", "interim", "processed")
_PART = r"(?:-(?P<part>[a-z0-9]+))?"
DATA_NAME_RE = re.compile(
    rf"^(?P<dataset>[a-z][a-z0-9]*){_PART}_(?P<phase>raw|interim|processed)_(?P<date>\d{{8}})"
    r"\.(?P<ext>csv|pkl)\Z"
)
# A model id names a model file without its extension: <algo>_<dataset>_v<N>.
MODEL_ID_PATTERN = r"(?P<algo>[a-z][a-z0-9]*)_(?P<dataset>[a-z][a-z0-9]*)_v(?P<version>[1-9][0-9]*)"
MODEL_NAME_RE = re.compile(rf"^{MODEL_ID_PATTERN}\.pkl\Z")
FIGURE_NAME_RE = re.compile(
    rf"^(?P<topic>[a-z][a-z0-9]*)_(?P<dataset>[a-z][a-z0-9]*){_PART}_(?P<date>\d{{8}})"
    r"\.(?P<ext>png|csv)\Z"
)
NOTEBOOK_NAME_RE = re.compile(r"^\d{2}_[a-z0-9-]+_[a-z0-9-]+\.ipynb\Z")


@dataclass(frozen=True)
class Layout:
    """Every path the pipeline reads or writes, derived from the repo root and params.

    dvc.yaml spells the same paths with ``${}`` templating; tests check the two agree.
    """

    root: Path = Path(".")

    def raw(self, dataset: str, date: str) -> Path:
        return self.root / "data" / "raw" / f"{dataset}_raw_{date}.csv"

    def interim(self, dataset: str, part: str, date: str) -> Path:
        return self.root / "data" / "interim" / f"{dataset}-{part}_interim_{date}.csv"

    def processed_dir(self, dataset: str) -> Path:
        return self.root / "data" / "processed" / dataset

    def processed(self, dataset: str, part: str, date: str, ext: str = "csv") -> Path:
        return self.processed_dir(dataset) / f"{dataset}-{part}_processed_{date}.{ext}"

    def model(self, algo: str, dataset: str, version: int) -> Path:
        return self.root / "models" / f"{algo}_{dataset}_v{version}.pkl"

    def train_metrics_dir(self, dataset: str, algo: str) -> Path:
        return self.root / "metrics" / "train" / f"{dataset}-{algo}"

    @property
    def test_metrics_dir(self) -> Path:
        return self.root / "metrics" / "test"

    def test_metrics(self, dataset: str, algo: str) -> Path:
        return self.test_metrics_dir / f"{dataset}-{algo}.json"

    @property
    def leaderboard_dir(self) -> Path:
        return self.root / "metrics" / "leaderboard"

    def leaderboard(self, dataset: str) -> Path:
        return self.leaderboard_dir / f"{dataset}.json"

    @property
    def plot_data_dir(self) -> Path:
        return self.root / "plots" / "data"

    def plot_data(self, topic: str, dataset: str, algo: str, date: str) -> Path:
        return self.plot_data_dir / topic / f"{topic}_{dataset}-{algo}_{date}.csv"

    @property
    def figures_dir(self) -> Path:
        return self.root / "plots" / "figures"

    def figure(self, topic: str, dataset: str, date: str) -> Path:
        return self.figures_dir / f"{topic}_{dataset}_{date}.png"

    @property
    def report(self) -> Path:
        return self.root / "plots" / "report.html"


_NOT_OUTPUTS = frozenset({".gitignore", ".gitkeep", "README.md"})


def _naming_problem(rel: Path) -> str | None:
    """Why ``rel`` (relative to the repo root) breaks the naming conventions, or None."""
    parts, name = rel.parts, rel.name
    if parts[0] == "data":
        match = DATA_NAME_RE.match(name)
        if not match:
            return "data files are <dataset>[-<part>]_<phase>_<YYYYMMDD>.csv"
        if match["phase"] != parts[1]:
            return f"phase {match['phase']!r} in the name but the file is in data/{parts[1]}/"
        if parts[1] == "processed" and (len(parts) != 4 or parts[2] != match["dataset"]):
            return "processed files live in data/processed/<dataset>/"
        return None
    if parts[0] == "models":
        return None if MODEL_NAME_RE.match(name) else "models are <algo>_<dataset>_v<N>.pkl"
    if parts[0] == "notebooks":
        return None if NOTEBOOK_NAME_RE.match(name) else "notebooks are <NN>_<topic>_<author>.ipynb"
    if rel == Path("plots/report.html"):
        return None
    match = FIGURE_NAME_RE.match(name)
    if parts[:2] == ("plots", "figures"):
        ok = match and match["ext"] == "png"
        return None if ok else "figures are <topic>_<dataset>_<YYYYMMDD>.png"
    if parts[:2] == ("plots", "data") and len(parts) == 4:
        ok = match and match["ext"] == "csv" and match["topic"] == parts[2]
        return None if ok else "plot data is plots/data/<topic>/<topic>_<dataset>-<algo>_<date>.csv"
    return "not a place for pipeline files"


def naming_violations(root: Path) -> tuple[int, list[str]]:
    """Check every file under data/, models/, plots/ and notebooks/ against the conventions.

    Returns how many files were checked and one line per file that breaks a rule.
    Files that are not outputs (.gitignore, README.md) and data/external/ are skipped.
    """
    checked, problems = 0, []
    for top in ("data", "models", "plots", "notebooks"):
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root)
            if (
                not path.is_file()
                or path.name in _NOT_OUTPUTS
                or rel.parts[:2] == ("data", "external")
            ):
                continue
            checked += 1
            problem = _naming_problem(rel)
            if problem:
                problems.append(f"{rel}: {problem}")
    return checked, problems


# --- atomic writes --------------------------------------------------------------------


def _umask() -> int:
    """The process umask (temp files are created 0600; outputs get the usual mode)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A crash or a bad input never leaves a half-written output for DVC to cache.
    """
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


def write_json(path: str | Path, obj: Any) -> None:
    """Stable JSON (sorted keys, fixed indent) so unchanged results keep their hash."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a pipeline JSON, with a clear error when an upstream stage has not run."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run the stage that writes it first")
    return json.loads(path.read_text(encoding="utf-8"))


def write_csv(path: str | Path, frame: Any) -> None:
    """Write a DataFrame as CSV atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_pickle(path: str | Path, obj: Any) -> None:
    """joblib-pickle ``obj`` atomically (compressed: models stay a few MB)."""
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp, compress=3)


def read_pickle(path: str | Path) -> Any:
    """Load a pickle written by this pipeline. Never call it on a file a user uploaded."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run the stage that writes it first")
    return joblib.load(path)


def read_csv(path: str | Path, **kwargs: Any) -> Any:
    """Read a pipeline CSV, with a clear error when an upstream stage has not run."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run the stage that writes it first")
    return pd.read_csv(path, **kwargs)


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


# --- CLI ------------------------------------------------------------------------------


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def stage_parser(
    description: str, *, dataset: bool = False, algo: bool = False
) -> argparse.ArgumentParser:
    """The shared command line of every stage: same params file, same flags."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--root", default=".", help="repository root for inputs and outputs")
    if dataset:
        parser.add_argument("--dataset", required=True, help="dataset name declared in params.yaml")
    if algo:
        parser.add_argument("--algo", required=True, help="algorithm listed in train.algos")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def run_stage(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Params, Layout], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse args and params, run ``body``; user errors become one line and exit code 2."""
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        params = load_params(args.params)
        body(args, params, Layout(Path(args.root)))
    except PipelineError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
