"""Batch predictions for a CSV of raw rows, with the same validation as the API.

    python -m tabml.serving.predict --model xgb_credit_v1 --input raw.csv --output predictions.csv
    python -m tabml.serving.predict --dataset credit --input raw.csv --output predictions.csv

The output has one row per input row, in order: the ``--keep`` columns (e.g. an id), then
``prediction`` and one ``proba_<class>`` column per class. It is written atomically, so a
failure never leaves a partial file and an existing output stays as it was. There is no row
limit here: this is the tool for files too big for ``/validate``. As the server does, it loads
a model only when ``dvc.lock`` records the model file's md5.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula, so a ``--keep`` column could smuggle ``=HYPERLINK(...)`` from
an untrusted input into whoever opens the predictions. Following OWASP's CSV-injection rule,
such a text cell (and column name) is written with a ``'`` in front, which spreadsheets show
as plain text. Numbers are never changed: ``-1.5`` stays ``-1.5``.

Errors are one line on stderr (``error: ...``): exit 2 for what the user can fix (bad input or
model, an output that cannot be written, out of memory), exit 1 for a bug, whose traceback
only ``--verbose`` shows; exit 130 on Ctrl-C.

The web framework is not imported: only the model's own libraries load.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.errors import PipelineError
from tabml.serving.errors import InputError, NoChampionError, NotFoundError, ServingError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.model import Model

log = logging.getLogger("tabml.serving.predict")

# OWASP CSV injection: cells that spreadsheets would run as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def resolve(
    root: Path, params_file: Path, model_id: str | None, dataset: str | None
) -> tuple[Model, float]:
    """Load the model named by id, or the champion of ``dataset``; and its card's threshold."""
    from tabml.artifact import load_vouched
    from tabml.layout import ID_FORMAT, Layout, parse_model_id
    from tabml.params import load_params
    from tabml.serving.registry import champion

    params = load_params(params_file if params_file.is_absolute() else root / params_file)
    if model_id is None:
        params.dataset(dataset or "")  # raises naming the datasets params declares
        model_id, why_none = champion(Layout(root), dataset or "")
        if why_none is not None:
            raise NoChampionError(
                f"dataset {dataset!r} has no champion: {why_none}; give --model to use one of "
                "its models anyway"
            )
        if model_id is None:
            raise NotFoundError(
                f"no champion for dataset {dataset!r}: {Layout(root).leaderboard(dataset or '')} "
                "is missing or unreadable (run the pipeline, or give --model)"
            )
    parsed = parse_model_id(model_id)
    if parsed is None:
        raise NotFoundError(f"--model {model_id!r} is not a model id ({ID_FORMAT})")
    algo, name, version = parsed
    try:
        model = load_vouched(root, algo, name, version)
    except PipelineError:
        raise
    except Exception as exc:  # a damaged file: say which, without a traceback
        path = Layout(root).model(algo, name, version)
        raise ServingError(f"cannot load {path}: {type(exc).__name__}") from None
    return model, model.card.threshold


def predict_file(model: Model, threshold: float, source: Path, keep: list[str]) -> pd.DataFrame:
    """Core: validated predictions for the rows of ``source`` (raises on bad input)."""
    from tabml.serving.scoring import Predictor, csv_batch, read_model_csv
    from tabml.target import labels

    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    frame = read_model_csv(data, model, str(source))
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise InputError(f"--keep {missing[0]!r}: not a column of {source}")
    proba = Predictor(model).predict_proba(csv_batch(frame, model))
    out = frame.loc[:, keep].reset_index(drop=True)
    names = ["prediction", *(f"proba_{c}" for c in model.classes)]
    clash = [n for n in names if n in out.columns]
    if clash:
        raise InputError(f"--keep {clash[0]!r}: clashes with an output column")
    out["prediction"] = labels(proba[:, 1], model.classes, threshold)
    for j, cls in enumerate(model.classes):
        # repr is the shortest text that reads back as the same double (to_csv rounds to ~15
        # digits), so the file holds exactly what the API returns.
        out[f"proba_{cls}"] = [repr(p) for p in proba[:, j].tolist()]
    return out


def defuse(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, as inert text (``'`` in front).

    Anything else is returned as it is; so is text the pipeline reads as a number (``-1.5``):
    a spreadsheet reads it as that number too.
    """
    from tabml.schema import number

    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        number(value)
    except ValueError:
        return f"'{value}"
    return value


def _text_columns(frame: pd.DataFrame) -> list[str]:
    from pandas.api.types import is_object_dtype, is_string_dtype

    return [c for c in frame.columns if is_object_dtype(frame[c]) or is_string_dtype(frame[c])]


def defuse_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with :func:`defuse` applied to its column names and text cells."""
    out = frame.copy()
    for name in _text_columns(out):
        out[name] = [defuse(value) for value in out[name].tolist()]
    out.columns = [defuse(name) for name in out.columns]
    return out


def _kept(output: Path) -> str:
    return f"{output} was left as it was" if output.exists() else "nothing was written"


def check_output(output: Path) -> None:
    """Refuse an output path that can never be written, before any work is done."""
    if output.is_dir():
        raise ServingError(
            f"--output {output} is a directory: give a file path such as "
            f"{output / 'predictions.csv'}"
        )


def write_predictions(output: Path, frame: pd.DataFrame) -> None:
    """Write the predictions CSV atomically, formulas defused; a failed write is one line."""
    from tabml.files import write_csv

    try:
        write_csv(output, defuse_formulas(frame))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            advice = "free some disk space or choose another --output"
        else:
            advice = "choose another --output"
        raise ServingError(
            f"cannot write --output {output}: {reason} (writing a new file in "
            f"{output.parent}, then renaming it): {advice}; {_kept(output)}"
        ) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tabml.serving.predict", description=__doc__.splitlines()[0]
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="model id, e.g. xgb_credit_v1")
    which.add_argument("--dataset", help="use this dataset's champion model (leaderboard)")
    parser.add_argument("--input", required=True, type=Path, help="CSV of raw rows")
    parser.add_argument("--output", required=True, type=Path, help="predictions CSV to write")
    parser.add_argument(
        "--keep",
        nargs="*",
        default=[],
        metavar="COLUMN",
        help="input columns to copy over (a text cell starting with = + - @, a tab or a "
        "carriage return gets a ' in front, so spreadsheets do not run it as a formula; "
        "numbers are copied as they are)",
    )
    parser.add_argument("--root", default=".", type=Path, help="project root (default: .)")
    parser.add_argument("--params", default=Path("params.yaml"), type=Path, help="params file")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log model loading; tracebacks of bugs"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one ``error:`` line on stderr (see the module doc)."""
    from tabml.cli import one_line

    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(logging.INFO)

    def fail(message: str, code: int = 2) -> int:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return code

    try:
        check_output(args.output)
        model, threshold = resolve(args.root, args.params, args.model, args.dataset)
        out = predict_file(model, threshold, args.input, args.keep)
        write_predictions(args.output, out)
    except (ServingError, PipelineError) as exc:
        return fail(one_line(exc))
    except MemoryError:
        return fail(
            f"out of memory scoring {args.input}: split it into smaller files and score each; "
            f"{_kept(args.output)}"
        )
    except KeyboardInterrupt:
        return fail(f"interrupted: {_kept(args.output)}", 130)
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if args.verbose:
            log.exception("the traceback to report:")
        return fail(
            f"unexpected {type(exc).__name__} while scoring {args.input}: please report it "
            "(--verbose shows the traceback)",
            1,
        )
    log.info("wrote %d predictions of %s to %s", len(out), model.model_id, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
