"""train@<dataset>-<algo>: fit one algorithm on the processed train split of one dataset.

Writes ``models/<algo>_<dataset>_v<N>.pkl``, a plain scikit-learn Pipeline (the dataset's
fitted transformer followed by this estimator) that predicts from raw rows, and its card
``models/<algo>_<dataset>_v<N>.json`` (:class:`tabml.artifact.ModelCard`). Training metrics
go to ``metrics/train/<dataset>-<algo>/metrics.json``; for xgb, dvclive also logs the train
and validation log loss of every boosting round there.

xgboost and dvclive are imported only when training xgb.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.errors import DataError
from tabml.files import replace_dir, write_csv, write_json

if TYPE_CHECKING:
    import numpy as np

    from tabml.artifact import Decision
    from tabml.layout import Layout
    from tabml.params import AlgoParams, Params

log = logging.getLogger("stages.train")

PROGRESS_EVERY = 50  # boosting rounds between progress lines
PROGRESS_TREES = 50  # random-forest trees between progress lines


def build_estimator(algo: str, params: AlgoParams) -> Any:
    """An unfitted estimator for ``algo`` configured from its params section."""
    if algo == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf,
            class_weight=params.class_weight,
            n_jobs=params.n_jobs,
            random_state=params.seed,
        )
    if algo == "lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=params.C, max_iter=params.max_iter, class_weight=params.class_weight
        )
    if algo == "xgb":
        from xgboost import XGBClassifier

        return XGBClassifier(
            n_estimators=params.n_estimators,
            learning_rate=params.learning_rate,
            max_depth=params.max_depth,
            subsample=params.subsample,
            colsample_bytree=params.colsample_bytree,
            min_child_weight=params.min_child_weight,
            reg_lambda=params.reg_lambda,
            early_stopping_rounds=params.early_stopping_rounds,
            n_jobs=params.n_jobs,
            random_state=params.seed,
            tree_method="hist",
            eval_metric="logloss",
        )
    raise ValueError(f"no estimator for algorithm {algo!r}")  # params validation prevents this


def _progress_callback(total: int) -> Any:
    """An xgboost callback that logs a line every few rounds, so long fits show progress."""
    from xgboost.callback import TrainingCallback

    class Progress(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            if (epoch + 1) % PROGRESS_EVERY == 0:
                names = {"validation_0": "train", "validation_1": "valid"}
                last = {
                    f"{names.get(k, k)}/{m}": round(v[-1], 5)
                    for k, ms in evals_log.items()
                    for m, v in ms.items()
                }
                log.info("round %d/%d %s", epoch + 1, total, last)
            return False

    return Progress()


def fit_estimator(
    algo: str, params: AlgoParams, X: np.ndarray, y: np.ndarray, *, final: bool = True
) -> tuple[Any, dict[str, list[float]]]:
    """Core: fit ``algo`` on features ``X`` and 0/1 labels ``y``.

    Returns the fitted estimator and, for xgb, the per-round log loss on the train and
    validation parts (``{"train": [...], "valid": [...]}``); empty for other algorithms.
    ``final``: the model to ship, with progress lines while trees grow. False for the
    cross-validation folds: quiet, and xgb evaluates only the validation part early stopping
    reads (the same trees; scoring the train part every round too made a 40,000-row fold
    18% slower).
    """
    import numpy as np

    if len(np.unique(y)) < 2:
        raise DataError("the train split holds a single class; cannot train")
    estimator = build_estimator(algo, params)
    if algo == "rf":
        return (_fit_forest(estimator, X, y) if final else estimator.fit(X, y)), {}
    if algo != "xgb":
        estimator.fit(X, y)
        return estimator, {}
    X_fit, X_val, y_fit, y_val = _validation_split(params, X, y)
    if final:
        estimator.set_params(callbacks=[_progress_callback(params.n_estimators)])
    if hasattr(X, "tocsr"):
        _evaluate_on_plain_dmatrix(estimator)
    evals = [(X_fit, y_fit), (X_val, y_val)] if final else [(X_val, y_val)]
    try:
        estimator.fit(X_fit, y_fit, eval_set=evals, verbose=False)  # early-stops on the last
    finally:
        vars(estimator).pop("_create_dmatrix", None)  # the model pickles as plain xgboost
    estimator.set_params(callbacks=None)  # never pickle a callback with the model
    if not final:
        return estimator, {}
    history = estimator.evals_result()
    curves = {
        "train": [float(v) for v in history["validation_0"]["logloss"]],
        "valid": [float(v) for v in history["validation_1"]["logloss"]],
    }
    return estimator, curves


def _validation_split(params: Any, X: Any, y: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """xgb's early-stopping split of its training rows: (X_fit, X_val, y_fit, y_val)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        X, y, test_size=params.validation_fraction, random_state=params.seed, stratify=y
    )


def fit_model(
    algo: str,
    params: AlgoParams,
    X: Any,
    y: np.ndarray,
    *,
    cv_folds: int,
    seed: int,
    final: bool = True,
) -> tuple[Any, dict[str, list[float]]]:
    """Core: the whole training procedure of ``algo``: :func:`fit_estimator`, or with
    ``calibration`` sigmoid/isotonic, scikit-learn's CalibratedClassifierCV over it
    (``cv_folds`` stratified folds seeded by ``seed``: each fold's model calibrated on the
    rows it did not see, probabilities averaged; xgb early-stops on its validation part).
    Calibrated models have no per-round history; ``final`` as in :func:`fit_estimator`."""
    method = params.calibration
    if method == "none":
        return fit_estimator(algo, params, X, y, final=final)
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    if len(np.unique(y)) < 2:
        raise DataError("the train split holds a single class; cannot train")
    folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    wrapped = CalibratedClassifierCV(build_estimator(algo, params), method=method, cv=folds)
    if algo != "xgb":
        return wrapped.fit(X, y), {}
    X_fit, X_val, y_fit, y_val = _validation_split(params, X, y)
    return wrapped.fit(X_fit, y_fit, eval_set=[(X_val, y_val)], verbose=False), {}


def decide(algo: str, params: Params, X: Any, y: np.ndarray, name: str) -> tuple[Decision, Any]:
    """Core: cross-validate ``algo``'s whole training procedure on the train split and choose
    its decision threshold from the out-of-fold predictions (``evaluate.threshold: auto``:
    max F1, or least cost with ``evaluate.costs``). Returns the decision (threshold, rule,
    CV summary for the card) and the out-of-fold predictions."""
    from tabml.cv import cross_validate, decision

    algo_params, train = params.train.algo(algo), params.train
    seed = params.split.seed

    def fit(X_part: Any, y_part: np.ndarray) -> Any:
        return fit_model(
            algo, algo_params, X_part, y_part, cv_folds=train.cv_folds, seed=seed, final=False
        )[0]

    result = cross_validate(
        fit, X, y, k=train.cv_folds, seed=seed, max_rows=train.cv_rows, label=f"{algo} on {name}"
    )
    return decision(result, params.evaluate), result


def _evaluate_on_plain_dmatrix(estimator: Any) -> None:
    """Have ``estimator.fit`` build its evaluation sets as plain DMatrix, the training data
    staying a QuantileDMatrix. xgboost predicts an evaluation QuantileDMatrix of sparse data
    over every feature of every row (dmlc/xgboost#10793): with 37,500 one-hot columns a round
    took 6 s instead of 0.3. The trees and the evaluated numbers are the same."""
    from xgboost import DMatrix

    quantised = type(estimator)._create_dmatrix

    def create(ref: Any, **kwargs: Any) -> Any:
        if ref is None:  # the training data
            return quantised(estimator, ref, **kwargs)
        return DMatrix(**kwargs, nthread=estimator.n_jobs)

    estimator._create_dmatrix = create


def _fit_forest(forest: Any, X: Any, y: np.ndarray) -> Any:
    """Grow the forest PROGRESS_TREES trees at a time, with a progress line after each
    batch. scikit-learn's warm start draws each new tree's seed from the same stream as one
    fit would, so the forest is the same; X is converted once to what the trees read
    (float32, CSC when sparse) instead of once per batch."""
    import numpy as np

    total = forest.n_estimators
    X = X.tocsc().astype(np.float32) if hasattr(X, "tocsc") else np.asarray(X, np.float32)
    forest.set_params(warm_start=True)
    for grown in range(min(PROGRESS_TREES, total), total + PROGRESS_TREES, PROGRESS_TREES):
        forest.set_params(n_estimators=min(grown, total))
        forest.fit(X, y)
        log.info("trees %d/%d", len(forest.estimators_), total)
        if grown >= total:
            break
    forest.set_params(warm_start=False)
    return forest


def training_metrics(
    estimator: Any, X: Any, y: np.ndarray, max_rows: int
) -> dict[str, float | int]:
    """Fit quality on the train split itself: compare with test metrics to spot overfitting.

    Scored on a seeded sample of at most ``max_rows`` rows (``train.metrics_rows``), the
    same rows for every algorithm; ``train_metrics_rows`` says how many.
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    n = len(y)
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(0).choice(n, size=max_rows, replace=False))
    X_sample, y_sample = (X[rows], y[rows]) if n > max_rows else (X, y)
    proba = estimator.predict_proba(X_sample)[:, 1]
    return {
        "train_accuracy": round(float(accuracy_score(y_sample, proba >= 0.5)), 6),
        "train_roc_auc": round(float(roc_auc_score(y_sample, proba)), 6),
        "train_log_loss": round(float(log_loss(y_sample, proba, labels=[0, 1])), 6),
        "train_metrics_rows": len(rows),
        "n_train": n,
        "n_features": int(X.shape[1]),
    }


def _write_train_metrics(
    out_dir: Path, metrics: dict[str, Any], curves: dict[str, list[float]]
) -> None:
    """metrics.json for every algo; for xgb, dvclive's per-round log loss beside it."""
    if not curves:
        write_json(out_dir / "metrics.json", metrics)
        return
    from dvclive import Live

    # No dvc.yaml rewriting, no experiment saving, no report: dvc.yaml declares these plots.
    # The step is set, not advanced with next_step(), which rewrites the summary each round.
    with Live(dir=str(out_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for step, (train_loss, valid_loss) in enumerate(
            zip(curves["train"], curves["valid"], strict=True)
        ):
            live.step = step
            live.log_metric("train/logloss", round(train_loss, 6))
            live.log_metric("valid/logloss", round(valid_loss, 6))
        for key, value in metrics.items():
            live.log_metric(key, value, plot=False)


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    from tabml.tuning import with_tuned  # train.<algo> updated with tuned/<dataset>-<algo>.yaml

    params = with_tuned(params, args.dataset, args.algo, layout)
    if params.dataset(args.dataset).engine == "dask":
        from tabml.daskengine.train import StageRules, train

        rules = StageRules(build_estimator, _write_train_metrics)
        return train(args.dataset, args.algo, params, layout, rules)
    from tabml.artifact import save_trained
    from tabml.features import load_features, load_matrix

    name, algo = args.dataset, args.algo
    spec, algo_params = params.dataset(name), params.train.algo(algo)
    features, transformer = load_features(layout, name, spec.snapshot)
    X, y = load_matrix(layout.processed(name, "train", spec.snapshot, "npz"))
    if X.shape[1] != len(features.feature_names) or X.shape[0] != len(y):
        raise DataError(
            f"processed train data of {name!r} does not match its transformer: rerun featurize"
        )
    log.info(
        "training %s on %s: %d rows x %d features (%s)",
        algo,
        name,
        *X.shape,
        "sparse" if hasattr(X, "nnz") else "dense",
    )
    decision, oof = decide(algo, params, X, y, name)
    auc = decision.cv["metrics"]["roc_auc"] if decision.cv else {}
    log.info(
        "cross-validated %s on %s (%d folds, %d rows): roc_auc %.4f ± %.4f; threshold %.4g (%s)",
        algo,
        name,
        params.train.cv_folds,
        len(oof.rows),
        auc.get("mean", float("nan")),
        auc.get("std", float("nan")),
        decision.threshold,
        decision.rule,
    )
    estimator, curves = fit_model(
        algo, algo_params, X, y, cv_folds=params.train.cv_folds, seed=params.split.seed
    )
    metrics = training_metrics(estimator, X, y, params.train.metrics_rows)
    if curves:
        metrics["best_iteration"] = int(
            getattr(estimator, "best_iteration", len(curves["valid"]) - 1)
        )
        metrics["valid_log_loss"] = round(min(curves["valid"]), 6)
    log.info("trained %s on %s: %s", algo, name, metrics)

    out = save_trained(
        layout,
        params,
        name,
        algo,
        (features, transformer, estimator),
        metrics,
        curves,
        decision=decision,
    )
    write_csv(layout.oof(algo, name, params.train.model_version), oof.frame())
    replace_dir(
        layout.train_metrics_dir(name, algo), lambda d: _write_train_metrics(d, metrics, curves)
    )
    log.info("wrote %s (%.1f MB) and its card", out, out.stat().st_size / 1e6)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(
        "python -m stages.train", __doc__.splitlines()[0], dataset=True, algo=True
    )
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
