"""notebooks/: each notebook is valid nbformat 4, named by the convention, committed without
outputs; the example one scores the champion with joblib, json and pandas only.

The notebook runs without a Jupyter kernel: its code cells, concatenated, in a fresh
``.venv`` python (matplotlib on Agg), pointed at the project the serving tests build through
``TABML_PROJECT``. What it prints is checked against what ``evaluate`` wrote.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.helpers import REPO, without_coverage
from tests.naming import naming_problem
from tests.serving.conftest import DATASET

NOTEBOOKS = REPO / "notebooks"
EXAMPLE = NOTEBOOKS / "01_score-champion_tabml.ipynb"
OURS = ("tabml", "stages", "tools", "tests")


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def run_notebook(
    path: Path, project: Path, cwd: Path, after: str = ""
) -> subprocess.CompletedProcess:
    """The code cells of ``path`` as one script (then ``after``), in a new interpreter."""
    cells = nbformat.read(path, as_version=4).cells
    code = "\n\n".join(cell.source for cell in cells if cell.cell_type == "code")
    script = cwd / f"{path.stem}.py"
    script.write_text(code + "\n\n" + after)
    env = {**without_coverage(), "MPLBACKEND": "Agg", "TABML_PROJECT": str(project)}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_notebook_exists() -> None:
    assert EXAMPLE in notebooks()
    assert (NOTEBOOKS / "README.md").is_file()


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_is_valid_named_and_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == "python3"
    assert naming_problem(path.relative_to(REPO)) is None
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    # Each step is explained: a markdown cell before every code cell.
    kinds = [cell.cell_type for cell in nb.cells]
    assert all(kinds[i - 1] == "markdown" for i, kind in enumerate(kinds) if kind == "code"), kinds


def test_example_notebook_scores_the_champion_as_evaluate_did(
    project: Path, tmp_path: Path
) -> None:
    board = json.loads((project / "metrics" / "leaderboard" / f"{DATASET}.json").read_text())
    model_id = board["champion_model"]
    assert model_id is not None, board  # the serving project's params promote one
    algo = model_id.split("_")[0]
    figure = tmp_path / "histogram.png"
    check = (
        f"import sys\nfig.savefig({str(figure)!r})\n"
        f"ours = sorted(m for m in sys.modules if m.split('.')[0] in {OURS!r})\n"
        "print('repository modules:', ours)\n"
    )

    proc = run_notebook(EXAMPLE, project, tmp_path, check)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert f"champion of {DATASET}: {model_id}\n{board['reason']}\n" in out
    # The counts evaluate wrote for the confusion matrix (at the card's threshold).
    (confusion,) = (project / "plots" / "data" / "confusion" / DATASET).glob(
        f"confusion_{DATASET}-{algo}_*.csv"
    )
    rows = list(csv.DictReader(confusion.open()))
    card = json.loads((project / "models" / DATASET / f"{model_id}.json").read_text())
    positive = card["positive_class"]
    total = sum(int(r["count"]) for r in rows)
    flagged = sum(int(r["count"]) for r in rows if r["predicted"] == positive)
    right = sum(int(r["count"]) for r in rows if r["predicted"] == r["actual"])
    threshold = card.get("threshold", 0.5)
    assert (
        f"scored {total} rows with {model_id}: {flagged} predicted {positive!r}, "
        f"accuracy {right / total:.3f} at threshold {threshold:g}\n"
    ) in out, out
    assert "repository modules: []" in out
    assert figure.stat().st_size > 10_000


REASON = "no model passed the gate: best CV roc_auc 0.61 < evaluate.min_score 0.7"


@pytest.mark.parametrize(
    ("board", "says"),
    [
        (
            {
                "champion": None,
                "champion_model": None,
                "reason": REASON,
                "models": {a: {"model_id": f"{a}_{DATASET}_v1"} for a in ("xgb", "lr")},
            },
            f"{DATASET} has no champion: {REASON} (to look at a model anyway, set MODEL_ID to "
            f"one of xgb_{DATASET}_v1, lr_{DATASET}_v1)",
        ),
        (
            {"best_model": f"xgb_{DATASET}_v1", "models": {"xgb": f"xgb_{DATASET}_v1"}},
            "{board} has no champion_model (an older evaluate wrote it): run `make repro` to "
            "rewrite it",
        ),
    ],
    ids=["gate", "old-leaderboard"],
)
def test_example_notebook_stops_in_one_line_without_a_champion(
    tmp_path: Path, board: dict, says: str
) -> None:
    """No champion (the best model missed the promotion gate), or a leaderboard from before
    champions: one clear line, nothing loaded."""
    path = tmp_path / "project" / "metrics" / "leaderboard" / f"{DATASET}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(board))
    work = tmp_path / "work"
    work.mkdir()

    proc = run_notebook(EXAMPLE, tmp_path / "project", work)

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == says.format(board=path)
    assert "scored" not in proc.stdout


def test_project_root_defaults_to_the_folder_above_notebooks(tmp_path: Path) -> None:
    """Jupyter starts a notebook in its folder: the parameter cell finds the project above
    it; TABML_PROJECT, when set, wins."""
    cells = nbformat.read(EXAMPLE, as_version=4).cells
    params = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    folder = tmp_path / "checkout" / "notebooks"
    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "TABML_PROJECT"}
    for extra, expected in (({}, tmp_path / "checkout"), ({"TABML_PROJECT": "/x"}, Path("/x"))):
        proc = subprocess.run(
            [sys.executable, "-c", params.source + "\nprint(PROJECT)"],
            cwd=folder,
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        assert proc.stdout.splitlines()[-1] == str(expected)


def test_jupyter_checkpoints_stay_out_of_git_and_pass_the_naming_check(tmp_path: Path) -> None:
    """Opening a notebook in Jupyter leaves notebooks/.ipynb_checkpoints/<name>-checkpoint.ipynb:
    git ignores it, and its name still passes the check of the repository's tree."""
    from tests.naming import naming_violations

    checkpoint = tmp_path / "notebooks" / ".ipynb_checkpoints" / f"{EXAMPLE.stem}-checkpoint.ipynb"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("{}")
    assert naming_violations(tmp_path) == (1, [])
    assert ".ipynb_checkpoints/" in (NOTEBOOKS / ".gitignore").read_text().splitlines()
