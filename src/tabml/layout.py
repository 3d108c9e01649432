"""Every path the pipeline reads or writes, and the naming rules a server relies on.

File names follow the project conventions (README, "Naming conventions"):

- data:    ``data/<phase>/<dataset>[-<part>]_<phase>_<YYYYMMDD>.<ext>``, phase in raw,
  interim, processed (processed files sit in ``data/processed/<dataset>/`` so one directory
  is the whole output of ``featurize@<dataset>``);
- models:  ``models/<algo>_<dataset>_v<N>.pkl`` and its card ``models/<algo>_<dataset>_v<N>.json``;
- figures: ``plots/figures/<topic>_<dataset>_<YYYYMMDD>.png``; plot data for DVC:
  ``plots/data/<topic>/<topic>_<dataset>-<algo>_<YYYYMMDD>.csv``.

dvc.yaml spells the same paths with ``${}`` templating; a test checks the two agree. The
checks of a whole tree against the conventions live with the tests (``tests/naming.py``):
no stage depends on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A dataset name becomes part of every file name: lowercase letters and digits.
NAME_PATTERN = r"[a-z][a-z0-9]*"
NAME_RE = re.compile(NAME_PATTERN)
# A model id names a model file without its extension: <algo>_<dataset>_v<N>.
MODEL_ID_PATTERN = (
    rf"(?P<algo>{NAME_PATTERN})_(?P<dataset>{NAME_PATTERN})_v(?P<version>[1-9][0-9]*)"
)
MODEL_ID_RE = re.compile(MODEL_ID_PATTERN)
ID_FORMAT = "<algo>_<dataset>_v<N>, e.g. xgb_credit_v1"


def is_name(text: object) -> bool:
    """A well-formed dataset (or algorithm) name; fullmatch, so no trailing newline."""
    return isinstance(text, str) and NAME_RE.fullmatch(text) is not None


def model_id(algo: str, dataset: str, version: int) -> str:
    return f"{algo}_{dataset}_v{version}"


def parse_model_id(text: object) -> tuple[str, str, int] | None:
    """(algo, dataset, version) of a well-formed model id, else None (never raises)."""
    if not isinstance(text, str):
        return None
    match = MODEL_ID_RE.fullmatch(text)
    if match is None:
        return None
    return match["algo"], match["dataset"], int(match["version"])


@dataclass(frozen=True)
class Layout:
    """Every path the pipeline reads or writes, derived from the repository root."""

    root: Path = Path(".")

    def raw(self, dataset: str, date: str) -> Path:
        return self.root / "data" / "raw" / f"{dataset}_raw_{date}.csv"

    def interim(self, dataset: str, part: str, date: str) -> Path:
        return self.root / "data" / "interim" / f"{dataset}-{part}_interim_{date}.csv"

    def processed_dir(self, dataset: str) -> Path:
        return self.root / "data" / "processed" / dataset

    def processed(self, dataset: str, part: str, date: str, ext: str = "csv") -> Path:
        return self.processed_dir(dataset) / f"{dataset}-{part}_processed_{date}.{ext}"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model(self, algo: str, dataset: str, version: int) -> Path:
        """The model file: a plain scikit-learn Pipeline, joblib-pickled."""
        return self.models_dir / f"{model_id(algo, dataset, version)}.pkl"

    def card(self, algo: str, dataset: str, version: int) -> Path:
        """The model card beside the model file: everything else about it, as JSON."""
        return self.models_dir / f"{model_id(algo, dataset, version)}.json"

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

    @property
    def lock(self) -> Path:
        """dvc.lock: the md5 of every output of the last run, committed to git."""
        return self.root / "dvc.lock"
