"""The command line every stage shares: same flags, one-line errors, exit code 2.

Importing this module is cheap: params (pydantic) load only once arguments are parsed, so
``python -m stages.<x> --help`` answers at once. Before anything else a stage checks it runs
in the project's environment (tabml.environment), then deletes the temporaries a killed run
left in the output trees (tabml.files.remove_stale_temps).

One line and exit code 2, never a traceback, for what the user can fix: the project's own
errors, a full, read-only or failing disk (naming the file), and running out of memory.
Anything else is a bug and keeps its traceback; Ctrl-C is never caught.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.errors import PipelineError
from tabml.layout import Layout

if TYPE_CHECKING:
    from tabml.params import Params


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def one_line(exc: BaseException) -> str:
    """An error message folded onto one line."""
    return " ".join(str(exc).split())


def stage_parser(
    prog: str, description: str, *, dataset: bool = False, algo: bool = False
) -> argparse.ArgumentParser:
    """The shared command line of every stage; ``prog`` is how to run it (python -m ...)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--root", default=".", help="repository root for inputs and outputs")
    if dataset:
        parser.add_argument("--dataset", required=True, help="dataset name declared in params.yaml")
    if algo:
        parser.add_argument("--algo", required=True, help="algorithm listed in train.algos")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


# The trees under the root that stages write into: a killed run may leave temporaries there
# (beside the output, when the repository's temp home cannot be used).
OUTPUT_TREES = ("data", "models", "metrics", "plots", "tuned")
_CAN_NOT = {
    errno.ENOSPC: ("write", "no space left on device", "free space and rerun"),
    errno.EDQUOT: ("write", "disk quota exceeded", "free space or raise the quota and rerun"),
    errno.EROFS: (
        "write",
        "read-only file system",
        "make it writable (or run in a writable copy of the repository) and rerun",
    ),
    errno.EFBIG: (
        "write",
        "file too large for the file system",
        "write to a file system that allows larger files and rerun",
    ),
    errno.EACCES: (
        "access",
        "permission denied",
        "give this user read and write access to it and its directory, and rerun",
    ),
    errno.EPERM: (
        "access",
        "operation not permitted",
        "give this user read and write access to it and its directory, and rerun",
    ),
    errno.EIO: ("access", "input/output error", "check the disk (dmesg) and rerun"),
}


def stage_name(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The stage as dvc.yaml names it: ``python -m stages.train`` --dataset credit --algo rf
    is ``train@credit-rf``."""
    name = parser.prog.split()[-1].removeprefix("stages.").replace("_", "-")
    item = "-".join(filter(None, (getattr(args, "dataset", None), getattr(args, "algo", None))))
    return f"{name}@{item}" if item else name


def disk_error(exc: OSError, root: Path) -> str | None:
    """The one line for an OSError the user can fix (full, read-only, failing disk), or None."""
    if exc.errno not in _CAN_NOT:
        return None
    verb, reason, advice = _CAN_NOT[exc.errno]
    where = f" {exc.filename}" if exc.filename is not None else f" under {root}"
    return f"cannot {verb}{where}: {reason}: {advice}"


# Set to a file path, every stage that ends well appends one JSON line there (stage, wall
# seconds since the process started, peak RSS bytes): what `make bench-scale` reads.
STATS_ENV = "TABML_STAGE_STATS"


def _process_seconds() -> float | None:
    """Wall seconds since this process started (imports included), from /proc; else None."""
    import os

    try:
        with open("/proc/self/stat", "rb") as stat, open("/proc/uptime", "rb") as uptime:
            started = int(stat.read().rsplit(b")", 1)[1].split()[19])  # field 22: starttime
            now = float(uptime.read().split()[0])
        return max(now - started / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes: VmHWM from /proc. Why not
    ``ru_maxrss``: it survives exec, and dvc runs a stage through a shell that execs it, so
    it would report dvc's own memory when that is larger."""
    import resource

    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def report_done(stage: str) -> None:
    """One closing log line with the stage's wall time and peak memory (a long run shows
    what it cost), and the same as JSON for benchmarks when ``TABML_STAGE_STATS`` is set."""
    import json
    import os

    seconds = _process_seconds()
    peak = _peak_rss()
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    logging.getLogger("tabml.cli").info("%s done%s, peak memory %.2f GB", stage, took, peak / 1e9)
    path = os.environ.get(STATS_ENV)
    if path:
        line = json.dumps({"stage": stage, "seconds": seconds, "peak_rss_bytes": peak})
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def _fail(message: str) -> int:
    """Print the one line (any URL in it masked: a second line of defence) and give 2."""
    from tabml.secrets import redact

    print(f"error: {redact(' '.join(message.split()))}", file=sys.stderr)
    return 2


def run_stage(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Params, Layout], None],
    argv: Sequence[str] | None = None,
    *,
    error_hint: Callable[[], str] = str,
) -> int:
    """Parse args and params, run ``body``; user errors become one line and exit code 2
    (``error_hint()`` is appended to that line: what the stage knows of how to undo it)."""
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    # OpenMP threads (xgboost, scikit-learn) sleep instead of spinning while they wait: on a
    # busy machine (two test processes, other work) spinning made a 2-thread xgboost fit
    # 10x slower (measured 25 s vs 2.1 s for five fits). Set before any OpenMP library loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    layout = Layout(Path(args.root))
    try:
        from tabml.environment import check_environment

        check_environment()  # before the first third-party import (pydantic, in params)
        from tabml.files import remove_stale_temps, temp_home
        from tabml.params import load_params

        params = load_params(args.params)
        home = temp_home(layout.root)
        trees = [layout.root / tree for tree in OUTPUT_TREES]
        remove_stale_temps([*trees, home] if home else trees)
        body(args, params, layout)
        report_done(stage_name(parser, args))
    except PipelineError as exc:
        return _fail(f"{exc}{error_hint()}")
    except MemoryError:
        return _fail(
            f"stage {stage_name(parser, args)} ran out of memory: close other programs, "
            "lower the n_jobs settings in params.yaml or use a smaller dataset, and rerun"
        )
    except OSError as exc:
        message = disk_error(exc, layout.root)
        if message is None:
            raise
        return _fail(message)
    return 0
