"""tune@<dataset>-<algo> in a real DVC pipeline: train depends on its tuned file as a params
file, picks the values up, and a rerun of the search writes the same file byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tabml.files import read_json, read_yaml
from tabml.layout import Layout
from tabml.tuning import SPACES
from tests.helpers import copy_repo, credit_only, dvc, git, ran_stages
from tests.stage_deps import code_files

pytestmark = pytest.mark.pipeline

# What dvc.yaml declares for tuning (the same text belongs in the real dvc.yaml, before
# train): one tune stage per dataset and algorithm, like train, so train can always depend
# on its tuned file; an algorithm missing from tune.algos gets {} at once. ``CODE`` stands
# for the code files of stages.tune (tests/stage_deps.py derives them from its imports).
TUNE_STAGE = """
tune:
  matrix:
    dataset: ${datasets}
    algo: ${train.algos}
  cmd: python -m stages.tune --dataset ${item.dataset} --algo ${item.algo}
  deps:
    - CODE
    - data/processed/${item.dataset}
  params:
    - datasets.${item.dataset}
    - split.seed
    - train.cv_folds
    - train.cv_rows
    - train.${item.algo}
    - evaluate.metric
    - evaluate.threshold
    - evaluate.costs
    - tune
  outs:
    - tuned/${item.dataset}-${item.algo}.yaml:
        cache: false
    - metrics/tune/${item.dataset}-${item.algo}.json:
        cache: false
"""
TRAIN_PARAMS_FILE = "tuned/${item.dataset}-${item.algo}.yaml"  # train's extra params entry
TUNE_METRICS = "metrics/tune"  # in dvc.yaml's top-level metrics list


def stage_deps(repo: Path, module: str) -> list[str]:
    """The code deps of a stage in dvc.yaml's order: its script, stages/__init__.py, then
    the package files sorted."""
    script = module.replace(".", "/") + ".py"
    rest = code_files(module, repo) - {script, "stages/__init__.py"}
    return [script, "stages/__init__.py", *sorted(rest)]


def enable_tune(repo: Path, algos: list[str], trials: int) -> None:
    """Patch the copy's dvc.yaml and params.yaml as the real ones will be: the tune stage
    before train; train's code deps as its imports say (it reads tabml.tuning) and its
    tuned file as a params dependency; metrics/tune among the metrics. Then ``tune.algos``
    and ``tune.trials`` in params.yaml. A dvc.yaml that has a tune stage already is kept."""
    path = repo / "dvc.yaml"
    pipeline = yaml.safe_load(path.read_text())
    if "tune" not in pipeline["stages"]:
        tune = yaml.safe_load(TUNE_STAGE)["tune"]
        tune["deps"] = [*stage_deps(repo, "stages.tune"), *tune["deps"][1:]]
        stages = {}
        for name, stage in pipeline["stages"].items():
            if name == "train":
                stages["tune"] = tune
                data = [d for d in stage["deps"] if not d.endswith(".py")]
                stage["deps"] = [*stage_deps(repo, "stages.train"), *data]
                stage["params"].append({TRAIN_PARAMS_FILE: None})
            stages[name] = stage
        pipeline["stages"] = stages
        pipeline["metrics"].append(TUNE_METRICS)
        path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tune"] = {"algos": algos, "trials": trials, "timeout": None, "seed": 42}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_tune_feeds_train_through_dvc_and_reruns_to_the_same_file(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo", credit_only)
    enable_tune(repo, ["lr"], trials=6)
    (repo / "dvc.lock").unlink(missing_ok=True)  # the committed lock is the real params'
    layout = Layout(repo)

    proc = dvc("repro", "train@credit-lr", "tune@credit-rf", cwd=repo)

    assert {"tune@credit-lr", "tune@credit-rf", "train@credit-lr"} <= ran_stages(proc.stdout)
    tuned = read_yaml(layout.tuned("credit", "lr"))
    assert set(tuned) == set(SPACES["lr"])
    assert read_yaml(layout.tuned("credit", "rf")) == {}  # not in tune.algos: off
    summary = read_json(layout.tune_metrics("credit", "lr"))
    assert summary["trials"] == 6 and summary["params"] == tuned
    assert summary["best"]["cv_mean"] >= summary["defaults"]["cv_mean"]
    # train fitted with the tuned values, on the CV the search scored them by
    card = json.loads(layout.card("lr", "credit", 1).read_text())
    assert {key: card["params"]["lr"][key] for key in tuned} == tuned
    assert card["cv"]["metrics"]["roc_auc"]["mean"] == summary["best"]["cv_mean"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert lock["stages"]["train@credit-lr"]["params"]["tuned/credit-lr.yaml"] == tuned
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "tuned", cwd=repo)
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    assert json.dumps(tuned)[1:-1] in json.dumps(shown)  # dvc exp show lists the values

    first = layout.tuned("credit", "lr").read_bytes()
    proc = dvc("repro", "--force", "--single-item", "tune@credit-lr", cwd=repo)

    assert ran_stages(proc.stdout) == {"tune@credit-lr"}
    assert layout.tuned("credit", "lr").read_bytes() == first
    # the same tuned values: train stays up to date
    assert ran_stages(dvc("repro", "train@credit-lr", cwd=repo).stdout) == set()
