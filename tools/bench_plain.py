"""The plain single-process baseline of `make bench-scale`: what a careful data scientist
would write without this repository, to price the pipeline against.

One process reads the CSV with ``pandas.read_csv``, splits it (stratified, ``split.*``),
preprocesses it with one ColumnTransformer fitted on the train split (numbers: median
imputation with missing-value indicators and standard scaling; text: a constant "missing"
category and a sparse one-hot encoding bounded by ``featurize.max_categories`` and
``featurize.min_category_frequency``), fits rf, xgb and lr (those of ``train.algos``) with
the hyperparameters of ``train.*`` (xgb: the same stratified ``validation_fraction`` hold-out
and early stopping as ``stages/train.py``), cross-validates each one as a careful model
choice needs (the same ``train.cv_folds`` stratified folds seeded by ``split.seed`` on at most
``train.cv_rows`` train rows, a stratified sample beyond, as train does: part of its ``fit``
phase), and scores each model's ROC AUC on the test split.

It reads the settings from a JSON file (``--config``: the validated ``split``, ``featurize``
and ``train`` sections of the benchmark's params.yaml, written by ``tools.bench_scale``), not
from this repository's code: nothing of ``tabml`` is imported. It writes one JSON object:
the seconds and the peak RSS so far after each phase, the rows and columns, and the AUCs.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("bench_plain")

# The phases, in the order they run; tools.bench_scale pairs them with pipeline stages.
PHASES = ("read", "split", "preprocess", "fit rf", "fit xgb", "fit lr", "score")
ALGOS = ("rf", "xgb", "lr")


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Timer:
    """Seconds and peak RSS after each named phase."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.phases[name] = {"seconds": seconds, "peak_rss_bytes": peak_rss_bytes()}
        log.info("%s: %.2f s, peak RSS %.2f GB", name, seconds, peak_rss_bytes() / 1e9)


def build_preprocessor(numeric: list[str], categorical: list[str], featurize: dict) -> Any:
    """The ColumnTransformer a careful data scientist writes for mixed tabular data."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    min_frequency = featurize["min_category_frequency"]
    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    text = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=featurize["max_categories"],
            min_frequency=min_frequency if min_frequency > 1 else None,
            sparse_output=True,
        ),
    )
    return ColumnTransformer([("num", numbers, numeric), ("cat", text, categorical)])


def estimators(train: dict) -> dict[str, Any]:
    """rf, xgb and lr with the hyperparameters of params.yaml's ``train`` section."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from xgboost import DMatrix, XGBClassifier

    class PlainEvalXGBClassifier(XGBClassifier):
        """Evaluation sets as a plain DMatrix, as stages/train.py does: xgboost's default
        QuantileDMatrix evaluation is slow on wide sparse data (dmlc/xgboost#10793), and
        the baseline should not lose time the pipeline does not."""

        def _create_dmatrix(self, ref: Any, **kwargs: Any) -> Any:
            if ref is None:  # the training data
                return super()._create_dmatrix(ref, **kwargs)
            return DMatrix(**kwargs, nthread=self.n_jobs)

    rf, xgb, lr = train["rf"], train["xgb"], train["lr"]
    return {
        "rf": RandomForestClassifier(
            n_estimators=rf["n_estimators"],
            max_depth=rf["max_depth"],
            min_samples_leaf=rf["min_samples_leaf"],
            class_weight=rf["class_weight"],
            n_jobs=rf["n_jobs"],
            random_state=rf["seed"],
        ),
        "xgb": PlainEvalXGBClassifier(
            n_estimators=xgb["n_estimators"],
            learning_rate=xgb["learning_rate"],
            max_depth=xgb["max_depth"],
            subsample=xgb["subsample"],
            colsample_bytree=xgb["colsample_bytree"],
            min_child_weight=xgb["min_child_weight"],
            reg_lambda=xgb["reg_lambda"],
            early_stopping_rounds=xgb["early_stopping_rounds"],
            n_jobs=xgb["n_jobs"],
            random_state=xgb["seed"],
            tree_method="hist",
            eval_metric="logloss",
        ),
        "lr": LogisticRegression(
            C=lr["C"], max_iter=lr["max_iter"], class_weight=lr["class_weight"]
        ),
    }


def fitters(train: dict) -> dict[str, Callable[[Any, Any], Any]]:
    """One fit function per algorithm; xgb holds out a stratified validation part of the
    train split for early stopping, as stages/train.py does."""
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    models = estimators(train)

    def fit_xgb(X: Any, y: Any) -> Any:
        xgb = train["xgb"]
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, y, test_size=xgb["validation_fraction"], random_state=xgb["seed"], stratify=y
        )
        return clone(models["xgb"]).fit(X_fit, y_fit, eval_set=[(X_val, y_val)], verbose=False)

    return {
        "rf": lambda X, y: clone(models["rf"]).fit(X, y),
        "xgb": fit_xgb,
        "lr": lambda X, y: clone(models["lr"]).fit(X, y),
    }


def cross_validated_auc(
    fit: Callable[[Any, Any], Any], X: Any, y: Any, folds: int, max_rows: int | None, seed: int
) -> float:
    """ROC AUC of ``fit`` over the folds (their mean, as the model card's ``cv``) of a
    stratified sample of at most ``max_rows`` rows."""
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, train_test_split

    if max_rows is not None and len(y) > max_rows:
        rows, _ = train_test_split(
            np.arange(len(y)), train_size=max_rows, random_state=seed, stratify=y
        )
        X, y = X[np.sort(rows)], y[np.sort(rows)]
    scores = []
    for fit_rows, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(
        np.zeros(len(y)), y
    ):
        proba = fit(X[fit_rows], y[fit_rows]).predict_proba(X[held_out])[:, 1]
        scores.append(roc_auc_score(y[held_out], proba))
    return float(np.mean(scores))


def run(csv: Path, target: str, positive_class: str, config: dict) -> dict[str, Any]:
    """Read, split, preprocess, fit every algorithm and score: the baseline's numbers."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    timer = Timer()
    with timer.phase("read"):
        frame = pd.read_csv(csv)
    split_seed = config["split"]["seed"]
    with timer.phase("split"):
        y = (frame[target].astype(str) == positive_class).to_numpy(dtype=np.int64)
        X = frame.drop(columns=[target])
        X_train, X_test, y_train, y_test = train_test_split(
            X,
            y,
            test_size=config["split"]["test_size"],
            random_state=split_seed,
            stratify=y,
        )
    with timer.phase("preprocess"):
        numeric = X.select_dtypes("number").columns.tolist()
        categorical = [c for c in X.columns if c not in numeric]
        preprocessor = build_preprocessor(numeric, categorical, config["featurize"])
        M_train = preprocessor.fit_transform(X_train)
        M_test = preprocessor.transform(X_test)
    log.info("%d train rows x %d features (%s)", *M_train.shape, type(M_train).__name__)
    train = config["train"]
    fit = fitters(train)
    models, cv_auc = {}, {}
    for algo in (a for a in ALGOS if a in train["algos"]):  # what the pipeline side trains
        with timer.phase(f"fit {algo}"):
            cv_auc[algo] = cross_validated_auc(
                fit[algo], M_train, y_train, train["cv_folds"], train["cv_rows"], split_seed
            )
            models[algo] = fit[algo](M_train, y_train)
    auc = {}
    with timer.phase("score"):
        for algo, model in models.items():
            auc[algo] = float(roc_auc_score(y_test, model.predict_proba(M_test)[:, 1]))
    log.info("CV ROC AUC: %s", {k: round(v, 4) for k, v in cv_auc.items()})
    log.info("test ROC AUC: %s", {k: round(v, 4) for k, v in auc.items()})
    return {
        "phases": timer.phases,
        "rows": len(frame),
        "columns": frame.shape[1],
        "features": int(M_train.shape[1]),
        "auc": auc,
        "cv_auc": cv_auc,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_plain", description=__doc__)
    parser.add_argument("csv", type=Path, help="the CSV file")
    parser.add_argument("--target", required=True, help="target column")
    parser.add_argument("--positive-class", required=True, help="label of the positive class")
    parser.add_argument(
        "--config", type=Path, required=True, help="JSON: split, featurize, train sections"
    )
    parser.add_argument("--json", type=Path, help="write the result here (default: stdout)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    config = json.loads(args.config.read_text(encoding="utf-8"))
    result = run(args.csv, args.target, args.positive_class, config)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
