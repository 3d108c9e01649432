"""DVC draws evaluate's confusion counts with the repository's own template.

evaluate writes the confusion data as 4 rows of counts (tabml.evaluation.confusion_counts);
DVC's built-in ``confusion`` template counts rows, so dvc.yaml points plots/data/confusion at
``.dvc/plots/confusion_counts.json``, which sums the ``count`` column. This runs the real
``dvc plots show --json`` on a tiny repository holding that template and dvc.yaml's own plot
definition, then applies the data transforms of the spec DVC renders to the data it embeds.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tabml.evaluation import confusion_counts
from tabml.files import write_csv
from tests.helpers import REPO, dvc

TEMPLATE = REPO / ".dvc" / "plots" / "confusion_counts.json"


def confusion_definition() -> dict[str, Any]:
    """The plots/data/confusion entry of the repository's dvc.yaml, as written there."""
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    (entry,) = [p for p in plots if isinstance(p, dict) and "plots/data/confusion" in p]
    return entry


def cell_totals(spec: dict[str, Any]) -> dict[tuple[str, str], float]:
    """The (actual, predicted) -> xy_count that the spec's transforms compute from its data:
    the calculate and aggregate steps the template starts with, applied as vega would."""
    rows = [dict(row) for row in spec["data"]["values"]]
    calculate, aggregate = spec["spec"]["transform"][:2]
    assert calculate == {"calculate": "toNumber(datum.count)", "as": "row_count"}
    (op,) = aggregate["aggregate"]
    assert op == {"op": "sum", "field": "row_count", "as": "xy_count"}
    for row in rows:
        row["row_count"] = float(row["count"])  # DVC embeds CSV cells as text
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        totals[tuple(row[key] for key in aggregate["groupby"])] += row["row_count"]
    return dict(totals)


def test_dvc_plots_show_sums_the_confusion_counts(tmp_path: Path) -> None:
    assert dvc("init", "--no-scm", "-q", cwd=tmp_path).returncode == 0
    (tmp_path / ".dvc" / "plots").mkdir()
    shutil.copy(TEMPLATE, tmp_path / ".dvc" / "plots" / TEMPLATE.name)
    entry = confusion_definition()
    assert entry["plots/data/confusion"]["template"] == "confusion_counts"
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": [entry]}), encoding="utf-8")
    y = np.array([0] * 70 + [1] * 30)
    predicted = np.array([0] * 60 + [1] * 10 + [0] * 5 + [1] * 25)
    data = tmp_path / "plots" / "data" / "confusion" / "tiny"
    write_csv(
        data / "confusion_tiny-lr_20251130.csv", confusion_counts(y, predicted, ("no", "yes"))
    )

    shown = dvc("plots", "show", "--json", cwd=tmp_path)

    (plot,) = json.loads(shown.stdout)["data"][
        "plots/data/confusion/tiny/confusion_tiny-lr_20251130.csv"
    ]
    spec = plot["content"]
    assert spec["description"].startswith("DVC's built-in confusion template")
    assert cell_totals(spec) == {
        ("no", "no"): 60,
        ("no", "yes"): 10,
        ("yes", "no"): 5,
        ("yes", "yes"): 25,
    }
    assert spec["spec"]["encoding"]["x"]["field"] == "predicted"
    assert spec["spec"]["encoding"]["y"]["field"] == "actual"
    assert "WARNING" not in shown.stdout + shown.stderr
