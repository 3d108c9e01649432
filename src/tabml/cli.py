"""The command line every stage shares: same flags, one-line errors, exit code 2.

Importing this module is cheap: params (pydantic) load only once arguments are parsed, so
``python -m stages.<x> --help`` answers at once.
"""

from __future__ import annotations

import argparse
import logging
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


def run_stage(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Params, Layout], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse args and params, run ``body``; user errors become one line and exit code 2."""
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        from tabml.params import load_params

        params = load_params(args.params)
        body(args, params, Layout(Path(args.root)))
    except PipelineError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0
