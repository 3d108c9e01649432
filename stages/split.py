"""split@<dataset>: stratified train/test split of the raw snapshot into data/interim/<dataset>/.

Outputs ``<dataset>-train_interim_<date>.csv`` and ``<dataset>-test_interim_<date>.csv``:
the raw rows unchanged, so the test split is exactly what a served model will be sent.
Each file is the raw header line and the chosen raw lines, byte for byte, in the split's
order (:func:`tabml.csvfile.record_lines`): nothing is parsed but the target column, and
nothing is formatted again. A raw file whose records span several lines (a quoted line
break) is read whole and written by pandas in the dataset's format instead
(:func:`tabml.csvfile.write_dataset`). Either way a stage reads these files with the
dataset's options (:func:`tabml.csvfile.read_dataset`).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.cli import run_stage, stage_parser
from tabml.csvfile import CsvOptions, read_dataset, record_lines, write_dataset
from tabml.errors import DataError
from tabml.files import replace_dir
from tabml.schema import as_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params, SplitParams

log = logging.getLogger("stages.split")

PARTS = ("train", "test")
# Object columns whose distinct values (Python equality) have distinct texts: no ``True == 1``.
ONE_KIND = {"string", "boolean", "integer", "floating", "mixed-integer-float", "empty"}


def labels_as_text(column: pd.Series) -> pd.Series:
    """:func:`tabml.schema.as_text` of each value, worked out once per distinct value.

    Values of mixed kinds go one by one: Python finds ``True == 1``, so a distinct pass
    would merge labels that read differently.
    """
    import numpy as np
    import pandas as pd

    values = column.to_numpy()
    if column.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ONE_KIND:
        return as_text(column)
    codes, uniques = pd.factorize(values)  # missing values get code -1
    texts = as_text(pd.Series(uniques, dtype=column.dtype)).to_numpy(dtype=object)
    return pd.Series(np.append(texts, np.nan)[codes], index=column.index, dtype=object)


def split_positions(
    target: pd.Series, spec: DatasetParams, params: SplitParams
) -> tuple[np.ndarray, np.ndarray]:
    """Core: the positions of the train and the test rows, in the split's order.

    Rows without a target are left out (logged); the others are split stratified on the
    target with ``train_test_split`` and the seed, as the frame itself would be.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    texts = labels_as_text(target)  # blank text is missing
    labelled = np.flatnonzero(texts.notna().to_numpy())
    dropped = len(target) - len(labelled)
    if dropped:
        log.warning("dropped %d rows with a missing target %r", dropped, spec.target)
    labels = texts.iloc[labelled]
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
        stratify=labels.to_numpy(),
    )
    return train, test


def _check_target(columns: pd.Index, spec: DatasetParams) -> None:
    if spec.target not in columns:
        raise DataError(
            f"target column {spec.target!r} not in data (columns: {', '.join(map(str, columns))})"
        )


def split_data(
    frame: pd.DataFrame, spec: DatasetParams, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Core: drop rows without a target (logged), then split stratified on the target."""
    _check_target(frame.columns, spec)
    train, test = split_positions(frame[spec.target], spec, params)
    return frame.iloc[train].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)


def _write_lines(path: Path, header: bytes, lines: np.ndarray, positions: np.ndarray) -> None:
    with open(path, "wb") as out:
        out.write(header)
        out.writelines(lines[positions])


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    name = args.dataset
    spec = params.dataset(name)
    if spec.engine == "dask":
        from tabml.daskengine.split import split

        return split(name, params, layout)
    options = CsvOptions.of(spec)
    raw = layout.raw(name, spec.snapshot)
    target = read_dataset(raw, options, usecols=lambda column: column == spec.target)
    if spec.target not in target.columns:
        _check_target(read_dataset(raw, options, nrows=0).columns, spec)
    positions = dict(
        zip(PARTS, split_positions(target[spec.target], spec, params.split), strict=True)
    )
    found = record_lines(raw.read_bytes(), len(target), options)
    del target
    paths = {part: layout.interim(name, part, spec.snapshot) for part in PARTS}
    if found is not None:
        import numpy as np

        header = found[0]
        lines = np.empty(len(found[1]), dtype=object)  # the bytes of each line, not copied
        lines[:] = found[1]
        del found

        def write(folder: Path) -> None:
            for part, path in paths.items():
                _write_lines(folder / path.name, header, lines, positions[part])

        how = "the raw lines"
    else:
        log.info("a record spans several lines in %s: writing the splits with pandas", raw)
        frame = read_dataset(raw, options)

        def write(folder: Path) -> None:
            for part, path in paths.items():
                rows = frame.iloc[positions[part]]
                write_dataset(folder / path.name, rows, options)

        how = "rewritten"
    replace_dir(layout.interim_dir(name), write)
    for part, path in paths.items():
        log.info("wrote %s: %d rows (%s)", path, len(positions[part]), how)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.split", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
