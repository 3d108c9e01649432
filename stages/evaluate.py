"""evaluate: score every model on its dataset's raw test split; rank models per dataset.

Each model is applied to ``data/interim/<dataset>-test_interim_<date>.csv`` exactly as a
server would apply it to raw rows. Writes, all small and committed to git:

- ``metrics/test/<dataset>-<algo>.json``: accuracy, balanced accuracy, precision, recall, f1,
  ROC AUC, PR AUC, log loss, Brier score;
- ``metrics/leaderboard/<dataset>.json``: the models ranked by ``evaluate.metric``;
- ``plots/data/<topic>/<topic>_<dataset>-<algo>_<date>.csv`` for topic roc, pr, confusion,
  calibration and importance (permutation importance of the raw input columns), and loss
  (per-round train/validation log loss) for models that train in rounds (xgb).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.errors import DataError
from tabml.files import read_csv, replace_dir, write_csv, write_json
from tabml.metrics import LOWER_IS_BETTER, SCORERS, is_positive, score
from tabml.target import encode_target

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.layout import Layout
    from tabml.model import Model
    from tabml.params import EvaluateParams, Params

log = logging.getLogger("stages.evaluate")
PLOT_TOPICS = ("roc", "pr", "confusion", "calibration", "importance")  # for every model
LOSS_TOPIC = "loss"  # only for models with a per-round history (xgb)


def curves(
    y: np.ndarray, proba: np.ndarray, classes: tuple[str, str], params: EvaluateParams
) -> dict[str, pd.DataFrame]:
    """Core: plot data for DVC (ROC, precision-recall, confusion rows, calibration)."""
    import numpy as np
    import pandas as pd
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, roc_thr = roc_curve(y, proba)
    precision, recall, _ = precision_recall_curve(y, proba)
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=params.calibration_bins)
    labels = np.array(classes)
    return {
        "roc": pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(roc_thr, 1.0)}).round(
            6
        ),
        "pr": pd.DataFrame({"recall": recall, "precision": precision}).round(6),
        "confusion": pd.DataFrame(
            {
                "actual": labels[y],
                "predicted": labels[is_positive(proba, params.threshold).astype(int)],
            }
        ),
        "calibration": pd.DataFrame(
            {"mean_predicted": prob_pred, "fraction_positive": prob_true}
        ).round(6),
    }


def importance(
    model: Model, rows: pd.DataFrame, y: np.ndarray, params: EvaluateParams
) -> pd.DataFrame:
    """Core: permutation importance of each raw input column, on the leaderboard metric.

    ``rows`` are validated rows (:meth:`tabml.schema.Batch.frame`): what the pipeline reads.
    """
    import pandas as pd
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        model.pipeline,
        rows,
        y,
        scoring=SCORERS[params.metric],
        n_repeats=params.importance_repeats,
        random_state=params.seed,
        n_jobs=1,
    )
    frame = pd.DataFrame(
        {
            "feature": rows.columns,
            "importance": result.importances_mean,
            "std": result.importances_std,
        }
    ).round(6)
    ranked = frame.sort_values(["importance", "feature"], ascending=[False, True])
    return ranked.reset_index(drop=True)


def leaderboard(
    scores: dict[str, dict[str, float]], metric: str, model_ids: dict[str, str]
) -> dict[str, Any]:
    """Core: rank algorithms by ``metric`` (ascending for losses); ties break by name."""
    if not scores:
        raise DataError("no model to rank")
    sign = 1 if metric in LOWER_IS_BETTER else -1
    ranking = sorted(scores, key=lambda algo: (sign * scores[algo][metric], algo))
    best = ranking[0]
    return {
        "metric": metric,
        "higher_is_better": metric not in LOWER_IS_BETTER,
        "best_algo": best,
        "best_model": model_ids[best],
        "best_score": scores[best][metric],
        "ranking": ranking,
        "scores": {algo: scores[algo][metric] for algo in ranking},
        "models": {algo: model_ids[algo] for algo in ranking},
    }


def evaluate_model(
    model: Model, test: pd.DataFrame, params: EvaluateParams
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Core: metrics and plot data of one model on raw test rows (target included).

    Test rows go through the same validation as served rows, except that a category the
    train split never saw is allowed (the model encodes it as zeros).
    """
    card = model.card
    if card.target not in test.columns:
        raise DataError(f"test data of {card.dataset!r} has no target column {card.target!r}")
    y = encode_target(test[card.target], card.positive_class).to_numpy()
    batch = model.validate(test, strict_categories=False)
    proba = model.predict_proba(batch)[:, 1]
    metrics = score(y, proba, params.threshold)
    metrics["n_test"] = len(y)
    plots = curves(y, proba, model.classes, params)
    plots["importance"] = importance(model, batch.frame(model.schema), y, params)
    if card.history:
        plots[LOSS_TOPIC] = loss_curve(card.history)
    return metrics, plots


def loss_curve(history: dict[str, list[float]]) -> pd.DataFrame:
    """Core: per-round losses recorded at training time, one row per round."""
    import pandas as pd

    frame = pd.DataFrame({f"{part}_logloss": values for part, values in history.items()})
    frame.insert(0, "step", range(len(frame)))
    return frame


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    from tabml.artifact import read_model
    from tabml.model import single_threaded

    all_metrics: dict[tuple[str, str], dict[str, float]] = {}
    all_plots: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    boards: dict[str, dict[str, Any]] = {}
    version = params.train.model_version
    for name, spec in params.datasets.items():
        test = read_csv(layout.interim(name, "test", spec.snapshot), low_memory=False)
        ids = {}
        for algo in params.train.algos:
            model = read_model(layout, algo, name, version)
            # A forest predicting on 2 threads sums its trees in any order: the last bits of
            # the probabilities, and so tied importances, would change from run to run.
            single_threaded(model.pipeline)
            metrics, plots = evaluate_model(model, test, params.evaluate)
            log.info("%s on %s test (%d rows): %s", model.model_id, name, len(test), metrics)
            all_metrics[name, algo], all_plots[name, algo] = metrics, plots
            ids[algo] = model.model_id
        scores = {algo: all_metrics[name, algo] for algo in params.train.algos}
        boards[name] = leaderboard(scores, params.evaluate.metric, ids)
        log.info("best on %s by %s: %s", name, params.evaluate.metric, boards[name]["best_model"])

    def write_tests(tmp: Path) -> None:
        for (name, algo), metrics in all_metrics.items():
            write_json(tmp / layout.test_metrics(name, algo).name, metrics)

    def write_boards(tmp: Path) -> None:
        for name, board in boards.items():
            write_json(tmp / layout.leaderboard(name).name, board)

    def write_plots(tmp: Path) -> None:
        for (name, algo), plots in all_plots.items():
            date = params.datasets[name].snapshot
            for topic in plots:
                path = layout.plot_data(topic, name, algo, date)
                write_csv(tmp / path.relative_to(layout.plot_data_dir), plots[topic])

    replace_dir(layout.test_metrics_dir, write_tests)
    replace_dir(layout.leaderboard_dir, write_boards)
    replace_dir(layout.plot_data_dir, write_plots)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.evaluate", __doc__.splitlines()[0])
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
