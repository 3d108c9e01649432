"""The Dask client every Dask-engine stage computes with, and its progress lines.

``dask.address`` empty: a ``distributed.LocalCluster`` is started here with ``n_workers``
processes of ``threads_per_worker`` threads and ``memory_limit`` each (its dashboard link is
logged once); otherwise the client connects to the scheduler at that address. Either way
:func:`dask_client` closes the client, and the cluster it started, when the stage ends,
well or with an error, so no worker process outlives the stage (worker processes also exit
by themselves if the stage is killed: distributed ties them to their parent).

A scheduler that cannot be reached within :data:`CONNECT_SECONDS` is one ``error:`` line
naming ``dask.address``, not a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tabml.errors import PipelineError

if TYPE_CHECKING:
    from distributed import Client

    from tabml.params import DaskParams

log = logging.getLogger("tabml.daskengine")

# A scheduler accepts a connection within milliseconds on a network: an address that does
# not within this many seconds is told at once, not after dask's 30 s.
CONNECT_SECONDS = 5
START_SECONDS = 30  # for the client's handshake and for a first worker to join
PROGRESS_SECONDS = 5.0  # at most one progress line per this many seconds, per kind
PROGRESS_TOPIC = "tabml-progress"  # worker -> stage log lines (xgboost rounds)
DASK_CONFIG = {
    # pyarrow strings would make text columns another dtype than the pandas engine's object
    # columns; the validation rules (tabml.schema) are written and tested on the latter.
    "dataframe.convert-string": False,
    # the only shuffles here are tiny (xgboost's distinct labels): the task-based shuffle
    # needs no scheduler plugin, which logs a warning for each
    "dataframe.shuffle.method": "tasks",
}


class ClusterError(PipelineError):
    """The Dask scheduler cannot be reached or the ``dask`` params cannot start a cluster."""


def size_bytes(value: str, key: str) -> int:
    """A size in dask's syntax ("64MiB", "4GB") as bytes; one line naming ``dask.<key>``."""
    from dask.utils import parse_bytes

    try:
        size = int(parse_bytes(value))
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise ClusterError(f"dask.{key} = {value!r}: not a size (write it as 64MiB, 512MB or 4GiB)")
    return size


def _scheme(address: str) -> str:
    return address.split("://", 1)[0].lower() if "://" in address else "tcp"


async def _probe(address: str, timeout: float) -> None:
    """Open and close one connection to the scheduler (no Client: a Client that fails to
    connect prints a traceback when it is garbage-collected)."""
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    await comm.close()


def _unreachable(address: str, reason: str) -> ClusterError:
    from tabml.secrets import redact

    return ClusterError(
        f"cannot reach the Dask scheduler at dask.address = {redact(address)!r}: {reason}: "
        "start it (dask scheduler) or fix the address in params.yaml (empty starts a "
        "LocalCluster on this machine)"
    )


def _connect(address: str) -> Client:
    import asyncio

    from distributed import Client

    from tabml.cli import one_line

    failure = None
    if _scheme(address) in ("tcp", "ws"):  # tls needs the client's security settings
        try:
            asyncio.run(_probe(address, CONNECT_SECONDS))
        except (OSError, ValueError, TypeError) as exc:
            failure = one_line(exc) or type(exc).__name__
    if failure is None:
        try:
            client = Client(address, timeout=START_SECONDS, set_as_default=True)
        except (OSError, ValueError, TypeError) as exc:
            failure = one_line(exc) or type(exc).__name__
    if failure is not None:
        raise _unreachable(address, failure)
    try:
        client.wait_for_workers(1, timeout=START_SECONDS)
    except (OSError, TimeoutError):
        client.close()
        raise _unreachable(address, f"no worker joined it within {START_SECONDS} s") from None
    return client


def _local_cluster(params: DaskParams) -> Any:
    import importlib.util

    from distributed import LocalCluster

    memory = size_bytes(params.memory_limit, "memory_limit")
    cluster = LocalCluster(
        n_workers=params.n_workers,
        threads_per_worker=params.threads_per_worker,
        memory_limit=memory,
        processes=True,
        # Workers log a failing task with its traceback; the stage re-raises that error
        # itself (one line for the user's errors, the traceback for a bug).
        silence_logs=logging.CRITICAL,
        # loopback, any free port: never exposed to the network, never a port clash
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    served = "" if importlib.util.find_spec("bokeh") else " (not served: bokeh is not installed)"
    log.info(
        "started a Dask LocalCluster: %d workers x %d threads, %s memory each; dashboard %s%s",
        params.n_workers,
        params.threads_per_worker,
        params.memory_limit,
        cluster.dashboard_link,
        served,
    )
    return cluster


def _log_event(event: Any) -> None:
    """Client side of :func:`report`: a worker's progress line, logged here."""
    _, message = event
    log.info("%s", message)


def _task_name(exc: BaseException) -> str:
    """The task a KilledWorker error names, without dask's key hash."""
    key = exc.args[0] if exc.args else "a task"
    name = key[0] if isinstance(key, tuple) else str(key)
    return str(name).rsplit("-", 1)[0]


@contextlib.contextmanager
def dask_client(params: DaskParams) -> Iterator[Client]:
    """A client to the ``dask`` params' scheduler (or to a LocalCluster started here),
    closed with its cluster when the block ends, normally or by an exception."""
    import dask
    from distributed import Client, KilledWorker

    cluster = None
    client = None
    # distributed logs every connection at INFO: its warnings are what a user needs here
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    with dask.config.set(DASK_CONFIG):
        try:
            if params.address.strip():
                client = _connect(params.address.strip())
                log.info(
                    "connected to the Dask scheduler at %s (%d workers)",
                    params.address.strip(),
                    len(client.scheduler_info().get("workers", {})),
                )
            else:
                cluster = _local_cluster(params)
                client = Client(cluster, set_as_default=True)
            client.subscribe_topic(PROGRESS_TOPIC, _log_event)
            yield client
        except KilledWorker as exc:
            raise ClusterError(
                f"a Dask worker died running {_task_name(exc)} (most likely out of memory): "
                "lower dask.blocksize, or raise dask.memory_limit or use a larger cluster"
            ) from None
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(PROGRESS_TOPIC)
                client.close()
            if cluster is not None:
                cluster.close()
            quiet.setLevel(level)


def report(message: str) -> None:
    """A progress line from a task: logged by the stage (the client) when run on a worker,
    logged here otherwise."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        log.info("%s", message)
        return
    worker.log_event(PROGRESS_TOPIC, message)


class Progress:
    """Progress lines at a steady, low rate: at most one per :data:`PROGRESS_SECONDS`,
    plus the last one (``final=True``)."""

    def __init__(self, every: float = PROGRESS_SECONDS) -> None:
        self.every = every
        self.started = time.monotonic()
        self.last = self.started
        self.said: tuple[str, tuple[Any, ...]] | None = None  # the last line, not repeated

    def __call__(self, message: str, *args: Any, final: bool = False) -> None:
        now = time.monotonic()
        said = (message, args)
        if (final and said != self.said) or now - self.last >= self.every:
            self.last, self.said = now, said
            log.info(message + " (%.1f s)", *args, now - self.started)


@contextlib.contextmanager
def heartbeat(message: str, every: float = 30.0) -> Iterator[None]:
    """Log ``message`` with the seconds so far every ``every`` seconds while the block runs:
    a long call that reports nothing itself (one XGBoost round of a whole forest) still
    shows it is alive."""
    import threading

    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            log.info("%s: %.0f s so far", message, time.monotonic() - started)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def compute(
    client: Client,
    tasks: list[Any],
    what: str,
    rows: Callable[[Any], int] | None = None,
) -> list[Any]:
    """Compute dask ``tasks`` (delayed objects) on the cluster; results in task order.

    Logs ``what`` with how many tasks are done (and, with ``rows``, how many rows their
    results count) at a low rate (:class:`Progress`). If tasks fail, the error of the first
    failing task in task order is raised once all have ended: the same error every run.
    """
    from distributed import as_completed

    futures = client.compute(tasks)
    index = {id(future): i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    errors: dict[int, Exception] = {}
    progress = Progress()
    done = counted = 0
    try:
        for future in as_completed(futures):
            i = index[id(future)]
            try:
                results[i] = future.result()
            except Exception as exc:  # the task's own error, re-raised below in task order
                errors[i] = exc
                continue
            done += 1
            counted += rows(results[i]) if rows is not None else 0
            if not errors:
                counts = f", {counted} rows" if rows is not None else ""
                progress(
                    f"%s: %d/%d partitions{counts}",
                    what,
                    done,
                    len(futures),
                    final=done == len(futures),
                )
    finally:
        for future in futures:
            future.release()
    if errors:
        raise errors[min(errors)]
    return results
