"""train@<dataset>-<algo> on Dask: distributed estimators, saved as the usual model file.

The processed Parquet partitions stay on the workers; each algorithm trains with an
estimator made for that:

- ``xgb``: ``xgboost.dask.DaskXGBClassifier`` with the params of the pandas engine's
  ``XGBClassifier`` (:func:`stages.train.build_estimator`; each worker's threads instead of
  ``n_jobs``). Early stopping uses ``validation_fraction`` of the train rows, picked by a
  seeded hash of each row (no shuffle); a line every ``PROGRESS_EVERY`` rounds.
- ``rf``: ``xgboost.dask.DaskXGBRFClassifier``, XGBoost's random forest: one round of
  ``n_estimators`` parallel trees (``num_parallel_tree``), ``max_depth`` as is (none:
  unlimited, lossguide growth), ``subsample`` 0.632 (the share of distinct rows in a
  bootstrap sample: scikit-learn draws one per tree), ``colsample_bynode`` 1/sqrt(features)
  (scikit-learn's ``max_features="sqrt"`` at each split), ``min_child_weight``
  ``min_samples_leaf`` rows' worth of hessian at the class prior, ``class_weight:
  balanced`` as ``scale_pos_weight``. Not scikit-learn's forest: trees split on histogram
  bins, rows are subsampled without replacement.
- ``lr``: scikit-learn's ``SGDClassifier(loss="log_loss")``, fed partition by partition by
  ``partial_fit``: averaged SGD with the constant step ``1 / (4 R^2)`` (R^2: the mean
  squared norm of a feature row), the step of Bach and Moulines (2013) for logistic
  regression, for up to ``max_iter`` epochs, stopping when an epoch's mean log loss has not
  improved by :data:`TOL` for :data:`PATIENCE` epochs (scikit-learn's own tolerance).
  Each step runs on a worker, which reads its partition there: only the small model
  travels. ``alpha = 1 / (C * n_train)`` makes its L2 penalty the one
  ``LogisticRegression(C)`` minimises (per row); ``class_weight: balanced`` is computed
  from the class counts (partial_fit cannot). dask-ml's incremental and GLM estimators are
  not used: its last release predates the scikit-learn and dask this project runs, and
  this loop is a few lines with a plain scikit-learn model at the end.

The saved model is what the pandas engine saves: a scikit-learn Pipeline of the dataset's
transformer and a single-node estimator (``xgboost.XGBClassifier`` or ``XGBRFClassifier``
loaded from the trained booster, or the SGDClassifier), with its card; ``/predict``, the
batch CLI and evaluate load it as any other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import Params

log = logging.getLogger("tabml.daskengine.train")

PROGRESS_EVERY = 50  # boosting rounds between progress lines (as the pandas engine)
BOOTSTRAP_SHARE = 0.632  # distinct rows in a bootstrap sample: 1 - 1/e
TOL = 1e-3  # lr: an epoch must lower the mean log loss by this much...
PATIENCE = 3  # ...at least once in this many epochs, else training stops


@dataclass(frozen=True)
class StageRules:
    """The pandas stage's functions this engine reuses (``stages/train.py`` passes them)."""

    build_estimator: Callable[[str, Any], Any]  # (algo, params) -> unfitted estimator
    write_metrics: Callable[[Path, dict[str, Any], dict[str, list[float]]], None]


# --- on the workers ------------------------------------------------------------------------


UNIFORM = "__tabml_uniform"  # a column only fit_xgb's frames carry


def with_uniform(part: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Worker: the partition with a column of each row's seeded hash as a number in [0, 1)
    (which rows validate early stopping: the same whatever the partitioning)."""
    import numpy as np
    import pandas as pd

    hashes = pd.util.hash_pandas_object(part, index=False, hash_key=f"{seed:016d}")
    return part.assign(**{UNIFORM: hashes.to_numpy(dtype=np.uint64) / float(2**64)})


def _rounds_callback(total: int) -> Any:
    from xgboost.callback import TrainingCallback

    class Rounds(TrainingCallback):
        """Runs on the workers: the first one reports every PROGRESS_EVERY rounds."""

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            from xgboost import collective

            from tabml.daskengine.cluster import report

            if collective.get_rank() == 0 and (epoch + 1) % PROGRESS_EVERY == 0:
                names = {"validation_0": "train", "validation_1": "valid"}
                last = {
                    f"{names.get(k, k)}/{m}": round(float(v[-1]), 5)
                    for k, ms in evals_log.items()
                    for m, v in ms.items()
                }
                report(f"round {epoch + 1}/{total} {last}")
            return False

    return Rounds()


def sgd_step(
    state: tuple[Any, float, int], path: str, names: list[str], target: str
) -> tuple[Any, float, int]:
    """Worker: one ``partial_fit`` of the model on one partition file. The state carries
    the epoch's summed log loss of each partition before the model learnt from it."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss

    model, loss, rows = state
    frame = pd.read_parquet(path)
    if not len(frame):
        return model, loss, rows
    X = frame[names].to_numpy(dtype=np.float64)
    y = frame[target].to_numpy(dtype=np.int64)
    if hasattr(model, "coef_"):
        loss += float(log_loss(y, model.predict_proba(X)[:, 1], normalize=False, labels=[0, 1]))
    else:
        loss += len(y) * math.log(2)  # an untrained model says 0.5
    model.partial_fit(X, y, classes=np.array([0, 1]))
    return model, loss, rows + len(y)


def part_stats(
    part: pd.DataFrame, estimator: Any, names: list[str], target: str, rate: float, index: int
) -> Any:
    """Worker: the score statistics at threshold 0.5 of a seeded sample of one partition,
    each row kept with probability ``rate`` (the training metrics)."""
    import numpy as np

    from tabml.daskengine.scores import score_stats

    if rate < 1.0:
        part = part[np.random.default_rng([0, index]).random(len(part)) < rate]
    X = part[names].to_numpy(dtype=np.float64)
    proba = estimator.predict_proba(X)[:, 1] if len(part) else np.empty(0)
    return score_stats(part[target].to_numpy(), proba, 0.5, 10)


# --- here ----------------------------------------------------------------------------------


def local_model(dask_model: Any, local: Any) -> Any:
    """``local`` (an unfitted single-node xgboost model) loaded with the booster the Dask
    model trained: XGBoost's own format, so best iteration and classes come along."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tabml-xgb-") as tmp:
        path = Path(tmp) / "model.ubj"
        dask_model.save_model(path)
        local.load_model(path)
    return local


def fit_xgb(
    client: Any, frame: Any, names: list[str], target: str, params: Any, estimator: Any
) -> tuple[Any, dict[str, list[float]]]:
    """DaskXGBClassifier with the pandas engine's settings; the single-node model and the
    per-round train and validation log loss."""
    import xgboost
    from xgboost.dask import DaskXGBClassifier

    settings = {k: v for k, v in estimator.get_params().items() if k not in ("n_jobs", "callbacks")}
    marked = frame.map_partitions(with_uniform, params.seed)  # one frame: no realignment
    fit = marked[marked[UNIFORM] >= params.validation_fraction]
    valid = marked[marked[UNIFORM] < params.validation_fraction]
    model = DaskXGBClassifier(**settings, callbacks=[_rounds_callback(params.n_estimators)])
    model.client = client
    with xgboost.config_context(verbosity=1):
        model.fit(
            fit[names],
            fit[target],
            eval_set=[(fit[names], fit[target]), (valid[names], valid[target])],
            verbose=False,
        )
    model.set_params(callbacks=None)
    history = model.evals_result()
    curves = {
        "train": [float(v) for v in history["validation_0"]["logloss"]],
        "valid": [float(v) for v in history["validation_1"]["logloss"]],
    }
    return local_model(model, estimator), curves


def rf_settings(params: Any, n_features: int, prior: float, n_pos: int, n_neg: int) -> dict:
    """The XGBoost random forest that stands for scikit-learn's (module docstring)."""
    settings = {
        "n_estimators": params.n_estimators,
        "max_depth": params.max_depth or 0,
        "grow_policy": "depthwise" if params.max_depth else "lossguide",
        "subsample": BOOTSTRAP_SHARE,
        "colsample_bynode": min(1.0, 1 / math.sqrt(max(n_features, 1))),
        "min_child_weight": params.min_samples_leaf * prior * (1 - prior),
        "random_state": params.seed,
        "tree_method": "hist",
        "eval_metric": "logloss",
    }
    if params.class_weight == "balanced":
        settings["scale_pos_weight"] = n_neg / max(n_pos, 1)
    return settings


def fit_rf(client: Any, frame: Any, names: list[str], target: str, settings: dict[str, Any]) -> Any:
    import xgboost
    from xgboost import XGBRFClassifier
    from xgboost.dask import DaskXGBRFClassifier

    from tabml.daskengine.cluster import heartbeat

    model = DaskXGBRFClassifier(**settings)
    model.client = client
    log.info("growing %d trees on the workers", settings["n_estimators"])
    with xgboost.config_context(verbosity=1), heartbeat("growing the forest"):
        model.fit(frame[names], frame[target])
    return local_model(model, XGBRFClassifier(**settings))


def fit_lr(
    client: Any,
    files: list[Path],
    names: list[str],
    target: str,
    params: Any,
    counts: tuple[int, int],
    norm2: float,
) -> tuple[Any, list[float]]:
    """SGDClassifier, ``partial_fit`` partition by partition (module docstring); the model
    and the mean log loss of each epoch."""
    from sklearn.linear_model import SGDClassifier

    from tabml.daskengine.cluster import Progress

    n_neg, n_pos = counts
    n = n_neg + n_pos
    weights = None
    if params.class_weight == "balanced":  # scikit-learn's formula: n / (2 * class count)
        weights = {0: n / (2 * n_neg), 1: n / (2 * n_pos)}
    model = SGDClassifier(
        loss="log_loss",
        penalty="l2",
        alpha=1 / (params.C * n),
        learning_rate="constant",
        eta0=1 / (4 * max(norm2, 1e-12)),
        average=True,
        class_weight=weights,
        random_state=0,  # partial_fit shuffles each partition: the same way every run
    )
    log.info("averaged SGD, step %.3g, alpha %.3g", model.eta0, model.alpha)
    paths = [str(f.resolve()) for f in files]
    progress = Progress()
    losses: list[float] = []
    best, stale = math.inf, 0
    for epoch in range(1, params.max_iter + 1):
        state: Any = (model, 0.0, 0)
        for path in paths:
            state = client.submit(sgd_step, state, path, names, target, pure=False)
        model, loss, rows = state.result()
        losses.append(loss / max(rows, 1))
        if losses[-1] < best - TOL:
            best, stale = losses[-1], 0
        else:
            stale += 1
        done = stale >= PATIENCE or epoch == params.max_iter
        progress("epoch %d/%d: mean log loss %.5f", epoch, params.max_iter, losses[-1], final=done)
        if done:
            break
    return model, losses


def train(name: str, algo: str, params: Params, layout: Layout, rules: StageRules) -> None:
    """Train ``algo`` on dataset ``name`` with the Dask engine (see the module docstring)."""
    import dask

    from tabml.artifact import save_trained
    from tabml.daskengine.cluster import dask_client
    from tabml.daskengine.featurize import parts_frame
    from tabml.daskengine.scores import merge, metrics
    from tabml.features import load_features
    from tabml.files import replace_dir

    spec, algo_params = params.dataset(name), params.train.algo(algo)
    features, transformer = load_features(layout, name, spec.snapshot)
    files = layout.processed_parts(name, "train", spec.snapshot)
    if not files:
        raise DataError(
            f"{layout.processed_dir(name)} holds no train partitions: run featurize first "
            "(dvc repro)"
        )
    names, target = features.feature_names, features.target
    with dask_client(params.dask) as client:
        frame = parts_frame(files)
        if list(frame.columns) != [*names, target]:
            raise DataError(
                f"processed train data of {name!r} does not match its transformer: rerun featurize"
            )
        sums = [frame[target].size, frame[target].sum()]
        if algo == "lr":  # its step size: the mean squared norm of a row (one pass for all)
            sums.append((frame[names] ** 2).sum(axis=1).mean())
        counted = dask.compute(*sums)
        n, n_pos = int(counted[0]), int(counted[1])
        n_neg = n - n_pos
        if n_pos == 0 or n_neg == 0:
            raise DataError("the train split holds a single class; cannot train")
        log.info(
            "training %s on %s: %d rows x %d features in %d partitions",
            algo,
            name,
            n,
            len(names),
            len(files),
        )
        curves: dict[str, list[float]] = {}
        if algo == "xgb":
            estimator = rules.build_estimator(algo, algo_params)
            estimator, curves = fit_xgb(client, frame, names, target, algo_params, estimator)
            used = {"estimator": "xgboost.dask.DaskXGBClassifier"}
        elif algo == "rf":
            settings = rf_settings(algo_params, len(names), n_pos / n, n_pos, n_neg)
            estimator = fit_rf(client, frame, names, target, settings)
            used = {"estimator": "xgboost.dask.DaskXGBRFClassifier", "settings": settings}
        else:
            counts = (n_neg, n_pos)
            norm2 = float(counted[2])
            estimator, losses = fit_lr(client, files, names, target, algo_params, counts, norm2)
            used = {
                "estimator": "sklearn.linear_model.SGDClassifier (partial_fit per partition)",
                "epochs": len(losses),
                "alpha": estimator.alpha,
            }
        shared = client.scatter(estimator)
        rate = min(1.0, params.train.metrics_rows / n)  # about metrics_rows rows, as pandas
        stats = merge(
            dask.compute(
                *[
                    dask.delayed(part_stats)(p, shared, names, target, rate, i)
                    for i, p in enumerate(frame.to_delayed())
                ]
            )
        )
    scored = metrics(stats)
    result: dict[str, Any] = {
        "train_accuracy": scored["accuracy"],
        "train_roc_auc": scored["roc_auc"],
        "train_log_loss": scored["log_loss"],
        "train_metrics_rows": stats.n,
        "n_train": n,
        "n_features": len(names),
    }
    if curves:
        result["best_iteration"] = int(
            getattr(estimator, "best_iteration", len(curves["valid"]) - 1)
        )
        result["valid_log_loss"] = round(min(curves["valid"]), 6)
    log.info("trained %s on %s: %s", algo, name, result)
    out = save_trained(
        layout,
        params,
        name,
        algo,
        (features, transformer, estimator),
        result,
        curves,
        {"dask": {**params.dask.model_dump(), **used}},
    )
    replace_dir(
        layout.train_metrics_dir(name, algo), lambda d: rules.write_metrics(d, result, curves)
    )
    log.info("wrote %s (%.1f MB) and its card", out, out.stat().st_size / 1e6)
