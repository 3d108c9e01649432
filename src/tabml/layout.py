"""Every path the pipeline reads or writes, and the naming rules a server relies on.

File names follow the project conventions (README, "Naming conventions"):

- data:    ``data/<phase>/<dataset>[-<part>]_<phase>_<YYYYMMDD>.<ext>``, phase in raw,
  interim, processed; interim and processed files sit in ``data/<phase>/<dataset>/`` so one
  directory is the whole output of ``split@<dataset>`` or ``featurize@<dataset>`` (whatever
  the engine writes there: CSV, npz or Parquet partitions);
- models:  ``models/<dataset>/<algo>_<dataset>_v<N>.pkl`` and its card
  ``models/<dataset>/<algo>_<dataset>_v<N>.json`` (one directory per dataset, so that
  ``evaluate@<dataset>`` depends on its own models only);
- figures: ``plots/figures/<dataset>/<topic>_<dataset>_<YYYYMMDD>.png``; plot data for DVC:
  ``plots/data/<topic>/<dataset>/<topic>_<dataset>-<algo>_<YYYYMMDD>.csv``; test metrics
  ``metrics/test/<dataset>/<dataset>-<algo>.json``. Per-dataset directories: evaluate and
  plot run once per dataset, each owning its own outputs.

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

    def interim_dir(self, dataset: str) -> Path:
        return self.root / "data" / "interim" / dataset

    def interim(self, dataset: str, part: str, date: str, ext: str = "csv") -> Path:
        return self.interim_dir(dataset) / f"{dataset}-{part}_interim_{date}.{ext}"

    def processed_dir(self, dataset: str) -> Path:
        return self.root / "data" / "processed" / dataset

    def processed(self, dataset: str, part: str, date: str, ext: str = "csv") -> Path:
        return self.processed_dir(dataset) / f"{dataset}-{part}_processed_{date}.{ext}"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def dataset_models_dir(self, dataset: str) -> Path:
        return self.models_dir / dataset

    def model(self, algo: str, dataset: str, version: int) -> Path:
        """The model file: a plain scikit-learn Pipeline, joblib-pickled."""
        return self.dataset_models_dir(dataset) / f"{model_id(algo, dataset, version)}.pkl"

    def card(self, algo: str, dataset: str, version: int) -> Path:
        """The model card beside the model file: everything else about it, as JSON."""
        return self.dataset_models_dir(dataset) / f"{model_id(algo, dataset, version)}.json"

    def oof(self, algo: str, dataset: str, version: int) -> Path:
        """The model's out-of-fold predictions on the train split (row, fold, y, proba):
        what its CV scores and decision threshold were computed from."""
        return self.dataset_models_dir(dataset) / f"{model_id(algo, dataset, version)}.oof.csv"

    def tuned(self, dataset: str, algo: str) -> Path:
        """The best hyperparameters ``tune@<dataset>-<algo>`` found (``{}`` while tuning is
        off): a params file of train, tracked by git."""
        return self.root / "tuned" / f"{dataset}-{algo}.yaml"

    def tune_metrics(self, dataset: str, algo: str) -> Path:
        """What that search found and cost (metric, best and default CV scores, trials)."""
        return self.root / "metrics" / "tune" / f"{dataset}-{algo}.json"

    def train_metrics_dir(self, dataset: str, algo: str) -> Path:
        return self.root / "metrics" / "train" / f"{dataset}-{algo}"

    def test_metrics_dir(self, dataset: str) -> Path:
        return self.root / "metrics" / "test" / dataset

    def test_metrics(self, dataset: str, algo: str) -> Path:
        return self.test_metrics_dir(dataset) / f"{dataset}-{algo}.json"

    @property
    def leaderboard_dir(self) -> Path:
        return self.root / "metrics" / "leaderboard"

    def leaderboard(self, dataset: str) -> Path:
        return self.leaderboard_dir / f"{dataset}.json"

    def plot_data_dir(self, topic: str, dataset: str) -> Path:
        """One DVC plot directory per topic (dvc.yaml's ``plots:``), one subdirectory per
        dataset (the output of ``evaluate@<dataset>``)."""
        return self.root / "plots" / "data" / topic / dataset

    def plot_data(self, topic: str, dataset: str, algo: str, date: str) -> Path:
        return self.plot_data_dir(topic, dataset) / f"{topic}_{dataset}-{algo}_{date}.csv"

    def figures_dir(self, dataset: str) -> Path:
        return self.root / "plots" / "figures" / dataset

    def figure(self, topic: str, dataset: str, date: str) -> Path:
        return self.figures_dir(dataset) / f"{topic}_{dataset}_{date}.png"

    @property
    def report(self) -> Path:
        return self.root / "plots" / "report.html"

    @property
    def lock(self) -> Path:
        """dvc.lock: the md5 of every output of the last run, committed to git."""
        return self.root / "dvc.lock"

    # --- partitions (the Dask engine): <dataset>-<part>-<NNNNN>_<phase>_<date>.parquet -----

    def interim_part(self, dataset: str, part: str, index: int, date: str) -> Path:
        """One Parquet partition of a split (``part`` train or test) written by the Dask
        engine; five digits keep the files in partition order when sorted by name."""
        return self.interim(dataset, f"{part}-{index:05d}", date, "parquet")

    def interim_parts(self, dataset: str, part: str, date: str) -> list[Path]:
        """The Parquet partitions of a split on disk, in partition order."""
        return _partitions(self.interim_dir(dataset), dataset, part, "interim", date)

    def processed_part(self, dataset: str, part: str, index: int, date: str) -> Path:
        """One Parquet partition of processed features (the Dask engine)."""
        return self.processed(dataset, f"{part}-{index:05d}", date, "parquet")

    def processed_parts(self, dataset: str, part: str, date: str) -> list[Path]:
        """The Parquet partitions of processed features on disk, in partition order."""
        return _partitions(self.processed_dir(dataset), dataset, part, "processed", date)


def _partitions(folder: Path, dataset: str, part: str, phase: str, date: str) -> list[Path]:
    pattern = f"{dataset}-{part}-{'[0-9]' * 5}_{phase}_{date}.parquet"
    return sorted(folder.glob(pattern))
