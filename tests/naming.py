"""The project's naming conventions (README, "Naming conventions"), checked file by file.

Tests only: no stage depends on these checks. The names themselves come from
:class:`tabml.layout.Layout`; these patterns say what a conforming name looks like, so a test
can check Layout, and every file a run leaves on disk, against them:

- data:    ``data/<phase>/<dataset>[-<part>]_<phase>_<YYYYMMDD>.<csv|pkl|json>``, phase in raw,
  interim, processed; processed files sit in ``data/processed/<dataset>/`` (featurize writes
  the processed CSVs, the transformer ``.pkl`` and its ``-features_processed_<date>.json``);
- models:  ``models/<algo>_<dataset>_v<N>.pkl`` and its card ``models/<algo>_<dataset>_v<N>.json``;
- figures: ``plots/figures/<topic>_<dataset>_<YYYYMMDD>.png``; plot data for DVC:
  ``plots/data/<topic>/<topic>_<dataset>-<algo>_<YYYYMMDD>.csv``;
- notebooks: ``notebooks/<NN>_<topic>_<author>.ipynb``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tabml.layout import MODEL_ID_PATTERN, NAME_PATTERN

_PART = r"(?:-(?P<part>[a-z0-9]+))?"
DATA_NAME_RE = re.compile(
    rf"^(?P<dataset>{NAME_PATTERN}){_PART}_(?P<phase>raw|interim|processed)_(?P<date>\d{{8}})"
    r"\.(?P<ext>csv|pkl|json)\Z"
)
# The model file and its card: the same model id, two extensions.
MODEL_NAME_RE = re.compile(rf"^{MODEL_ID_PATTERN}\.(?P<ext>pkl|json)\Z")
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
            return "data files are <dataset>[-<part>]_<phase>_<YYYYMMDD>.csv (or .pkl, .json)"
        if match["phase"] != parts[1]:
            return f"phase {match['phase']!r} in the name but the file is in data/{parts[1]}/"
        if parts[1] == "processed" and (len(parts) != 4 or parts[2] != match["dataset"]):
            return "processed files live in data/processed/<dataset>/"
        return None
    if parts[0] == "models":
        if MODEL_NAME_RE.match(name):
            return None
        return "models are <algo>_<dataset>_v<N>.pkl, with the card <algo>_<dataset>_v<N>.json"
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
            problem = naming_problem(rel)
            if problem:
                problems.append(f"{rel}: {problem}")
    return checked, problems
