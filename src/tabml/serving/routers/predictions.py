"""Predictions: JSON rows (``/predict``) and CSV uploads scored against their target
(``/validate``). Both validate rows with the pipeline's own rules (tabml.schema)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tabml.schema import validate
from tabml.serving.deps import CurrentRegistry, CurrentSettings
from tabml.serving.errors import TooLargeError
from tabml.serving.registry import Registry, ServedModel
from tabml.serving.schemas import ERRORS, PredictRequest, PredictResponse, ValidateResponse
from tabml.serving.scoring import csv_batch, predictions, read_model_csv, target_metrics
from tabml.serving.settings import Settings

router = APIRouter(tags=["predictions"])

# Up to this many rows on the fast path, /predict runs on the event loop: the thread-pool
# hand-off costs more than the prediction itself (measured: rf p50 1.7 ms inline, 2.8 ms in
# the pool; 8 clients: 583 vs 177 req/s). Bigger batches and the sklearn path use the pool.
INLINE_ROWS = 64


def check_rows(n_rows: int, settings: Settings) -> None:
    if n_rows > settings.max_rows:
        raise TooLargeError(
            f"{n_rows} rows: over the limit of {settings.max_rows} per request "
            "(SERVING_MAX_ROWS); use the batch CLI (python -m tabml.serving.predict) for more"
        )


def _payload(served: ServedModel, proba: Any, n_rows: int) -> dict[str, Any]:
    card = served.model.card
    threshold = card.threshold  # the model's own decision rule (train chose it)
    return {
        "model_id": card.model_id,
        "dataset": card.dataset,
        "classes": list(card.classes),
        "threshold": threshold,
        "n_rows": n_rows,
        "predictions": predictions(proba, card.classes, threshold),
    }


def predict_rows(served: ServedModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Core of /predict: validate the rows, predict at the model's threshold."""
    batch = validate(rows, served.model.schema)
    proba = served.predictor.predict_proba(batch)
    return _payload(served, proba, batch.n_rows)


def validate_csv(
    registry: Registry, data: bytes, model_id: str | None, dataset: str | None, settings: Settings
) -> dict[str, Any]:
    """Core of /validate: parse the CSV, predict, and score it when it holds the target."""
    served = registry.resolve(model_id, dataset)
    model = served.model
    frame = read_model_csv(data, model)
    check_rows(len(frame), settings)
    batch = csv_batch(frame, model)
    proba = served.predictor.predict_proba(batch)
    payload = _payload(served, proba, batch.n_rows)
    has_target = model.card.target in frame.columns
    payload["evaluation"] = (
        target_metrics(frame, model, proba, model.card.threshold) if has_target else None
    )
    return payload


@router.post(
    "/predict",
    summary="Predict raw JSON rows",
    description=(
        "Send raw rows (`GET /models/{model_id}/schema` lists the columns). Extra columns "
        "are ignored; null, empty and blank values are imputed. Give `model_id`, or "
        "`dataset` to use its champion. A missing column, a wrong type or an unseen "
        "category is a 422 naming the column and the row. At most `SERVING_MAX_ROWS` "
        "rows (413 beyond)."
    ),
    response_model=PredictResponse,
    responses=ERRORS,
)
async def predict(
    body: PredictRequest, registry: CurrentRegistry, settings: CurrentSettings
) -> JSONResponse:
    check_rows(len(body.rows), settings)
    served = registry.resolve(body.model_id, body.dataset)
    if len(body.rows) <= INLINE_ROWS and served.predictor.compiled is not None:
        payload = predict_rows(served, body.rows)
    else:  # the sklearn path or a big batch: keep the event loop free for other requests
        payload = await run_in_threadpool(predict_rows, served, body.rows)
    return JSONResponse(payload)


@router.post(
    "/validate",
    summary="Predict an uploaded CSV; score it if it holds the target",
    description=(
        "Upload a CSV of raw rows (multipart field `file`) and give `model_id`, or "
        "`dataset` to use its champion. Returns the predictions and, when the CSV has the "
        "target column, the test metrics on the rows whose target is known. Extra columns "
        "are ignored; empty values are imputed. Errors name the column, the row and its "
        "line in the file. Limits: `SERVING_MAX_UPLOAD_MB` (413), `SERVING_MAX_ROWS`."
    ),
    response_model=ValidateResponse,
    responses=ERRORS,
)
async def validate_upload(
    file: Annotated[UploadFile, File(description="CSV with a header row")],
    registry: CurrentRegistry,
    settings: CurrentSettings,
    model_id: Annotated[str | None, Form(description="e.g. xgb_credit_v1")] = None,
    dataset: Annotated[str | None, Form(description="use its champion")] = None,
) -> JSONResponse:
    data = await file.read()
    payload = await run_in_threadpool(validate_csv, registry, data, model_id, dataset, settings)
    return JSONResponse(payload)
