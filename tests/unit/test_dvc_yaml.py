"""dvc.yaml spells the pipeline's paths with templating; Layout spells them in Python.

These tests resolve dvc.yaml with DVC itself and check the two agree, that every stage
depends on its own script, and that each stage lists the params sections it reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.common import Layout
from stages.params import load_params

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


def rel(path: Path) -> str:
    """Layout(Path()) paths as dvc.yaml spells them (relative, no leading ./)."""
    return str(path)


def test_stage_set_follows_params(stages: dict) -> None:
    params = load_params(ROOT / "params.yaml")
    expected = {"check-params", "evaluate", "plot"}
    for name in params.datasets:
        expected |= {f"ingest@{name}", f"split@{name}", f"featurize@{name}"}
        expected |= {f"train@{name}-{algo}" for algo in params.train.algos}
    assert set(stages) == expected


def test_outputs_match_layout(stages: dict) -> None:
    params, layout = load_params(ROOT / "params.yaml"), Layout(Path())
    version = params.train.model_version
    for name, spec in params.datasets.items():
        date = spec.snapshot
        assert stages[f"ingest@{name}"]["outs"] == {rel(layout.raw(name, date))}
        assert stages[f"split@{name}"]["outs"] == {
            rel(layout.interim(name, "train", date)),
            rel(layout.interim(name, "test", date)),
        }
        assert stages[f"featurize@{name}"]["outs"] == {rel(layout.processed_dir(name))}
        for part in ("train", "test"):
            assert layout.processed(name, part, date).parent == layout.processed_dir(name)
        for algo in params.train.algos:
            stage = stages[f"train@{name}-{algo}"]
            assert stage["outs"] == {
                rel(layout.model(algo, name, version)),
                rel(layout.train_metrics_dir(name, algo)),
            }
            assert rel(layout.processed_dir(name)) in stage["deps"]
            assert {"train.model_version", f"train.{algo}", f"datasets.{name}"} <= stage["params"]
    assert stages["evaluate"]["outs"] == {
        rel(layout.test_metrics_dir),
        rel(layout.leaderboard_dir),
        rel(layout.plot_data_dir),
    }
    assert stages["plot"]["outs"] == {rel(layout.figures_dir), rel(layout.report)}


def test_every_stage_depends_on_its_own_script_and_the_shared_modules(stages: dict) -> None:
    for name, stage in stages.items():
        module = stage["cmd"].split()[2]  # python -m stages.<module>
        script = module.replace(".", "/") + ".py"
        assert script in stage["deps"], f"{name} does not depend on {script}"
        assert {"stages/params.py", "stages/errors.py", "stages/common.py"} <= stage["deps"], name
        assert (ROOT / script).is_file()


def test_check_params_tracks_the_whole_file(stages: dict) -> None:
    assert stages["check-params"]["params"] == {"<all>"}
