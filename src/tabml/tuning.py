"""Hyperparameter tuning: an Optuna search scored by the cross-validation train runs.

``tune@<dataset>-<algo>`` (stages/tune.py) searches the hyperparameters of one algorithm
(:data:`SPACES`) with a seeded TPE sampler, one trial at a time. Each trial is scored by the
CV mean of ``evaluate.metric`` of train's whole procedure with the trial's values: the same
folds (``train.cv_folds``, seeded by ``split.seed``), the same ``train.cv_rows`` sample, the
same calibration and decision threshold (``decide`` of stages/train.py, passed in). The
search never sees the test split. Trial 0 is the values in params.yaml, so the best found is
never worse, on CV, than not tuning.

The best values go to ``tuned/<dataset>-<algo>.yaml``, a flat mapping of ``train.<algo>``
keys (floats rounded to 4 significant digits: the file stays readable and stable, and the
trial is scored with exactly those values). train declares that file as a params dependency
and applies it over ``train.<algo>`` (:func:`effective_params`), so ``dvc exp show`` lists
the tuned values. An algorithm missing from ``tune.algos`` gets ``{}`` at once (:func:`off`):
tuning off, train uses params.yaml as it is.

Reproducible: the same data, params and ``tune.seed`` give the same trials and the same best
values (scores are rounded to 6 decimals as in the model card, so thread-order noise in a
forest's sums cannot steer the sampler). ``tune.timeout`` is an extra cap in seconds: a time
budget stops after however many trials fit, so it is not reproducible.

Optuna, numpy and scikit-learn load inside the functions that search: turning tuning off
costs only params validation.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError, ParamsError
from tabml.metrics import LOWER_IS_BETTER

if TYPE_CHECKING:
    from tabml.layout import Layout
    from tabml.params import AlgoParams, Params

log = logging.getLogger("tabml.tuning")

PROGRESS_EVERY = 5  # trials between progress lines
DIGITS = 4  # significant digits of a tuned float


# --- search spaces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Int:
    """Integers from ``low`` to ``high`` (inclusive), uniform or on a log scale."""

    low: int
    high: int
    log: bool = False

    def contains(self, value: Any) -> bool:
        number = isinstance(value, int) and not isinstance(value, bool)
        return number and self.low <= value <= self.high

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"integer {self.low}..{self.high}{' (log scale)' if self.log else ''}"


@dataclass(frozen=True)
class Float:
    """Numbers from ``low`` to ``high``, uniform or on a log scale."""

    low: float
    high: float
    log: bool = False

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}{' (log scale)' if self.log else ''}"


@dataclass(frozen=True)
class Choice:
    """One of a few values."""

    values: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return value in self.values

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def describe(self) -> str:
        return " | ".join("null" if v is None else str(v) for v in self.values)


Dimension = Int | Float | Choice

# What tune searches, per algorithm: keys of train.<algo> (tabml.params), each with its range.
# Not searched: n_estimators (more trees cost time, they are not a choice of fit: rf averages
# them, xgb stops early), seeds, n_jobs, calibration (train.<algo>.calibration, a choice of
# its own), xgb's early-stopping settings, lr's max_iter. A value of params.yaml outside its
# range is still trial 0, as it is; the search then explores the range.
SPACES: dict[str, dict[str, Dimension]] = {
    "rf": {
        "max_depth": Int(3, 30, log=True),  # deep trees fit noise; shallow ones underfit
        "min_samples_leaf": Int(1, 50, log=True),  # rows per leaf: smoother probabilities
        "class_weight": Choice((None, "balanced")),
    },
    "xgb": {
        "learning_rate": Float(0.01, 0.3, log=True),  # early stopping picks the rounds
        "max_depth": Int(2, 10),
        "subsample": Float(0.5, 1.0),  # rows per tree
        "colsample_bytree": Float(0.4, 1.0),  # features per tree
        "min_child_weight": Float(0.1, 20.0, log=True),  # hessian per leaf: larger is simpler
        "reg_lambda": Float(0.01, 100.0, log=True),  # L2 penalty on leaf weights
    },
    "lr": {
        "C": Float(0.001, 100.0, log=True),  # inverse L2 strength (features are scaled)
        "class_weight": Choice((None, "balanced")),
    },
}


def rounded(value: Any) -> Any:
    """A float to :data:`DIGITS` significant digits (``0.07314159`` -> ``0.07314``); other
    values unchanged."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{DIGITS}g}")
    return value


def space_lines(algo: str) -> list[str]:
    """The search space of ``algo``, one ``key: range`` line per hyperparameter (for logs)."""
    return [f"{key}: {dim.describe()}" for key, dim in SPACES[algo].items()]


# --- the search -------------------------------------------------------------------------------

Score = Callable[["AlgoParams"], tuple[float, float]]  # algo params -> (CV mean, CV std)


@dataclass(frozen=True)
class TuneResult:
    """What a search found: the best values (keys of :data:`SPACES`), its CV score and the
    score of params.yaml's values (trial 0)."""

    algo: str
    metric: str
    best: dict[str, Any]
    best_trial: int
    best_mean: float
    best_std: float
    default_mean: float
    default_std: float
    scores: list[float]  # CV mean of each trial, in order (trial 0: params.yaml's values)
    seconds: float

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def summary(self) -> dict[str, Any]:
        """The metrics file of the stage (metrics/tune/<dataset>-<algo>.json)."""
        sign = 1 if self.higher_is_better else -1
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "trials": len(self.scores),
            "seconds": round(self.seconds, 1),
            "best_trial": self.best_trial,
            "best": {"cv_mean": self.best_mean, "cv_std": self.best_std},
            "defaults": {"cv_mean": self.default_mean, "cv_std": self.default_std},
            "gain": round(sign * (self.best_mean - self.default_mean), 6),  # >= 0
            "params": self.best,
        }


def rebuild(section: AlgoParams, values: Mapping[str, Any]) -> AlgoParams:
    """``section`` with ``values`` over it, validated again by the same pydantic model
    (``model_copy(update=...)`` would not validate)."""
    return type(section).model_validate({**section.model_dump(), **values})


@contextlib.contextmanager
def _quiet_search() -> Iterator[None]:
    """Optuna's own lines (one per trial) and the per-fold CV lines off while searching: the
    search logs its own progress every few trials."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cv_log = logging.getLogger("tabml.cv")
    level = cv_log.level
    cv_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        cv_log.setLevel(level)


def search(
    algo: str,
    defaults: AlgoParams,
    score: Score,
    *,
    metric: str,
    trials: int,
    seed: int,
    timeout: float | None = None,
    label: str = "",
) -> TuneResult:
    """Core: a seeded, sequential TPE search of ``algo``'s :data:`SPACES` over ``defaults``
    (params.yaml's train.<algo>), ``trials`` trials in all (fewer if ``timeout`` seconds run
    out; trial 0 always runs). Trial 0 is ``defaults`` itself. ``score`` gives the CV mean
    and std of ``metric`` for a trial's params; the best mean wins (the lowest for a metric
    of :data:`tabml.metrics.LOWER_IS_BETTER`), the earliest trial on a tie."""
    import optuna

    space = SPACES[algo]
    current = {key: getattr(defaults, key) for key in space}
    fixed = {key: value for key, value in current.items() if space[key].contains(value)}
    for key in [key for key in current if key not in fixed]:
        log.info(
            "train.%s.%s = %r is outside the search range (%s): trial 0 uses it as it is",
            algo,
            key,
            current[key],
            space[key].describe(),
        )
    lower = metric in LOWER_IS_BETTER
    what = f" of {label}" if label else ""
    started = time.monotonic()
    stds: dict[int, float] = {}
    tried: dict[int, dict[str, Any]] = {}

    def objective(trial: Any) -> float:
        if trial.number == 0:  # params.yaml's values, exactly (the sampler records those in range)
            for key in fixed:
                space[key].suggest(trial, key)  # an enqueued value: comes back as it is
            values = dict(current)
        else:  # scored with the values the tuned file will hold
            values = {key: rounded(dim.suggest(trial, key)) for key, dim in space.items()}
        mean, std = score(rebuild(defaults, values))
        if not math.isfinite(mean):  # e.g. a metric undefined on some fold
            if trial.number == 0:
                raise DataError(
                    f"the CV {metric} of train.{algo} as params.yaml sets it is {mean}: "
                    "nothing to compare a search with; choose another evaluate.metric"
                )
            log.warning(
                "trial %d%s: CV %s is %s with %s: skipped", trial.number, what, metric, mean, values
            )
            raise optuna.TrialPruned()
        stds[trial.number], tried[trial.number] = std, values
        return mean

    def progress(study: Any, trial: Any) -> None:
        done = trial.number + 1
        if done % PROGRESS_EVERY and done != trials:
            return
        best = study.best_trial
        log.info(
            "trial %d/%d%s: best %s %.4f (trial %d; params.yaml's %.4f), %.1f s",
            done,
            trials,
            what,
            metric,
            best.value,
            best.number,
            study.trials[0].value,
            time.monotonic() - started,
        )

    with _quiet_search():
        study = optuna.create_study(
            direction="minimize" if lower else "maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
        study.enqueue_trial(fixed)
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[progress])
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]  # 0 first
    scores = [t.value for t in done]
    best = (min if lower else max)(done, key=lambda t: t.value)  # the first of equals
    return TuneResult(
        algo=algo,
        metric=metric,
        best=tried[best.number],
        best_trial=best.number,
        best_mean=best.value,
        best_std=stds[best.number],
        default_mean=done[0].value,
        default_std=stds[0],
        scores=scores,
        seconds=time.monotonic() - started,
    )


def with_section(params: Params, algo: str, section: AlgoParams) -> Params:
    """``params`` with ``train.<algo>`` replaced by ``section`` (already validated)."""
    train = params.train.model_copy(update={algo: section})
    return params.model_copy(update={"train": train})


def cv_score(
    params: Params, algo: str, X: Any, y: Any, name: str, decide: Callable[..., Any]
) -> Score:
    """The score of a trial: train's own cross-validation (``decide`` of stages/train.py:
    fit_model on the same folds and rows, the decision threshold chosen the same way) with
    the trial's ``train.<algo>``, as the CV mean and std of ``evaluate.metric``."""
    metric = params.evaluate.metric

    def score(section: AlgoParams) -> tuple[float, float]:
        decision, _ = decide(algo, with_section(params, algo, section), X, y, name)
        summary = decision.cv["metrics"][metric]
        return summary["mean"], summary["std"]

    return score


def tune(
    params: Params, dataset: str, algo: str, X: Any, y: Any, decide: Callable[..., Any]
) -> TuneResult:
    """Search ``algo`` on the train split (features ``X``, labels ``y``) of ``dataset`` as
    the ``tune`` section of params.yaml says."""
    settings, train = params.tune, params.train
    log.info(
        "tuning %s on %s: %d trials of %d-fold CV on at most %s rows, %s (%s is better), "
        "seed %d%s; searching %s",
        algo,
        dataset,
        settings.trials,
        train.cv_folds,
        train.cv_rows if train.cv_rows is not None else "all",
        params.evaluate.metric,
        "lower" if params.evaluate.metric in LOWER_IS_BETTER else "higher",
        settings.seed,
        f", at most {settings.timeout:g} s" if settings.timeout else "",
        "; ".join(space_lines(algo)),
    )
    return search(
        algo,
        train.algo(algo),
        cv_score(params, algo, X, y, dataset, decide),
        metric=params.evaluate.metric,
        trials=settings.trials,
        seed=settings.seed,
        timeout=settings.timeout,
        label=f"{algo} on {dataset}",
    )


# --- files ----------------------------------------------------------------------------------


def tuned_text(values: Mapping[str, Any], comment: str) -> str:
    """The tuned file: a ``# comment`` line, then the values as YAML (keys sorted; ``{}``
    when empty), as DVC and :func:`tabml.files.read_yaml` read it."""
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(dict(values), out)
    return f"# {comment}\n{out.getvalue()}"


def write_result(layout: Layout, dataset: str, algo: str, result: TuneResult) -> None:
    """Write the tuned file and the metrics file of a search."""
    from tabml.files import write_json, write_text

    stage = f"tune@{dataset}-{algo}"
    metrics = layout.tune_metrics(dataset, algo)
    comment = (
        f"{stage}: the best of {len(result.scores)} trials by CV {result.metric} "
        f"({metrics.relative_to(layout.root)}); train applies these over train.{algo}"
    )
    write_text(layout.tuned(dataset, algo), tuned_text(result.best, comment))
    write_json(metrics, result.summary())
    log.info(
        "%s: CV %s %.4f ± %.4f (trial %d of %d) against params.yaml's %.4f ± %.4f in %.1f s; "
        "best %s",
        stage,
        result.metric,
        result.best_mean,
        result.best_std,
        result.best_trial,
        len(result.scores),
        result.default_mean,
        result.default_std,
        result.seconds,
        result.best,
    )


def off(layout: Layout, dataset: str, algo: str, reason: str) -> None:
    """Tuning off for this dataset and algorithm: an empty tuned file (train uses
    params.yaml as it is) and a metrics file saying no trial ran. Costs no import."""
    from tabml.files import write_json, write_text

    comment = f"tune@{dataset}-{algo}: off ({reason}): train uses train.{algo} as it is"
    write_text(layout.tuned(dataset, algo), tuned_text({}, comment))
    write_json(layout.tune_metrics(dataset, algo), {"trials": 0})
    log.info("tune@%s-%s is off: %s; wrote {}", dataset, algo, reason)


def read_tuned(path: Path) -> dict[str, Any]:
    """The values of a tuned file; ``{}`` when the file is missing (train run outside DVC,
    where no tune stage ran) or empty. One-line ParamsError naming the file otherwise."""
    from tabml.params import read_params_file

    redo = f"rerun `dvc repro --force tune@{path.stem}`"
    if not path.exists():
        return {}
    raw = read_params_file(path, f": fix it or {redo}")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(
            f"{path}: expected a mapping of hyperparameter values (e.g. max_depth: 6), got "
            f"{type(raw).__name__}: fix it or {redo}"
        )
    return raw


def effective_params(params: Params, dataset: str, algo: str, layout: Layout) -> AlgoParams:
    """What train fits ``algo`` with on ``dataset``: params.yaml's ``train.<algo>`` updated
    with the tuned file's values, validated by the same model (a bad value is a one-line
    error naming the file and the key)."""
    from pydantic import ValidationError

    from tabml.params import error_message

    section = params.train.algo(algo)
    path = layout.tuned(dataset, algo)
    tuned = read_tuned(path)
    if not tuned:
        return section
    try:
        merged = rebuild(section, tuned)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        reason = error_message({**error, "loc": ("train", algo, *error["loc"])})
        raise ParamsError(
            f"{path}: {reason}: fix it or rerun `dvc repro --force tune@{dataset}-{algo}`"
        ) from None
    log.info("%s: tuned values over train.%s: %s", path, algo, tuned)
    return merged


def with_tuned(params: Params, dataset: str, algo: str, layout: Layout) -> Params:
    """``params`` with ``train.<algo>`` as :func:`effective_params`: what train's ``_main``
    uses, so CV, the fit and the model card all see the tuned values."""
    return with_section(params, algo, effective_params(params, dataset, algo, layout))
