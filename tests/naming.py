"""The project's naming conventions (README, "Naming conventions"), checked file by file.

Tests only: no stage depends on these checks. The names themselves come from
:class:`tabml.layout.Layout`; these patterns say what a conforming name looks like, so a test
can check Layout, and every file a run leaves on disk, against them:

- data:    ``data/<phase>/<dataset>[-<part>]_<phase>_<YYYYMMDD>.<ext>``, phase in raw,
  interim, processed; raw files sit in ``data/raw/``, interim and processed ones in
  ``data/<phase>/<dataset>/``. ``<part>`` is a word (``train``, ``features``) or, for the
  partitions the Dask engine writes, a word and a five-digit partition number
  (``train-00000``); ext csv, pkl, json, npz or parquet;
- models:  ``models/<dataset>/<algo>_<dataset>_v<N>.pkl``, its card ``.json`` and its
  out-of-fold predictions ``.oof.csv`` beside it;
- figures: ``plots/figures/<dataset>/<topic>_<dataset>_<YYYYMMDD>.png``; plot data for DVC:
  ``plots/data/<topic>/<dataset>/<topic>_<dataset>-<algo>_<YYYYMMDD>.csv``;
- notebooks: ``notebooks/<NN>_<topic>_<author>.ipynb``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tabml.layout import MODEL_ID_PATTERN, NAME_PATTERN

_PART = r"(?:-(?P<part>[a-z0-9]+))?"
# A data part may carry a partition number: <dataset>-train-00000_interim_<date>.parquet.
_DATA_PART = r"(?:-(?P<part>[a-z0-9]+)(?:-(?P<partition>[0-9]{5}))?)?"
DATA_NAME_RE = re.compile(
    # raw snapshots stay CSV (the lookahead): Parquet and npz are for interim/processed data
    rf"^(?P<dataset>{NAME_PATTERN}){_DATA_PART}_(?!raw_\d{{8}}\.(?!csv\Z))"
    r"(?P<phase>raw|interim|processed)"
    r"_(?P<date>\d{8})\.(?P<ext>csv|pkl|json|npz|parquet)\Z"
)
# The model file and its card: the same model id, two extensions.
MODEL_NAME_RE = re.compile(rf"^{MODEL_ID_PATTERN}\.(?P<ext>pkl|json|oof\.csv)\Z")
FIGURE_NAME_RE = re.compile(
    rf"^(?P<topic>{NAME_PATTERN})_(?P<dataset>{NAME_PATTERN}){_PART}_(?P<date>\d{{8}})"
    r"\.(?P<ext>png|csv)\Z"
)
NOTEBOOK_NAME_RE = re.compile(r"^\d{2}_[a-z0-9-]+_[a-z0-9-]+\.ipynb\Z")

_NOT_OUTPUTS = frozenset({".gitignore", ".gitkeep", "README.md"})


def naming_problem(rel: Path) -> str | None:
    """Why ``rel`` (relative to the repo root) breaks the naming conventions, or None."""
    parts, name = rel.parts, rel.name
    if parts[0] == "data":
        match = DATA_NAME_RE.match(name)
        if not match:
            return (
                "data files are <dataset>[-<part>]_<phase>_<YYYYMMDD>.csv (or .pkl, .json, "
                ".npz, .parquet; a Dask partition's part is <part>-<NNNNN>)"
            )
        if match["phase"] != parts[1]:
            return f"phase {match['phase']!r} in the name but the file is in data/{parts[1]}/"
        if parts[1] == "raw" and (len(parts) != 3 or match["part"] is not None):
            return "raw files are data/raw/<dataset>_raw_<YYYYMMDD>.csv"
        if parts[1] != "raw" and (len(parts) != 4 or parts[2] != match["dataset"]):
            return f"{parts[1]} files live in data/{parts[1]}/<dataset>/"
        return None
    if parts[0] == "models":
        match = MODEL_NAME_RE.match(name)
        if match and len(parts) == 3 and parts[1] == match["dataset"]:
            return None
        return (
            "models are models/<dataset>/<algo>_<dataset>_v<N>.pkl, with the card "
            "<algo>_<dataset>_v<N>.json"
        )
    if parts[0] == "notebooks":
        return None if NOTEBOOK_NAME_RE.match(name) else "notebooks are <NN>_<topic>_<author>.ipynb"
    if rel == Path("plots/report.html"):
        return None
    match = FIGURE_NAME_RE.match(name)
    if parts[:2] == ("plots", "figures"):
        ok = match and match["ext"] == "png" and len(parts) == 4 and parts[2] == match["dataset"]
        return (
            None if ok else "figures are plots/figures/<dataset>/<topic>_<dataset>_<YYYYMMDD>.png"
        )
    if parts[:2] == ("plots", "data") and len(parts) == 5:
        ok = (
            match
            and match["ext"] == "csv"
            and match["topic"] == parts[2]
            and match["dataset"] == parts[3]
        )
        return (
            None
            if ok
            else "plot data is plots/data/<topic>/<dataset>/<topic>_<dataset>-<algo>_<date>.csv"
        )
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
            problem = naming_problem(rel)
            if problem:
                problems.append(f"{rel}: {problem}")
    return checked, problems
