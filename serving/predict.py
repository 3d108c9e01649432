"""Batch predictions for a CSV of raw rows, with the same validation as the API.

    python -m serving.predict --model xgb_credit_v1 --input raw.csv --output predictions.csv
    python -m serving.predict --dataset credit --input raw.csv --output predictions.csv

The output has one row per input row, in order: the ``--keep`` columns (e.g. an id), then
``prediction`` and one ``proba_<class>`` column per class. It is written atomically, so a
failure never leaves a partial file. Errors are one line on stderr (``error: ...``), exit 2.
There is no row limit here: this is the tool for files too big for ``/validate``.

The web framework is not imported: only the model's own libraries load.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from serving.errors import InputError, NotFoundError, ServingError
from serving.registry import ID_FORMAT, MODEL_ID_RE, load_model
from stages.common import Layout, write_csv
from stages.errors import PipelineError
from stages.params import load_params

if TYPE_CHECKING:
    import pandas as pd

    from stages.model import TrainedModel

log = logging.getLogger("serving.predict")


def resolve(
    root: Path, params_file: Path, model_id: str | None, dataset: str | None
) -> tuple[TrainedModel, float]:
    """Load the model named by id, or the champion of ``dataset``; and the params' threshold."""
    params = load_params(params_file if params_file.is_absolute() else root / params_file)
    layout = Layout(root)
    if model_id is None:
        params.dataset(dataset or "")  # raises naming the datasets params declares
        board = layout.leaderboard(dataset or "")
        try:
            model_id = json.loads(board.read_text(encoding="utf-8"))["best_model"]
        except (OSError, ValueError, KeyError, TypeError):
            raise NotFoundError(
                f"no champion for dataset {dataset!r}: {board} is missing or unreadable "
                "(run the pipeline, or give --model)"
            ) from None
    match = MODEL_ID_RE.fullmatch(str(model_id))
    if match is None:
        raise NotFoundError(f"--model {model_id!r} is not a model id ({ID_FORMAT})")
    path = layout.model(match["algo"], match["dataset"], int(match["version"]))
    if not path.exists():
        raise NotFoundError(f"no model file {path}: run the pipeline first (make repro)")
    try:
        model = load_model(path, str(model_id))
    except PipelineError:
        raise
    except Exception as exc:
        raise ServingError(f"cannot load {path}: {type(exc).__name__}") from None
    return model, params.evaluate.threshold


def predict_file(
    model: TrainedModel, threshold: float, source: Path, keep: list[str]
) -> pd.DataFrame:
    """Core: validated predictions for the rows of ``source`` (raises on bad input)."""
    from serving.scoring import Predictor, batch_from_frame, read_csv_bytes

    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    sep = model.params.get("dataset", {}).get("sep", ",")
    frame = read_csv_bytes(data, sep=sep, what=str(source))
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise InputError(f"--keep {missing[0]!r}: not a column of {source}")
    batch = batch_from_frame(frame, model.schema, csv=True)
    proba = Predictor(model).predict_proba(batch)
    out = frame.loc[:, keep].reset_index(drop=True)
    names = ["prediction", *(f"proba_{c}" for c in model.classes)]
    clash = [n for n in names if n in out.columns]
    if clash:
        raise InputError(f"--keep {clash[0]!r}: clashes with an output column")
    negative, positive = model.classes
    out["prediction"] = [positive if p >= threshold else negative for p in proba[:, 1]]
    for j, cls in enumerate(model.classes):
        # repr is the shortest text that reads back as the same double (to_csv rounds to ~15
        # digits), so the file holds exactly what the API returns.
        out[f"proba_{cls}"] = [repr(p) for p in proba[:, j].tolist()]
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving.predict", description=__doc__.splitlines()[0]
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="model id, e.g. xgb_credit_v1")
    which.add_argument("--dataset", help="use this dataset's champion model (leaderboard)")
    parser.add_argument("--input", required=True, type=Path, help="CSV of raw rows")
    parser.add_argument("--output", required=True, type=Path, help="predictions CSV to write")
    parser.add_argument(
        "--keep", nargs="*", default=[], metavar="COLUMN", help="input columns to copy over"
    )
    parser.add_argument("--root", default=".", type=Path, help="repository root (default: .)")
    parser.add_argument("--params", default=Path("params.yaml"), type=Path, help="params file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
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
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    log.info("wrote %d predictions of %s to %s", len(out), model.model_id, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
