"""dvc.yaml against the code: paths agree with Layout, and each stage's deps are exactly the
code it runs (derived from its imports by tests/stage_deps.py), so an edit reruns exactly
the stages it can affect — no stale outputs, no needless retraining."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tabml.layout import Layout
from tabml.params import load_params
from tests.stage_deps import code_files, dep_problems

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stages() -> dict:
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {
            stage.addressing: {
                "cmd": stage.cmd,
                "deps": {str(Path(d.def_path)) for d in stage.deps},
                "outs": {str(Path(o.def_path)) for o in stage.outs},
                # An empty key list (`- params.yaml:`) means every key of the file.
                "params": {
                    key
                    for d in stage.deps
                    if isinstance(d, ParamsDependency)
                    for key in (d.params or ["<all>"])
                },
            }
            for stage in repo.index.stages
        }


def test_stage_set_follows_params(stages: dict) -> None:
    params = load_params(ROOT / "params.yaml")
    expected = {"check-params", "report"}
    for name in params.datasets:
        expected |= {f"{stage}@{name}" for stage in ("ingest", "split", "featurize")}
        expected |= {f"evaluate@{name}", f"plot@{name}"}
        expected |= {f"train@{name}-{algo}" for algo in params.train.algos}
        # one tune stage per trained algorithm, whether tune.algos lists it or not (off: {})
        expected |= {f"tune@{name}-{algo}" for algo in params.train.algos}
    assert set(stages) == expected


def test_the_committed_lock_records_exactly_the_stages_of_dvc_yaml(stages: dict) -> None:
    """DVC keeps the entry of a stage dvc.yaml no longer has (it kept the old single
    evaluate and plot stages): stale entries name outputs nothing writes any more."""
    from ruamel.yaml import YAML

    lock = YAML(typ="safe").load((ROOT / "dvc.lock").read_text(encoding="utf-8"))
    assert sorted(lock["stages"]) == sorted(stages)


def test_outputs_match_layout(stages: dict) -> None:
    params, layout = load_params(ROOT / "params.yaml"), Layout(Path())
    version = params.train.model_version
    for name, spec in params.datasets.items():
        date = spec.snapshot
        assert stages[f"ingest@{name}"]["outs"] == {str(layout.raw(name, date))}
        assert stages[f"split@{name}"]["outs"] == {str(layout.interim_dir(name))}
        for part in ("train", "test"):
            assert layout.interim(name, part, date).parent == layout.interim_dir(name)
            assert layout.processed(name, part, date).parent == layout.processed_dir(name)
        assert stages[f"featurize@{name}"]["outs"] == {str(layout.processed_dir(name))}
        for algo in params.train.algos:
            stage = stages[f"train@{name}-{algo}"]
            assert stage["outs"] == {
                str(layout.model(algo, name, version)),
                str(layout.card(algo, name, version)),
                str(layout.oof(algo, name, version)),
                str(layout.train_metrics_dir(name, algo)),
            }
            assert layout.model(algo, name, version).parent == layout.dataset_models_dir(name)
            tune = stages[f"tune@{name}-{algo}"]
            assert tune["outs"] == {
                str(layout.tuned(name, algo)),
                str(layout.tune_metrics(name, algo)),
            }
            assert str(layout.tuned(name, algo)) in stage["deps"]  # train reads the tuned file
            assert str(layout.processed_dir(name)) in stage["deps"]
            assert {"train.model_version", f"train.{algo}", f"datasets.{name}"} <= stage["params"]
        evaluate = stages[f"evaluate@{name}"]
        topics = ("roc", "pr", "confusion", "calibration", "importance", "loss")
        plot_dirs = {str(layout.plot_data_dir(topic, name)) for topic in topics}
        assert evaluate["outs"] == {
            str(layout.test_metrics_dir(name)),
            str(layout.leaderboard(name)),
            *plot_dirs,
        }
        # its own dataset's data and models only: another dataset's change never reruns it
        assert {str(layout.interim_dir(name)), str(layout.dataset_models_dir(name))} <= set(
            evaluate["deps"]
        )
        assert not {d for d in evaluate["deps"] if d.startswith(("data/", "models/"))} - {
            str(layout.interim_dir(name)),
            str(layout.dataset_models_dir(name)),
        }
        plot = stages[f"plot@{name}"]
        assert plot["outs"] == {str(layout.figures_dir(name))}
        assert plot_dirs | {str(layout.raw(name, date))} <= plot["deps"]
        # each ingest depends on its dataset's own folder of local files, not on data/external
        assert f"data/external/{name}" in stages[f"ingest@{name}"]["deps"]
        assert "data/external" not in stages[f"ingest@{name}"]["deps"]
    assert stages["report"]["outs"] == {str(layout.report)}


def test_every_stage_lists_exactly_the_code_it_runs() -> None:
    assert dep_problems(ROOT / "dvc.yaml") == []


def test_a_missing_or_needless_code_dep_is_caught(tmp_path: Path) -> None:
    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    split = text.index("  split:")
    dropped = text.index("        - src/tabml/schema.py\n", split)  # split imports tabml.schema
    broken = text[:dropped] + text[dropped:].replace("        - src/tabml/schema.py\n", "", 1)
    extra = text.replace(
        "      - stages/check_params.py\n",
        "      - stages/check_params.py\n      - src/tabml/artifact.py\n",
        1,
    )
    (tmp_path / "dvc.yaml").write_text(broken, encoding="utf-8")
    assert dep_problems(tmp_path / "dvc.yaml", ROOT) == [
        "split: runs src/tabml/schema.py (stages.split) but dvc.yaml does not list it"
    ]
    (tmp_path / "dvc.yaml").write_text(extra, encoding="utf-8")
    assert dep_problems(tmp_path / "dvc.yaml", ROOT) == [
        "check-params: lists src/tabml/artifact.py, which stages.check_params never runs"
    ]


def test_derived_code_follows_function_level_and_skips_type_checking_imports(
    tmp_path: Path,
) -> None:
    files = {
        "stages/__init__.py": "",
        "stages/job.py": """
            from typing import TYPE_CHECKING
            from tabml import direct
            if TYPE_CHECKING:
                from tabml import typing_only
            def main():
                from tabml.lazy import thing  # runs when the stage runs
                import numpy  # not ours
        """,
        "src/tabml/__init__.py": "",
        "src/tabml/direct.py": "from .sub import helper\n",
        "src/tabml/sub/__init__.py": "",
        "src/tabml/sub/helper.py": "",
        "src/tabml/lazy.py": "",
        "src/tabml/typing_only.py": "",
    }
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(body), encoding="utf-8")
    assert code_files("stages.job", tmp_path) == {
        "stages/__init__.py",
        "stages/job.py",
        "src/tabml/__init__.py",
        "src/tabml/direct.py",
        "src/tabml/sub/__init__.py",
        "src/tabml/sub/helper.py",
        "src/tabml/lazy.py",
    }


def test_check_params_tracks_the_whole_file(stages: dict) -> None:
    assert stages["check-params"]["params"] == {"<all>"}
