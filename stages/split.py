"""split@<dataset>: stratified train/test split of the raw snapshot into data/interim/.

Outputs ``<dataset>-train_interim_<date>.csv`` and ``<dataset>-test_interim_<date>.csv``:
the raw rows unchanged, so the test split is exactly what a served model will be sent.
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import TYPE_CHECKING

from tabml.cli import run_stage, stage_parser
from tabml.errors import DataError
from tabml.files import read_csv, write_csv
from tabml.schema import as_text

if TYPE_CHECKING:
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params, SplitParams

log = logging.getLogger("stages.split")


def split_data(
    frame: pd.DataFrame, spec: DatasetParams, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Core: drop rows without a target (logged), then split stratified on the target."""
    from sklearn.model_selection import train_test_split

    if spec.target not in frame.columns:
        raise DataError(
            f"target column {spec.target!r} not in data "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    labelled = frame[as_text(frame[spec.target]).notna().to_numpy()]  # blank text is missing
    dropped = len(frame) - len(labelled)
    if dropped:
        log.warning("dropped %d rows with a missing target %r", dropped, spec.target)
    labels = as_text(labelled[spec.target])
    counts = labels.value_counts()
    if len(counts) < 2:
        raise DataError(f"target {spec.target!r} has fewer than two classes; cannot split")
    n_test = math.ceil(len(labelled) * params.test_size)  # as train_test_split rounds
    if counts.min() < 2 or n_test < len(counts) or len(labelled) - n_test < len(counts):
        raise DataError(
            f"too few rows to split: {len(labelled)} labelled rows, smallest class "
            f"{counts.idxmin()!r} has {counts.min()}, split.test_size={params.test_size}"
        )
    train, test = train_test_split(
        labelled,
        test_size=params.test_size,
        random_state=params.seed,
        stratify=labels,
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    spec = params.dataset(args.dataset)
    frame = read_csv(layout.raw(args.dataset, spec.snapshot), low_memory=False)
    train, test = split_data(frame, spec, params.split)
    for part, rows in (("train", train), ("test", test)):
        out = layout.interim(args.dataset, part, spec.snapshot)
        write_csv(out, rows)
        log.info("wrote %s: %d rows", out, len(rows))


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.split", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
