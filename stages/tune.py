"""tune@<dataset>-<algo>: search one algorithm's hyperparameters on one dataset's train split.

Writes ``tuned/<dataset>-<algo>.yaml``, the best values found (a flat mapping of keys of
``train.<algo>``, read by train as a params file), and ``metrics/tune/<dataset>-<algo>.json``
(the metric, the best CV mean and std, params.yaml's own, trials run, seconds, best values).
The search and its spaces live in :mod:`tabml.tuning`; each trial is scored by train's own
cross-validation (``decide`` of stages/train.py).

Off unless ``tune.algos`` lists the algorithm: then the stage writes ``{}`` at once, loading
nothing but params. Datasets on the dask engine are not tuned (their train fits out of core;
the search fits in memory many times).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from tabml.cli import run_stage, stage_parser

if TYPE_CHECKING:
    from tabml.layout import Layout
    from tabml.params import Params

log = logging.getLogger("stages.tune")


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    from tabml import tuning

    name, algo = args.dataset, args.algo
    spec = params.dataset(name)
    params.train.algo(algo)  # one line for an algorithm train does not train
    if algo not in params.tune.algos:
        return tuning.off(layout, name, algo, f"{algo} is not in tune.algos")
    if spec.engine == "dask":
        log.warning("datasets.%s runs on the dask engine, which tune does not search", name)
        return tuning.off(layout, name, algo, f"datasets.{name} runs on the dask engine")
    from stages.train import decide
    from tabml.features import load_matrix

    X, y = load_matrix(layout.processed(name, "train", spec.snapshot, "npz"))
    result = tuning.tune(params, name, algo, X, y, decide)
    tuning.write_result(layout, name, algo, result)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.tune", __doc__.splitlines()[0], dataset=True, algo=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
