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
batch CLI and evaluate load it as any other. ``calibration`` other than none is refused:
the engine has no calibrated estimator to ship.

Cross-validation, as the pandas engine's (:mod:`tabml.cv`), but affordable at any size: the
rows :func:`tabml.cv.cv_sample` picks from the train split (at most ``train.cv_rows``,
stratified, seeded by ``split.seed``: the pandas engine's rows for the same split) are
pulled from the workers to this process, which cross-validates on them the single-node
twin of the distributed procedure (:func:`local_fit`): ``XGBClassifier`` with the same
settings and the same row-hash validation share for xgb, ``XGBRFClassifier`` with
:func:`rf_settings` of the fold for rf, the same averaged SGD partition by partition for
lr. The card's ``cv`` says so (``estimator``); the threshold is chosen from the
out-of-fold predictions by the rule both engines share (:func:`tabml.cv.decision`), and
the out-of-fold file is written beside the model, as the pandas engine does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError, ParamsError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.cv import CvResult
    from tabml.layout import Layout
    from tabml.params import Params

log = logging.getLogger("tabml.daskengine.train")

PROGRESS_EVERY = 50  # boosting rounds between progress lines (as the pandas engine)
BOOTSTRAP_SHARE = 0.632  # distinct rows in a bootstrap sample: 1 - 1/e
TOL = 1e-3  # lr: an epoch must lower the mean log loss by this much...
PATIENCE = 3  # ...at least once in this many epochs, else training stops

# The estimator each algorithm ships, and its single-node twin that cross-validates it.
SHIPPED = {
    "xgb": "xgboost.dask.DaskXGBClassifier",
    "rf": "xgboost.dask.DaskXGBRFClassifier",
    "lr": "sklearn.linear_model.SGDClassifier (partial_fit per partition)",
}
TWIN = {
    "xgb": "xgboost.XGBClassifier",
    "rf": "xgboost.XGBRFClassifier",
    "lr": "sklearn.linear_model.SGDClassifier (partial_fit per partition's rows)",
}


@dataclass(frozen=True)
class StageRules:
    """The pandas stage's functions this engine reuses (``stages/train.py`` passes them)."""

    build_estimator: Callable[[str, Any], Any]  # (algo, params) -> unfitted estimator
    write_metrics: Callable[[Path, dict[str, Any], dict[str, list[float]]], None]


# --- on the workers ------------------------------------------------------------------------


UNIFORM = "__tabml_uniform"  # a column only fit_xgb's frames carry


def with_uniform(part: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Worker: the partition with a column of each row's seeded hash as a number in [0, 1)
    (which rows validate early stopping: the same whatever the partitioning). pandas mixes
    ``hash_key`` into text values only, and these rows are numbers: the seed is mixed into
    the row hashes here (pandas' 64-bit mixer over hash XOR seed)."""
    import numpy as np
    import pandas as pd

    hashes = pd.util.hash_pandas_object(part, index=False).to_numpy(dtype=np.uint64)
    seeded = pd.util.hash_array(hashes ^ np.uint64(seed))
    return part.assign(**{UNIFORM: seeded / float(2**64)})


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

    frame = pd.read_parquet(path)
    X = frame[names].to_numpy(dtype=np.float64)
    return sgd_update(state, X, frame[target].to_numpy(dtype=np.int64))


def sgd_update(
    state: tuple[Any, float, int], X: np.ndarray, y: np.ndarray
) -> tuple[Any, float, int]:
    """One ``partial_fit`` on the rows of one partition (float64 features, 0/1 labels),
    adding their log loss before it to the epoch's sum: :func:`sgd_step`'s core, and the
    cross-validation's."""
    import numpy as np
    from sklearn.metrics import log_loss

    model, loss, rows = state
    if not len(y):
        return model, loss, rows
    if hasattr(model, "coef_"):
        loss += float(log_loss(y, model.predict_proba(X)[:, 1], normalize=False, labels=[0, 1]))
    else:
        loss += len(y) * math.log(2)  # an untrained model says 0.5
    model.partial_fit(X, y, classes=np.array([0, 1]))
    return model, loss, rows + len(y)


def read_labels(path: str, target: str) -> np.ndarray:
    """Worker: the 0/1 labels of one processed partition (its target column only)."""
    import numpy as np
    import pandas as pd

    return pd.read_parquet(path, columns=[target])[target].to_numpy(dtype=np.int8)


def take_rows(part: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Worker: the rows at positions ``rows`` of a partition (the cross-validation's)."""
    return part.iloc[rows]


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
    from tabml.daskengine.cluster import Progress

    model = sgd_model(params, counts, norm2)
    log.info("averaged SGD, step %.3g, alpha %.3g", model.eta0, model.alpha)
    paths = [str(f.resolve()) for f in files]

    def epoch(model: Any) -> tuple[Any, float, int]:
        state: Any = (model, 0.0, 0)
        for path in paths:
            state = client.submit(sgd_step, state, path, names, target, pure=False)
        return state.result()

    return sgd_epochs(model, epoch, params.max_iter, Progress())


def sgd_model(params: Any, counts: tuple[int, int], norm2: float) -> Any:
    """The unfitted SGDClassifier for ``counts`` (negative, positive) rows whose mean
    squared feature norm is ``norm2`` (module docstring)."""
    from sklearn.linear_model import SGDClassifier

    n_neg, n_pos = counts
    n = n_neg + n_pos
    weights = None
    if params.class_weight == "balanced":  # scikit-learn's formula: n / (2 * class count)
        weights = {0: n / (2 * n_neg), 1: n / (2 * n_pos)}
    return SGDClassifier(
        loss="log_loss",
        penalty="l2",
        alpha=1 / (params.C * n),
        learning_rate="constant",
        eta0=1 / (4 * max(norm2, 1e-12)),
        average=True,
        class_weight=weights,
        random_state=0,  # partial_fit shuffles each partition: the same way every run
    )


def sgd_epochs(
    model: Any,
    epoch: Callable[[Any], tuple[Any, float, int]],
    max_iter: int,
    progress: Callable[..., None] | None = None,
) -> tuple[Any, list[float]]:
    """Epochs of ``epoch`` (model -> model after one pass, summed log loss, rows) until the
    mean log loss stops improving (:data:`TOL`, :data:`PATIENCE`) or ``max_iter``; the
    model and each epoch's mean log loss."""
    losses: list[float] = []
    best, stale = math.inf, 0
    for number in range(1, max_iter + 1):
        model, loss, rows = epoch(model)
        losses.append(loss / max(rows, 1))
        if losses[-1] < best - TOL:
            best, stale = losses[-1], 0
        else:
            stale += 1
        done = stale >= PATIENCE or number == max_iter
        if progress is not None:
            progress("epoch %d/%d: mean log loss %.5f", number, max_iter, losses[-1], final=done)
        if done:
            break
    return model, losses


# --- cross-validation, here ----------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The train rows cross-validated in this process, in train-split order."""

    rows: np.ndarray  # row numbers in the train split (ascending)
    part: np.ndarray  # the partition each row came from
    frame: pd.DataFrame  # the rows as the partitions hold them: features, target
    X: np.ndarray  # the features (float32)
    y: np.ndarray  # 0/1 labels
    total: int  # rows in the train split


def pull_sample(
    frame: Any, labels: list[np.ndarray], names: list[str], target: str, params: Params
) -> Sample:
    """The rows :func:`tabml.cv.cv_sample` picks from the whole train split (``labels``:
    each partition's), fetched from the partitions holding them."""
    import dask
    import numpy as np
    import pandas as pd

    from tabml.cv import cv_sample

    y = np.concatenate(labels).astype(np.int64)
    rows = cv_sample(y, params.train.cv_rows, params.split.seed)
    starts = np.cumsum([0, *(len(part) for part in labels)])
    part = np.searchsorted(starts, rows, side="right") - 1
    picked = [(i, rows[part == i] - starts[i]) for i in range(len(labels))]
    parts = frame.to_delayed()
    taken = dask.compute(
        *[dask.delayed(take_rows)(parts[i], local) for i, local in picked if len(local)]
    )
    sample = pd.concat(taken, ignore_index=True)
    if not (sample[target].to_numpy() == y[rows]).all():  # the partitions moved under us
        raise DataError("processed train data changed while training: rerun featurize")
    return Sample(
        rows=rows, part=part, frame=sample, X=sample[names].to_numpy(), y=y[rows], total=len(y)
    )


@dataclass(frozen=True)
class OnRows:
    """A fitted estimator that predicts the sample rows it is given by position: how
    :func:`tabml.cv.cross_validate` hands the folds to :func:`local_fit`."""

    estimator: Any
    X: np.ndarray

    def predict_proba(self, positions: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(self.X[positions[:, 0]])


def local_fit(algo: str, params: Params, sample: Sample, rules: StageRules) -> Callable:
    """The single-node twin of ``algo``'s distributed training procedure (module
    docstring), as a ``fit(positions, labels)`` for :func:`tabml.cv.cross_validate`."""
    import numpy as np

    algo_params, X = params.train.algo(algo), sample.X
    if algo == "xgb":  # fit_xgb's validation rows: the same hash of the same row values
        uniform = with_uniform(sample.frame, algo_params.seed)[UNIFORM].to_numpy()

    def fit(positions: np.ndarray, y: np.ndarray) -> OnRows:
        at = positions[:, 0]
        n_pos = int(y.sum())
        n_neg = len(y) - n_pos
        if algo == "xgb":
            estimator = rules.build_estimator(algo, algo_params)
            valid = uniform[at] < algo_params.validation_fraction
            estimator.fit(
                X[at[~valid]], y[~valid], eval_set=[(X[at[valid]], y[valid])], verbose=False
            )
        elif algo == "rf":
            from xgboost import XGBRFClassifier

            settings = rf_settings(algo_params, X.shape[1], n_pos / len(y), n_pos, n_neg)
            estimator = XGBRFClassifier(**settings, n_jobs=algo_params.n_jobs).fit(X[at], y)
        else:
            rows = X[at].astype(np.float64)
            norm2 = float(np.mean(np.einsum("ij,ij->i", rows, rows)))
            cuts = np.flatnonzero(np.diff(sample.part[at])) + 1  # partition by partition
            chunks = list(zip(np.split(rows, cuts), np.split(y, cuts), strict=True))

            def epoch(model: Any) -> tuple[Any, float, int]:
                state: Any = (model, 0.0, 0)
                for X_part, y_part in chunks:
                    state = sgd_update(state, X_part, y_part)
                return state

            model = sgd_model(algo_params, (n_neg, n_pos), norm2)
            estimator = sgd_epochs(model, epoch, algo_params.max_iter)[0]
        return OnRows(estimator, X)

    return fit


def cross_validate_sample(
    algo: str, params: Params, sample: Sample, rules: StageRules, name: str
) -> CvResult:
    """Out-of-fold predictions of :func:`local_fit` on the sample (its rows numbered as in
    the train split), with the pandas engine's folds (:func:`tabml.cv.fold_ids`)."""
    import dataclasses

    import numpy as np

    from tabml.cv import cross_validate

    train = params.train
    result = cross_validate(
        local_fit(algo, params, sample, rules),
        np.arange(len(sample.y))[:, np.newaxis],
        sample.y,
        k=train.cv_folds,
        seed=params.split.seed,
        label=f"{algo} on {name}",
    )
    return dataclasses.replace(result, rows=sample.rows[result.rows])


def cv_estimator(algo: str, sample: Sample) -> str:
    """What the card's ``cv`` was computed with, in words."""
    rows = len(sample.rows)
    if rows == sample.total:
        of = f"all {rows}"
    else:
        of = f"a stratified sample of {rows} of {sample.total}"
    twin = f"the single-node twin of the shipped {SHIPPED[algo]}, same settings"
    return f"{TWIN[algo]} ({twin}) on {of} train rows"


def train(name: str, algo: str, params: Params, layout: Layout, rules: StageRules) -> None:
    """Train ``algo`` on dataset ``name`` with the Dask engine (see the module docstring)."""
    import dataclasses

    import dask

    from tabml.artifact import save_trained
    from tabml.cv import decision
    from tabml.daskengine.cluster import dask_client
    from tabml.daskengine.featurize import parts_frame
    from tabml.daskengine.scores import merge, metrics
    from tabml.features import load_features
    from tabml.files import replace_dir, write_csv
    from tabml.params import engine_refusal

    spec, algo_params = params.dataset(name), params.train.algo(algo)
    refusal = engine_refusal(name, spec, algo, algo_params)
    if refusal:
        raise ParamsError(refusal)
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
        passes: list[Any] = [dask.delayed(read_labels)(str(f.resolve()), target) for f in files]
        if algo == "lr":  # its step size: the mean squared norm of a row (one pass for all)
            passes.append((frame[names] ** 2).sum(axis=1).mean())
        counted = dask.compute(*passes)
        labels = list(counted[: len(files)])
        n = sum(len(part) for part in labels)
        n_pos = int(sum(int(part.sum()) for part in labels))
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
        sample = pull_sample(frame, labels, names, target, params)
        oof = cross_validate_sample(algo, params, sample, rules, name)
        chosen = decision(oof, params.evaluate)
        chosen = dataclasses.replace(
            chosen, cv={**chosen.cv, "estimator": cv_estimator(algo, sample)}
        )
        auc = chosen.cv["metrics"]["roc_auc"]
        log.info(
            "cross-validated %s on %s (%d folds, %d of %d rows, %s): roc_auc %.4f ± %.4f; "
            "threshold %.4g (%s)",
            algo,
            name,
            params.train.cv_folds,
            len(sample.rows),
            n,
            TWIN[algo],
            auc["mean"],
            auc["std"],
            chosen.threshold,
            chosen.rule,
        )
        curves: dict[str, list[float]] = {}
        if algo == "xgb":
            estimator = rules.build_estimator(algo, algo_params)
            estimator, curves = fit_xgb(client, frame, names, target, algo_params, estimator)
            used: dict[str, Any] = {"estimator": SHIPPED[algo]}
        elif algo == "rf":
            settings = rf_settings(algo_params, len(names), n_pos / n, n_pos, n_neg)
            estimator = fit_rf(client, frame, names, target, settings)
            used = {"estimator": SHIPPED[algo], "settings": settings}
        else:
            counts = (n_neg, n_pos)
            norm2 = float(counted[-1])
            estimator, losses = fit_lr(client, files, names, target, algo_params, counts, norm2)
            used = {"estimator": SHIPPED[algo], "epochs": len(losses), "alpha": estimator.alpha}
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
        decision=chosen,
    )
    write_csv(layout.oof(algo, name, params.train.model_version), oof.frame())
    replace_dir(
        layout.train_metrics_dir(name, algo), lambda d: rules.write_metrics(d, result, curves)
    )
    log.info("wrote %s (%.1f MB) and its card", out, out.stat().st_size / 1e6)
