"""evaluate: score one dataset's models on its raw test split and rank them.

``python -m stages.evaluate --dataset <name>`` (stage ``evaluate@<name>``) applies each model
of ``train.algos`` to ``data/interim/<name>/<name>-test_interim_<date>.csv`` exactly as a
server would apply it to raw rows. Writes, all small and committed to git:

- ``metrics/test/<name>/<name>-<algo>.json``: accuracy, balanced accuracy, precision,
  recall, f1, ROC AUC, PR AUC, log loss, Brier score at the model card's threshold, each
  with its bootstrap 95% interval (``ci95``);
- ``metrics/leaderboard/<name>.json``: the models ranked by their cross-validated
  ``evaluate.metric`` (from the cards), the champion chosen on CV alone (one-standard-error
  rule, ``evaluate.min_score`` gate) or none, and why; the test metric is only reported;
- ``plots/data/<topic>/<name>/<topic>_<name>-<algo>_<date>.csv`` for topic roc, pr
  (at most ``evaluate.curve_points`` points each), confusion (one count per class pair),
  calibration, importance (permutation importance of the raw input columns on a stratified
  sample of at most ``evaluate.importance_rows`` test rows) and loss (per-round log loss,
  models that train in rounds only). Each of the six topic directories exists after the
  stage, empty when no model has that topic.

The scoring itself is one call, :func:`scorer` of the dataset's engine: this module's
:func:`score_models` for pandas datasets, the Dask engine's for ``engine: dask``; this
script only reads the inputs, ranks and writes. The cores are in ``tabml.evaluation``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.csvfile import CsvOptions, read_dataset
from tabml.evaluation import TOPICS, Entry, Scored, evaluate_model, leaderboard, validate_test
from tabml.files import replace_dir, write_csv, write_json

if TYPE_CHECKING:
    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params
    from tabml.schema import Batch

log = logging.getLogger("stages.evaluate")

# The seam between this stage and an engine: (dataset name, its params, all params, layout)
# -> {algo: Scored} for every algo of train.algos, in that order. Each Scored holds the model
# id, the metrics (every name of tabml.metrics.METRICS, and n_test) and the plot data per
# topic of tabml.evaluation.PLOT_TOPICS (plus "loss" for models that train in rounds), with
# the columns the plot stage reads and bounded in size (tabml.evaluation's cores). A user
# error is a tabml.errors.PipelineError (one line); nothing is written until all succeed.
ScoreModels = Callable[[str, "DatasetParams", "Params", "Layout"], dict[str, Scored]]


def score_models(
    name: str, spec: DatasetParams, params: Params, layout: Layout
) -> dict[str, Scored]:
    """The pandas engine: every model of ``train.algos`` on the dataset's test CSV, one
    model in memory at a time, one progress line per model."""
    from tabml.artifact import read_model
    from tabml.model import single_threaded

    test = read_dataset(layout.interim(name, "test", spec.snapshot), CsvOptions.of(spec))
    algos = params.train.algos
    metric = params.evaluate.metric
    scored: dict[str, Scored] = {}
    validated: tuple[Any, Batch] | None = None  # (schema, test rows validated for it)
    started = time.monotonic()
    for i, algo in enumerate(algos, start=1):
        model = read_model(layout, algo, name, params.train.model_version)
        # A forest predicting on 2 threads sums its trees in any order: the last bits of
        # the probabilities, and so tied importances, would change from run to run.
        single_threaded(model.pipeline)
        if validated is None or validated[0] != model.schema:  # the models share one schema
            validated = (model.schema, validate_test(model, test))
        metrics, plots = evaluate_model(model, test, params.evaluate, batch=validated[1])
        scored[algo] = Scored(model.model_id, metrics, plots)
        log.info(
            "evaluated %d/%d models of %s (%s on %d test rows: %s %.4f) in %.1f s",
            i,
            len(algos),
            name,
            model.model_id,
            len(test),
            metric,
            metrics[metric],
            time.monotonic() - started,
        )
    return scored


def scorer(engine: str) -> ScoreModels:
    """The per-dataset scoring of an engine (``datasets.<name>.engine``): the seam where the
    Dask engine computes the same :class:`Scored` results on its cluster."""
    if engine == "dask":
        from tabml.daskengine.evaluate import score_models as dask_score_models

        return dask_score_models
    return score_models


def write_outputs(
    name: str,
    date: str,
    scored: Mapping[str, Scored],
    board: Mapping[str, Any],
    layout: Layout,
) -> None:
    """Every output of ``evaluate@<name>``, each directory swapped in whole (atomic), every
    topic directory created even when no model has that topic."""

    def write_tests(tmp: Path) -> None:
        for algo, result in scored.items():
            write_json(tmp / layout.test_metrics(name, algo).name, result.metrics)

    def plot_writer(topic: str) -> Callable[[Path], None]:
        def write(tmp: Path) -> None:
            for algo, result in scored.items():
                if topic in result.plots:
                    path = layout.plot_data(topic, name, algo, date)
                    write_csv(tmp / path.name, result.plots[topic])

        return write

    replace_dir(layout.test_metrics_dir(name), write_tests)
    write_json(layout.leaderboard(name), board)
    for topic in TOPICS:
        replace_dir(layout.plot_data_dir(topic, name), plot_writer(topic))


def entries(
    scored: Mapping[str, Scored], layout: Layout, name: str, version: int
) -> dict[str, Entry]:
    """What the leaderboard ranks, per algo: the card's CV summary and decision rule with
    the test metrics just computed."""
    from tabml.artifact import read_card

    out = {}
    for algo, result in scored.items():
        card = read_card(layout.card(algo, name, version))
        out[algo] = Entry(
            result.model_id,
            card.cv,
            result.metrics,
            card.threshold,
            card.threshold_rule,
            card.calibration,
        )
    return out


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    name = args.dataset
    spec = params.dataset(name)
    scored = scorer(spec.engine)(name, spec, params, layout)
    ev = params.evaluate
    board = leaderboard(
        entries(scored, layout, name, params.train.model_version), ev.metric, ev.min_score
    )
    write_outputs(name, spec.snapshot, scored, board, layout)
    if board["champion"] is None:
        log.warning("no champion for %s: %s", name, board["reason"])
    else:
        log.info("champion of %s: %s (%s)", name, board["champion_model"], board["reason"])


def main(argv: list[str] | None = None) -> int:
    """Run the evaluate stage for one dataset; returns the exit code (2 for a user error)."""
    parser = stage_parser("python -m stages.evaluate", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
