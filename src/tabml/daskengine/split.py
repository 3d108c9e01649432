"""split@<dataset> on Dask: the raw CSV into train and test Parquet partitions.

Writes ``data/interim/<ds>/<ds>-train-<NNNNN>_interim_<date>.parquet`` and ``...-test-...``,
one pair per partition of the raw CSV (``dask.blocksize`` bytes each), the raw rows
unchanged but typed, so featurize and evaluate read values, not text.

- Types: the raw CSV is read as text with the dataset's options, in blocks cut at line
  ends outside quotes (a quoted line break stays in its row, unlike
  ``dask.dataframe.read_csv``'s cuts), all columns ``object`` (``na_values`` and pandas'
  own markers missing); blank cells are missing, and a column is numeric when every present
  value of the WHOLE column is a number (int64 when all are integers and none is missing),
  boolean when every one is ``True``/``False`` (any case pandas reads), else text: the
  types pandas and :func:`tabml.csvfile.read_dataset` give the whole file. One pass
  gathers that, the second converts, so every partition's Parquet files have one schema.
- Split: a row goes to test when a seeded hash of its values, as a fraction of 2**64, is
  below ``split.test_size``. Each class keeps its share up to sampling noise (a few rows
  per thousand on large data), every partition is split independently (no shuffle), the
  result does not depend on the partitioning, and identical rows land on the same side (no
  leak of duplicates into the test split). Rows without a target are dropped (logged).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import Params

log = logging.getLogger("tabml.daskengine.split")


def column_stats(part: pd.DataFrame, target: str) -> dict[str, Any]:
    """Worker: per column of one text partition (present values, numbers among them,
    whether they are all integers, booleans among them), the target's label counts and
    the row count. Each distinct value is judged once (:mod:`.frames`)."""
    import numpy as np
    import pandas as pd

    from tabml.csvfile import BOOLEANS
    from tabml.daskengine.frames import text_counts

    columns = {}
    for name in part.columns:
        counts = part[name].value_counts(dropna=True)
        blank = np.array([isinstance(v, str) and not v.strip() for v in counts.index], bool)
        counts = counts[~blank]
        numbers = pd.to_numeric(pd.Series(counts.index, dtype=object), errors="coerce")
        columns[name] = (
            int(counts.sum()),
            int(counts[numbers.notna().to_numpy()].sum()),
            numbers.dtype.kind in "iu" or not len(counts),
            int(counts[np.isin(counts.index.to_numpy(), list(BOOLEANS))].sum()),
        )
    labels = text_counts(part[target]) if target in part.columns else {}
    return {"rows": len(part), "columns": columns, "labels": labels}


def column_types(stats: list[dict[str, Any]]) -> dict[str, str]:
    """The type of each column over all partitions: int64 (all integers, none missing),
    float64 (all numbers), bool (all True/False), else object (text)."""
    names = list(stats[0]["columns"]) if stats else []
    rows = sum(s["rows"] for s in stats)
    types = {}
    for name in names:
        present = sum(s["columns"][name][0] for s in stats)
        numeric = sum(s["columns"][name][1] for s in stats)
        integer = all(s["columns"][name][2] for s in stats)
        booleans = sum(s["columns"][name][3] for s in stats)
        if present and booleans == present:
            types[name] = "bool"
        elif numeric < present:
            types[name] = "object"
        elif integer and present == rows and rows:
            types[name] = "int64"
        else:
            types[name] = "float64"
    return types


def typed(part: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """A text partition with the whole column's types (:func:`column_types`), blank cells
    missing; booleans as True/False objects (missing None), as pandas leaves them."""
    import pandas as pd

    from tabml.csvfile import BOOLEANS
    from tabml.daskengine.frames import blank_masked

    out = {}
    for name, dtype in types.items():
        column = blank_masked(part[name])
        if dtype in ("int64", "float64"):
            out[name] = pd.to_numeric(column).astype(dtype)
        elif dtype == "bool":
            out[name] = column.map(BOOLEANS).astype(object).where(column.notna(), None)
        else:
            out[name] = column.astype(object)
    return pd.DataFrame(out, index=part.index)


def test_side(part: pd.DataFrame, test_size: float, seed: int) -> Any:
    """True for the rows that go to test: a seeded hash of each row's values below
    ``test_size`` (see the module docstring)."""
    import numpy as np
    import pandas as pd

    hashes = pd.util.hash_pandas_object(part, index=False, hash_key=f"{seed:016d}")
    return (hashes.to_numpy(dtype=np.uint64) / float(2**64)) < test_size


def arrow_schema(types: dict[str, str]) -> Any:
    """The Parquet schema of every partition: int64, float64 or string columns."""
    import pyarrow as pa

    kinds = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "object": pa.string(),
    }
    return pa.schema([(name, kinds[dtype]) for name, dtype in types.items()])


def _split_part(
    part: pd.DataFrame,
    types: dict[str, str],
    target: str,
    test_size: float,
    seed: int,
    paths: tuple[str, str],
) -> dict[str, Any]:
    """Worker: type one partition, drop rows without a target, write its train and test
    Parquet files; the label counts of each side."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tabml.daskengine.frames import text_series

    labels = text_series(part[target])
    kept = labels.notna().to_numpy()
    rows, labels = part[kept], labels[kept]
    test = test_side(rows, test_size, seed)
    frame = typed(rows, types)
    schema = arrow_schema(types)
    counts = {}
    for side, mask, path in (("train", ~test, paths[0]), ("test", test, paths[1])):
        table = pa.Table.from_pandas(frame[mask], schema=schema, preserve_index=False)
        pq.write_table(table, path)
        counts[side] = labels[mask].value_counts().to_dict()
    return {"dropped": int((~kept).sum()), **counts}


def header_line(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.readline()


def block_spans(path: Path, size: int) -> list[tuple[int, int]]:
    """(start, length) of each block of the file (:func:`.ingest.blocks`: about ``size``
    bytes, cut at a line end outside quotes, so a quoted line break stays in its row)."""
    from tabml.daskengine.ingest import blocks

    spans, start = [], 0
    for block in blocks(path, size):
        spans.append((start, len(block)))
        start += len(block)
    return spans


def read_text(path: str | Path, start: int, length: int, header: bytes, kwargs: dict) -> Any:
    """Worker: one block of the raw CSV as text columns (``object``), the dataset's reading
    options applied (its ``na_values`` and pandas' markers missing); ``length`` 0: the
    header alone. The first block holds the header; the others get ``header`` in front."""
    import io

    import pandas as pd

    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.readline() if length == 0 else handle.read(length)
    if start:
        data = header + data
    options = {k: v for k, v in kwargs.items() if k != "low_memory"}
    return pd.read_csv(io.BytesIO(data), dtype=object, **options)


def _add(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for label, n in part.items():
            total[label] = total.get(label, 0) + int(n)
    return total


def _rows_of(result: dict[str, Any]) -> int:
    return sum(sum(result[side].values()) for side in ("train", "test")) + result["dropped"]


def split(name: str, params: Params, layout: Layout) -> None:
    """Split dataset ``name`` with the Dask engine (see the module docstring)."""
    import math

    import dask
    import dask.dataframe as dd

    from tabml.csvfile import CsvOptions
    from tabml.daskengine.cluster import compute, dask_client, size_bytes
    from tabml.files import replace_dir

    spec = params.dataset(name)
    raw = layout.raw(name, spec.snapshot)
    if not raw.exists():
        raise DataError(f"{raw} does not exist: run the stage that writes it first")
    blocksize = size_bytes(params.dask.blocksize, "blocksize")
    with dask_client(params.dask) as client:
        kwargs = CsvOptions.of(spec).read_kwargs()
        header = read_text(raw, 0, 0, b"", kwargs)  # the columns, from the header line
        if spec.target not in header.columns:
            raise DataError(
                f"target column {spec.target!r} not in data "
                f"(columns: {', '.join(map(str, header.columns))})"
            )
        path, line = str(raw.resolve()), header_line(raw)
        meta = header.astype(object)
        parts = dd.from_delayed(
            [
                dask.delayed(read_text)(path, start, length, line, kwargs)
                for start, length in block_spans(raw, blocksize)
            ],
            meta=meta,
            verify_meta=False,
        ).to_delayed()
        stats = compute(
            client,
            [dask.delayed(column_stats)(p, spec.target) for p in parts],
            f"scan {raw}",
            rows=lambda s: s["rows"],
        )
        types = column_types(stats)
        counts = _add([s["labels"] for s in stats])
        labelled = sum(counts.values())
        if len(counts) < 2:
            raise DataError(f"target {spec.target!r} has fewer than two classes; cannot split")
        n_test = math.ceil(labelled * params.split.test_size)
        smallest = min(counts, key=lambda k: (counts[k], k))
        if counts[smallest] < 2 or n_test < len(counts) or labelled - n_test < len(counts):
            raise DataError(
                f"too few rows to split: {labelled} labelled rows, smallest class "
                f"{smallest!r} has {counts[smallest]}, split.test_size={params.split.test_size}"
            )
        results: list[dict[str, Any]] = []

        def write(tmp: Path) -> None:
            tasks = [
                dask.delayed(_split_part)(
                    part,
                    types,
                    spec.target,
                    params.split.test_size,
                    params.split.seed,
                    tuple(
                        str(tmp.resolve() / layout.interim_part(name, side, i, spec.snapshot).name)
                        for side in ("train", "test")
                    ),
                )
                for i, part in enumerate(parts)
            ]
            results.extend(compute(client, tasks, f"split {name}", rows=lambda r: _rows_of(r)))
            for side in ("train", "test"):
                seen = _add([r[side] for r in results])
                missing = [label for label in counts if not seen.get(label)]
                if missing:
                    raise DataError(
                        f"too few rows to split: no row of class {missing[0]!r} fell into the "
                        f"{side} split (split.test_size={params.split.test_size}): add rows "
                        "or change split.test_size"
                    )

        replace_dir(layout.interim_dir(name), write)
    dropped = sum(r["dropped"] for r in results)
    if dropped:
        log.warning("dropped %d rows with a missing target %r", dropped, spec.target)
    for side in ("train", "test"):
        log.info(
            "wrote %d %s partitions to %s: %d rows",
            len(results),
            side,
            layout.interim_dir(name),
            sum(_add([r[side] for r in results]).values()),
        )
