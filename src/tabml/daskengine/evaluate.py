"""evaluate@<dataset> on Dask: each model scored on the test partitions by the workers.

:func:`score_models` is the Dask engine's side of the seam in ``stages/evaluate.py``: same
signature and the same :class:`tabml.evaluation.Scored` results as the pandas engine's, so
the stage ranks and writes them the same way. For each model:

- every test partition is validated as served rows are (unseen categories allowed), scored
  by the model on the worker holding it and reduced to :class:`.scores.ScoreStats`; the
  sums give the metrics, the ROC and precision-recall curves (downsampled to
  ``evaluate.curve_points`` by :func:`tabml.evaluation.downsample`), the confusion counts
  at the model card's threshold (as the pandas engine, the API and the batch CLI decide)
  and the calibration curve, without the test split ever being in one process;
- each metric's bootstrap 95% interval (``ci95``, ``evaluate.bootstrap_resamples``
  resamples) comes from the same statistics (:func:`.scores.intervals`): resampling the
  test rows is resampling their counts per (class, score bin, side of the threshold), so
  the intervals are those of the whole test split, not of a sample of it;
- permutation importance (:func:`tabml.evaluation.importance`) runs here on a sample drawn
  once for all models: each partition keeps each row with the same seeded probability,
  about 1.2 x ``evaluate.importance_rows`` rows in all, which the importance then
  stratifies down to ``importance_rows``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError, SchemaError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.daskengine.scores import ScoreStats
    from tabml.evaluation import Scored
    from tabml.layout import Layout
    from tabml.model import Model
    from tabml.params import DatasetParams, EvaluateParams, Params

log = logging.getLogger("tabml.daskengine.evaluate")

OVERSAMPLE = 1.2  # sampled rows per importance row wanted: the stratified cut needs slack


def score_part(
    part: pd.DataFrame, model: Model, threshold: float, bins: int, source: str
) -> ScoreStats:
    """Worker: one test partition validated, scored and reduced to its statistics."""
    from tabml.daskengine.scores import score_stats
    from tabml.target import encode_target

    card = model.card
    if card.target not in part.columns:
        raise DataError(f"test data of {card.dataset!r} has no target column {card.target!r}")
    y = encode_target(part[card.target], card.positive_class).to_numpy()
    try:
        batch = model.validate(part, strict_categories=False)
    except SchemaError as exc:
        raise DataError(f"{source}: {exc}") from None
    proba = model.predict_proba(batch)[:, 1] if len(part) else y[:0].astype(float)
    return score_stats(y, proba, threshold, bins)


def sample_part(part: pd.DataFrame, rate: float, seed: int, index: int) -> pd.DataFrame:
    """Worker: each row of partition ``index`` kept with probability ``rate`` (seeded)."""
    import numpy as np

    keep = np.random.default_rng([seed, index]).random(len(part)) < rate
    return part[keep]


def plots_from(
    stats: ScoreStats, classes: tuple[str, str], params: EvaluateParams
) -> dict[str, pd.DataFrame]:
    """The plot data of :func:`tabml.evaluation.curves`, from the merged statistics
    (through :func:`tabml.evaluation.curve_frames`, the one home of their shape)."""
    from tabml.daskengine import scores
    from tabml.evaluation import curve_frames

    precision, recall = scores.pr_curve(stats)
    fraction_positive, mean_predicted = scores.calibration(stats)
    return curve_frames(
        roc=scores.roc_curve(stats),
        pr=(recall, precision),
        calibration=(mean_predicted, fraction_positive),
        confusion=[[stats.tn, stats.fp], [stats.fn, stats.tp]],
        classes=classes,
        curve_points=params.curve_points,
    )


def _rows(files: list[Any]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def score_models(
    name: str, spec: DatasetParams, params: Params, layout: Layout
) -> dict[str, Scored]:
    """Every model of ``train.algos`` scored on the dataset's test partitions (module
    docstring); one progress line per model, as the pandas engine."""
    import dask
    import pandas as pd

    from tabml.artifact import read_model
    from tabml.daskengine.cluster import compute, dask_client
    from tabml.daskengine.featurize import parts_frame
    from tabml.daskengine.scores import intervals, merge, metrics
    from tabml.evaluation import LOSS_TOPIC, Scored, ci95, importance, loss_curve
    from tabml.model import single_threaded
    from tabml.target import encode_target

    files = layout.interim_parts(name, "test", spec.snapshot)
    if not files:
        raise DataError(
            f"{layout.interim_dir(name)} holds no test partitions: run split first (dvc repro)"
        )
    ev = params.evaluate
    algos = params.train.algos
    scored: dict[str, Scored] = {}
    started = time.monotonic()
    with dask_client(params.dask) as client:
        frame = parts_frame(files)
        parts = frame.to_delayed()
        rate = min(1.0, OVERSAMPLE * ev.importance_rows / max(_rows(files), 1))
        sample = pd.concat(
            dask.compute(
                *[dask.delayed(sample_part)(p, rate, ev.seed, i) for i, p in enumerate(parts)]
            ),
            ignore_index=True,
        )
        for i, algo in enumerate(algos, start=1):
            model = read_model(layout, algo, name, params.train.model_version)
            single_threaded(model.pipeline)  # the same probabilities on any thread
            shared = client.scatter(model)
            threshold = model.card.threshold
            tasks = [
                dask.delayed(score_part)(p, shared, threshold, ev.calibration_bins, str(f))
                for p, f in zip(parts, files, strict=True)
            ]
            stats = merge(compute(client, tasks, f"score {model.model_id}"))
            result: dict[str, Any] = metrics(stats)
            result["n_test"] = stats.n
            result["threshold"] = threshold
            result["ci95"] = ci95(
                intervals(stats, threshold, resamples=ev.bootstrap_resamples, seed=ev.seed)
            )
            plots = plots_from(stats, model.classes, ev)
            y = encode_target(sample[model.card.target], model.card.positive_class).to_numpy()
            rows = model.validate(sample, strict_categories=False).frame(model.schema)
            plots["importance"] = importance(model, rows, y, ev)
            if model.card.history:
                plots[LOSS_TOPIC] = loss_curve(model.card.history)
            scored[algo] = Scored(model.model_id, result, plots)
            log.info(
                "evaluated %d/%d models of %s (%s on %d test rows: %s %.4f) in %.1f s",
                i,
                len(algos),
                name,
                model.model_id,
                stats.n,
                ev.metric,
                result[ev.metric],
                time.monotonic() - started,
            )
    return scored
