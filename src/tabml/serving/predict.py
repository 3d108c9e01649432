"""Batch predictions for a CSV of raw rows, with the same validation as the API.

    python -m tabml.serving.predict --model xgb_credit_v1 --input raw.csv --output predictions.csv
    python -m tabml.serving.predict --dataset credit --input raw.csv --output predictions.csv

The output has one row per input row, in order: the ``--keep`` columns (e.g. an id), then
``prediction`` and one ``proba_<class>`` column per class. It is written atomically, so a
failure never leaves a partial file. Errors are one line on stderr (``error: ...``), exit 2.
There is no row limit here: this is the tool for files too big for ``/validate``. As the
server does, it loads a model only when ``dvc.lock`` records the model file's md5.

The web framework is not imported: only the model's own libraries load.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.errors import PipelineError
from tabml.serving.errors import InputError, NotFoundError, ServingError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.model import Model

log = logging.getLogger("tabml.serving.predict")


def resolve(
    root: Path, params_file: Path, model_id: str | None, dataset: str | None
) -> tuple[Model, float]:
    """Load the model named by id, or the champion of ``dataset``; and the params' threshold."""
    from tabml.artifact import load_vouched
    from tabml.layout import ID_FORMAT, Layout, parse_model_id
    from tabml.params import load_params
    from tabml.serving.registry import champion_id

    params = load_params(params_file if params_file.is_absolute() else root / params_file)
    if model_id is None:
        params.dataset(dataset or "")  # raises naming the datasets params declares
        model_id = champion_id(Layout(root), dataset or "")
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
    return model, params.evaluate.threshold


def predict_file(model: Model, threshold: float, source: Path, keep: list[str]) -> pd.DataFrame:
    """Core: validated predictions for the rows of ``source`` (raises on bad input)."""
    from tabml.serving.scoring import Predictor, csv_batch, read_csv_bytes
    from tabml.target import labels

    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    frame = read_csv_bytes(data, sep=model.sep, what=str(source))
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
        "--keep", nargs="*", default=[], metavar="COLUMN", help="input columns to copy over"
    )
    parser.add_argument("--root", default=".", type=Path, help="project root (default: .)")
    parser.add_argument("--params", default=Path("params.yaml"), type=Path, help="params file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from tabml.cli import one_line
    from tabml.files import write_csv

    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(logging.INFO)
    try:
        model, threshold = resolve(args.root, args.params, args.model, args.dataset)
        out = predict_file(model, threshold, args.input, args.keep)
        write_csv(args.output, out)
    except (ServingError, PipelineError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    log.info("wrote %d predictions of %s to %s", len(out), model.model_id, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
