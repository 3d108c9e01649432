"""check-params: validate the whole of params.yaml, and nothing else.

DVC reruns a stage only when a params key it lists changes, so a typo'd key such as
``dvc exp run -S +train.rff.n_estimators=50`` would otherwise rerun nothing and pass
silently. This stage depends on every key, so any params change runs it (in well under a
second: it imports only pydantic and ruamel.yaml) and a bad key stops the run with a
message naming it.

It also checks where each dataset keeps its files (:meth:`tabml.params.Params.check_sources`):
``ingest@<ds>`` depends on ``data/external/<ds>/`` only, and DVC refuses to run a stage whose
dependency is missing with a bare "No such file or directory" of its own; this stage runs
first (whenever params.yaml changes, as when a dataset is added or its source moved), so it
says what to do instead. A local source outside the repository is allowed with a warning.

Being the first stage DVC runs, it is also the one that stops ``.venv/bin/dvc repro`` run
from a shell without the environment: like every stage (``tabml.cli.run_stage``), it first
checks that its ``python`` is the project's (``tabml.environment``).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.cli import run_stage, stage_parser

if TYPE_CHECKING:
    from tabml.layout import Layout
    from tabml.params import Params

log = logging.getLogger("stages.check_params")


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    # run_stage has already parsed and validated the file; check where the sources are
    # (DVC checks an ingest stage's folder before running it: only this stage can explain).
    for warning in params.check_sources(layout.root):
        log.warning("%s", warning)
    log.info(
        "%s is valid: datasets %s; algorithms %s",
        args.params,
        ", ".join(params.datasets),
        ", ".join(params.train.algos),
    )


def exp_run_hint() -> str:
    """How to undo a bad ``dvc exp run -S`` in the workspace: DVC writes the value into
    params.yaml before it runs the stages, and leaves it there when a stage fails, so the
    next run fails too. DVC sets ``DVC_EXP_NAME`` for an experiment and ``DVC_ROOT`` to the
    workspace; a queued experiment runs in a temporary copy, leaving params.yaml alone."""
    root = os.environ.get("DVC_ROOT")
    if (
        not os.environ.get("DVC_EXP_NAME")
        or not root
        or Path(root).resolve() != Path.cwd().resolve()
    ):
        return ""
    return (
        "; dvc exp run -S left this value in params.yaml: `git checkout params.yaml` "
        "reverts it (and any other uncommitted edit of it)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.check_params", __doc__.splitlines()[0])
    return run_stage(parser, _main, argv, error_hint=exp_run_hint)


if __name__ == "__main__":
    raise SystemExit(main())
