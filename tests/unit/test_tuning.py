"""tune: a seeded Optuna search scored by train's own CV; its tuned file, read back by train."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import train, tune
from stages.train import decide
from tabml import tuning
from tabml.artifact import read_model
from tabml.errors import DataError, ParamsError
from tabml.files import read_json, read_yaml
from tabml.layout import Layout
from tabml.params import LRParams, RFParams, XGBParams, parse_params
from tabml.tuning import SPACES, cv_score, effective_params, search
from tests.helpers import error_lines, without_coverage
from tests.unit.conftest import REPO, cli, project_params, write_params

HEAVY = {"optuna", "numpy", "pandas", "sklearn", "scipy", "xgboost", "joblib"}


def noisy(n: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A binary problem no model separates: CV scores differ from one setting to another."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 6))
    X[:, 0] += np.where(y == 1, 0.6, -0.6)
    X[:, 1] += np.where(y == 1, 0.3, -0.3)
    return X, y


def params_with(**tune_settings):
    raw = project_params(algos=("lr", "rf"))
    raw["tune"] = {"algos": [], "trials": 30, "timeout": None, "seed": 42, **tune_settings}
    return parse_params(raw)


def recorder(value):
    """A fake CV score (``value(section) -> mean``) that records every section it scores."""
    seen = []

    def score(section):
        seen.append(section)
        return round(float(value(section)), 6), 0.01

    score.seen = seen
    return score


def closeness_to(c: float):
    """Best at C = ``c``: a smooth score over the log scale of lr's C."""
    return lambda section: -((np.log10(section.C) - np.log10(c)) ** 2)


# --- the search --------------------------------------------------------------------------------


def test_a_seeded_search_gives_the_same_best_params_twice():
    params = params_with()
    X, y = noisy()
    runs = [
        search(
            "lr",
            params.train.lr,
            cv_score(params, "lr", X, y, "tiny", decide),
            metric="roc_auc",
            trials=6,
            seed=7,
        )
        for _ in range(2)
    ]

    assert runs[0].best == runs[1].best
    assert runs[0].scores == runs[1].scores
    assert len(set(runs[0].scores)) > 1  # the trials did try different settings


def test_trial_0_is_params_yaml_values_exactly():
    defaults = LRParams(C=0.123456789, class_weight="balanced", max_iter=500)
    score = recorder(closeness_to(3.0))

    result = search("lr", defaults, score, metric="roc_auc", trials=4, seed=0)

    assert score.seen[0] == defaults  # not rounded, not resampled
    assert result.default_mean == result.scores[0] == round(closeness_to(3.0)(defaults), 6)
    assert all(s.max_iter == 500 for s in score.seen)  # what is not searched stays


@pytest.mark.parametrize(
    ("algo", "defaults", "key"),
    [
        ("rf", RFParams(max_depth=None, n_estimators=5), "max_depth"),  # unlimited depth
        ("lr", LRParams(C=1e6), "C"),  # above the range
        ("xgb", XGBParams(reg_lambda=0.0), "reg_lambda"),  # 0 on a log scale
    ],
)
def test_trial_0_keeps_a_value_outside_the_search_range(algo, defaults, key):
    score = recorder(lambda section: 0.5)

    result = search(algo, defaults, score, metric="roc_auc", trials=3, seed=0)

    assert score.seen[0] == defaults
    assert all(SPACES[algo][key].contains(getattr(s, key)) for s in score.seen[1:])
    assert result.best_trial == 0  # all equal: the earliest, params.yaml's, wins
    assert result.best[key] == getattr(defaults, key)


def test_the_best_is_never_worse_than_params_yaml_on_the_same_cv_as_train():
    params = params_with()
    X, y = noisy(seed=3)

    result = search(
        "lr",
        params.train.lr,
        cv_score(params, "lr", X, y, "tiny", decide),
        metric="roc_auc",
        trials=8,
        seed=1,
    )

    untuned, _ = decide("lr", params, X, y, "tiny")  # train's own CV of params.yaml's lr
    assert result.default_mean == untuned.cv["metrics"]["roc_auc"]["mean"]
    assert result.default_std == untuned.cv["metrics"]["roc_auc"]["std"]
    assert result.best_mean >= result.default_mean
    assert result.best_mean == max(result.scores)
    tuned_params = tuning.with_section(params, "lr", tuning.rebuild(params.train.lr, result.best))
    again, _ = decide("lr", tuned_params, X, y, "tiny")
    assert again.cv["metrics"]["roc_auc"]["mean"] == result.best_mean  # what train will see


@pytest.mark.parametrize("metric", ["log_loss", "brier"])
def test_a_lower_is_better_metric_is_minimised(metric):
    # "mean" = C: minimising drives C down, maximising would drive it up
    score = recorder(lambda section: section.C)

    result = search("lr", LRParams(C=1.0), score, metric=metric, trials=12, seed=0)

    assert result.best_mean == min(result.scores) < result.default_mean == 1.0
    assert result.best["C"] < 1.0
    assert not result.higher_is_better
    assert result.summary()["gain"] > 0  # in the metric's own better direction


def test_a_higher_is_better_metric_is_maximised():
    score = recorder(lambda section: section.C)

    result = search("lr", LRParams(C=1.0), score, metric="roc_auc", trials=12, seed=0)

    assert result.best_mean == max(result.scores) > result.default_mean == 1.0
    assert result.higher_is_better


def test_floats_are_scored_with_the_4_significant_digits_the_tuned_file_holds():
    score = recorder(lambda section: section.learning_rate * section.subsample)

    result = search("xgb", XGBParams(), score, metric="roc_auc", trials=6, seed=0)

    searched = [{key: getattr(s, key) for key in SPACES["xgb"]} for s in score.seen[1:]]
    floats = [v for values in searched for v in values.values() if isinstance(v, float)]
    assert floats and all(float(f"{v:.4g}") == v for v in floats)
    assert result.best in searched  # the tuned values are exactly what was scored


def test_timeout_stops_the_search_early_but_runs_trial_0():
    import time

    def slow(section):
        time.sleep(0.2)
        return 0.5, 0.0

    result = search("lr", LRParams(), slow, metric="roc_auc", trials=50, seed=0, timeout=0.1)

    assert 1 <= len(result.scores) < 50


def test_a_trial_whose_score_is_not_a_number_is_skipped():
    score = recorder(lambda section: float("nan") if section.C > 1.0 else section.C)

    result = search("lr", LRParams(C=1.0), score, metric="roc_auc", trials=12, seed=0)

    assert len(result.scores) < 12 and all(np.isfinite(result.scores))
    assert result.best["C"] <= 1.0


def test_params_yaml_values_scoring_not_a_number_stop_the_search_in_one_line():
    score = recorder(lambda section: float("nan"))

    with pytest.raises(DataError) as exc:
        search("lr", LRParams(), score, metric="f1", trials=5, seed=0)

    assert str(exc.value) == (
        "the CV f1 of train.lr as params.yaml sets it is nan: nothing to compare a search "
        "with; choose another evaluate.metric"
    )
    assert len(score.seen) == 1


def test_search_spaces_name_only_existing_params():
    models = {"rf": RFParams(), "xgb": XGBParams(), "lr": LRParams()}
    for algo, space in SPACES.items():
        assert set(space) <= set(type(models[algo]).model_fields), algo
        for key, dim in space.items():  # the ends of every range are valid values
            for end in getattr(dim, "values", None) or (dim.low, dim.high):
                tuning.rebuild(models[algo], {key: end})


# --- the stage ---------------------------------------------------------------------------------


def stage_params(root: Path, **tune_settings) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["tune"] = {"algos": [], "trials": 4, "timeout": None, "seed": 42, **tune_settings}
    write_params(root / "params.yaml", raw)


def test_off_writes_an_empty_mapping_at_once_loading_nothing_heavy(project):
    stage_params(project, algos=[])
    argv = [*cli(project, dataset="tiny"), "--algo", "lr"]
    code = f"""
import json, sys, time
from stages import tune
started = time.monotonic()
code = tune.main({argv!r})
seconds = time.monotonic() - started
print(json.dumps({{"code": code, "seconds": seconds, "modules": sorted(sys.modules)}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=without_coverage(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["code"] == 0
    assert not {m.split(".")[0] for m in out["modules"]} & HEAVY
    assert out["seconds"] < 1.5  # params validation and two small files
    layout = Layout(project)
    assert read_yaml(layout.tuned("tiny", "lr")) == {}
    assert read_json(layout.tune_metrics("tiny", "lr")) == {"trials": 0}


def test_the_stage_tunes_and_train_picks_the_values_up(trained):
    stage_params(trained, algos=["lr"], trials=5)
    layout = Layout(trained)
    argv = [*cli(trained, dataset="tiny"), "--algo", "lr"]

    assert tune.main(argv) == 0
    tuned = read_yaml(layout.tuned("tiny", "lr"))
    first = layout.tuned("tiny", "lr").read_bytes()
    assert set(tuned) == set(SPACES["lr"])
    summary = read_json(layout.tune_metrics("tiny", "lr"))
    assert summary["metric"] == "roc_auc" and summary["trials"] == 5
    assert summary["params"] == tuned
    assert summary["best"]["cv_mean"] >= summary["defaults"]["cv_mean"]

    assert tune.main(argv) == 0  # the same search again: the same file, byte for byte
    assert layout.tuned("tiny", "lr").read_bytes() == first

    assert train.main(argv) == 0  # train's CV of the tuned values: the score tune found
    card = json.loads(layout.card("lr", "tiny", 1).read_text())
    assert {k: card["params"]["lr"][k] for k in tuned} == tuned
    assert card["cv"]["metrics"]["roc_auc"]["mean"] == summary["best"]["cv_mean"]


def test_train_fits_with_the_tuned_values_and_its_card_shows_them(trained):
    path = Layout(trained).tuned("tiny", "lr")
    path.parent.mkdir()
    path.write_text("# tuned\nC: 0.0731\nclass_weight: balanced\n")

    assert train.main([*cli(trained, dataset="tiny"), "--algo", "lr"]) == 0

    model = read_model(Layout(trained), "lr", "tiny", 1)
    assert model.card.params["lr"] == {
        "calibration": "none",
        "C": 0.0731,
        "max_iter": 1000,
        "class_weight": "balanced",
    }
    estimator = model.estimator.get_params()
    assert (estimator["C"], estimator["class_weight"]) == (0.0731, "balanced")


def test_params_refuse_tuning_an_algorithm_train_does_not_train():
    with pytest.raises(ParamsError) as exc:
        params_with(algos=["xgb"])
    assert str(exc.value) == (
        "tune.algos: 'xgb' is not in train.algos (lr, rf): tune only algorithms that train trains"
    )
    with pytest.raises(ParamsError, match=r"^tune.algos: unknown algorithm 'svm' \(allowed: "):
        params_with(algos=["svm"])


def test_params_default_to_tuning_off():
    raw = project_params()
    raw.pop("tune", None)
    assert parse_params(raw).tune.algos == []


# --- the tuned file, read by train -------------------------------------------------------------


def test_effective_params_are_params_yaml_updated_with_the_tuned_file(tmp_path):
    params, layout = params_with(), Layout(tmp_path)
    assert effective_params(params, "tiny", "lr", layout) == params.train.lr  # no file: as is
    path = layout.tuned("tiny", "lr")
    path.parent.mkdir()
    path.write_text("# off\n{}\n")
    assert effective_params(params, "tiny", "lr", layout) == params.train.lr

    path.write_text("C: 0.0731\nclass_weight: balanced\n")

    merged = effective_params(params, "tiny", "lr", layout)
    assert (merged.C, merged.class_weight) == (0.0731, "balanced")
    assert merged.max_iter == params.train.lr.max_iter
    with_tuned = tuning.with_tuned(params, "tiny", "lr", layout)
    assert with_tuned.train.lr == merged and with_tuned.train.rf == params.train.rf


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("C: -1.0\n", "train.lr.C = -1.0: out of range, allowed (0.0, 1000000000000.0]"),
        ("C: one\n", "train.lr.C = 'one': expected a number"),
        ("gamma: 2\n", "train.lr: unknown key 'gamma' (allowed: "),
        ("- C\n", "expected a mapping of hyperparameter values (e.g. max_depth: 6), got list"),
        ("C: [\n", "invalid YAML at line "),
    ],
)
def test_a_bad_tuned_file_stops_train_in_one_line_naming_it(trained, capsys, text, reason):
    path = Layout(trained).tuned("tiny", "lr")
    path.parent.mkdir()
    path.write_text(text)

    code = train.main([*cli(trained, dataset="tiny"), "--algo", "lr"])

    err = capsys.readouterr().err
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"error: {path}: ")
    assert reason in lines[0]
    assert "dvc repro --force tune@tiny-lr" in lines[0]


def test_tuned_text_is_plain_yaml_both_readers_agree_on():
    text = tuning.tuned_text({"max_depth": 6, "learning_rate": 0.0731, "class_weight": None}, "x")

    assert text == "# x\nclass_weight: null\nlearning_rate: 0.0731\nmax_depth: 6\n"
    assert yaml.safe_load(text) == read_yaml_text(text)
    assert tuning.tuned_text({}, "off") == "# off\n{}\n"


def read_yaml_text(text: str):
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)
