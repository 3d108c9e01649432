"""The REST API: ``uvicorn serving.app:app`` (settings from ``SERVING_*``, see serving.settings).

A thin edge over the core modules: parse the request, look the model up in the registry,
call :mod:`serving.scoring`, shape the JSON. Models load in the lifespan and on
``POST /reload``, never per request. Every error is JSON ``{"detail": "..."}``; an unexpected
one is a generic 500 whose traceback goes to the server log only.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ServingError, TooLargeError, UnavailableError
from serving.info import git_revision, pipeline_stages, project_meta
from serving.registry import Registry, ServedModel, load_registry
from serving.scoring import (
    batch_from_frame,
    batch_from_records,
    predictions,
    read_csv_bytes,
    target_metrics,
)
from serving.settings import MB, Settings
from stages.errors import PipelineError

log = logging.getLogger("serving.app")

# Up to this many rows on the fast path, /predict runs on the event loop: the thread-pool
# hand-off costs more than the prediction itself (measured: rf p50 1.7 ms inline, 2.8 ms in
# the pool; 8 clients: 583 vs 177 req/s). Bigger batches and the sklearn path use the pool.
INLINE_ROWS = 64

DESCRIPTION = """\
Predictions from the models the DVC pipeline trained (`models/<algo>_<dataset>_v<N>.pkl`).

* Rows are raw input rows, exactly as in the dataset's raw CSV without the target column.
  `GET /models/{model_id}/schema` lists the columns, their kinds and allowed categories.
* **Extra columns are ignored** (so you can send the target or an id column along).
  `null`, empty and blank values are allowed: they are imputed as in training.
* A missing column, a non-number in a numeric column or a category never seen in training
  is a 422 whose message names the column and the row.
* Choose the model with `model_id`, or give `dataset` to use its champion (the leaderboard's
  best model). Limits: `SERVING_MAX_ROWS` rows per request, `SERVING_MAX_UPLOAD_MB` per
  request body (413 beyond).
"""


# --- request and response bodies (also the OpenAPI docs) --------------------------------


class PredictRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(
        min_length=1, description="raw input rows: column name -> value; extra columns ignored"
    )
    model_id: str | None = Field(default=None, description="e.g. xgb_credit_v1; wins over dataset")
    dataset: str | None = Field(default=None, description="use this dataset's champion model")


class RowPrediction(BaseModel):
    prediction: str = Field(description="predicted class")
    probabilities: dict[str, float] = Field(description="probability of each class")


class PredictResponse(BaseModel):
    model_id: str
    dataset: str
    classes: list[str] = Field(description="(negative, positive)")
    threshold: float = Field(description="the positive class is predicted from this probability")
    n_rows: int
    predictions: list[RowPrediction]


class Evaluation(BaseModel):
    target: str
    n_labelled: int = Field(description="rows whose target is known (the metrics use these)")
    metrics: dict[str, float] | None
    note: str | None = None


class ValidateResponse(PredictResponse):
    evaluation: Evaluation | None = Field(
        description="test metrics on the file's target column; null when it has none"
    )


class ErrorResponse(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        404: "unknown model id or dataset",
        413: "too many rows or too large a body",
        422: "rows do not match the model's schema (the message names column and row)",
        503: "no model loaded",
    }.items()
}


# --- state, errors --------------------------------------------------------------------------


class ServerState:
    """What the endpoints share: the current registry (swapped whole on reload)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        self.git_revision: str | None = None
        self.stages: dict[str, Any] = {"source": None, "names": []}
        self.reload_lock = asyncio.Lock()
        self.openapi_cache: tuple[Registry, dict[str, Any]] | None = None


class CatchAllMiddleware:
    """Turn any unexpected exception into a generic JSON 500; the traceback goes to the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _internal_error()(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit. An HTTPException, so FastAPI's
    body parsing lets it through (it turns other errors into a 400) to our 413 handler."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes``: by Content-Length before reading, and by
    counting while reading (chunked uploads, or a header that lies)."""

    def __init__(self, app: ASGIApp, max_bytes: int, message: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = JSONResponse({"detail": self.message}, status_code=413)
                await response(scope, receive, send)
                return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        await self.app(scope, receive_limited, send)


def _internal_error() -> JSONResponse:
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def _install_error_handlers(app: FastAPI, settings: Settings) -> None:
    async def serving_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServingError)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def pipeline_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=422)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = _too_large(settings) if isinstance(exc, BodyTooLarge) else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _internal_error()

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(PipelineError, pipeline_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _too_large(settings: Settings) -> str:
    n = settings.max_upload_bytes
    size = f"{n / MB:g} MB" if n >= MB else f"{n:,} bytes"
    return (
        f"request body over the limit of {size} (SERVING_MAX_UPLOAD_MB); use the batch CLI "
        "(python -m serving.predict) for large files"
    )


def _configure_logging() -> None:
    """uvicorn configures only its own loggers; give ours a handler unless someone did."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


# --- the core of the two prediction endpoints -------------------------------------------------


def _check_rows(n_rows: int, settings: Settings) -> None:
    if n_rows > settings.max_rows:
        raise TooLargeError(
            f"{n_rows} rows: over the limit of {settings.max_rows} per request "
            "(SERVING_MAX_ROWS); use the batch CLI (python -m serving.predict) for more"
        )


def _prediction_payload(
    served: ServedModel, proba: Any, threshold: float, n_rows: int
) -> dict[str, Any]:
    model = served.model
    return {
        "model_id": model.model_id,
        "dataset": model.dataset,
        "classes": list(model.classes),
        "threshold": threshold,
        "n_rows": n_rows,
        "predictions": predictions(proba, model.classes, threshold),
    }


def predict_rows(
    served: ServedModel, rows: list[dict[str, Any]], threshold: float
) -> dict[str, Any]:
    """Core of /predict: validate the rows, predict."""
    batch = batch_from_records(rows, served.model.schema)
    proba = served.predictor.predict_proba(batch)
    return _prediction_payload(served, proba, threshold, batch.n_rows)


def validate_csv(
    registry: Registry, data: bytes, model_id: str | None, dataset: str | None, settings: Settings
) -> dict[str, Any]:
    """Core of /validate: parse the CSV, predict, and score it when it holds the target."""
    served = registry.resolve(model_id, dataset)
    model = served.model
    frame = read_csv_bytes(data, sep=model.params.get("dataset", {}).get("sep", ","))
    _check_rows(len(frame), settings)
    batch = batch_from_frame(frame, model.schema, csv=True)
    proba = served.predictor.predict_proba(batch)
    payload = _prediction_payload(served, proba, registry.threshold, batch.n_rows)
    payload["evaluation"] = (
        target_metrics(frame, model, proba, registry.threshold)
        if model.target in frame.columns
        else None
    )
    return payload


# --- OpenAPI examples built from the loaded models ---------------------------------------------


def _add_examples(schema: dict[str, Any], registry: Registry) -> None:
    """Request examples that validate: a real row of the default (champion) model."""
    served, row = registry.default_model(), registry.example_row
    if served is None or row is None:
        return
    model = served.model
    with_nulls = dict(row)
    for spec in model.schema[:2]:
        with_nulls[spec.name] = None  # missing values are imputed
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    by_dataset = {"rows": [row], "dataset": model.dataset}
    body["examples"] = {
        "champion": {
            "summary": f"one row, champion model of dataset {model.dataset}",
            "value": by_dataset,
        },
        "model_id": {
            "summary": f"two rows (one with nulls), model {model.model_id}",
            "value": {"rows": [row, with_nulls], "model_id": model.model_id},
        },
    }
    for path in ("/models/{model_id}/schema",):
        for param in schema["paths"][path]["get"].get("parameters", []):
            if param.get("name") == "model_id":
                param["example"] = model.model_id


# --- the app ------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from the environment). Models load at start-up."""
    settings = settings or Settings.from_env()
    meta = project_meta(settings.root)
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _configure_logging()
        state.git_revision = await run_in_threadpool(git_revision, settings.root)
        state.stages = await run_in_threadpool(pipeline_stages, settings.root)
        state.registry = await run_in_threadpool(load_registry, settings)
        yield

    app = FastAPI(
        title=f"{meta['name'] or 'tabular'} model server",
        version=meta["version"] or "unknown",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.serving = state
    limit = settings.max_upload_bytes
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit, message=_too_large(settings))
    app.add_middleware(CatchAllMiddleware)  # added last: the outermost of ours
    _install_error_handlers(app, settings)

    @app.get("/", summary="Name, version and status")
    async def root() -> dict[str, Any]:
        n = len(state.registry.models)
        return {
            "name": meta["name"],
            "version": meta["version"],
            "status": "ok" if n else "no models loaded",
            "models_loaded": n,
            "docs": "/docs",
        }

    @app.get(
        "/health",
        summary="Liveness and number of models loaded (503 while none is)",
        responses={503: {"description": "no model loaded"}},
    )
    async def health() -> JSONResponse:
        registry = state.registry
        n = len(registry.models)
        body: dict[str, Any] = {"status": "ok" if n else "unavailable", "models_loaded": n}
        if not n:
            body["problems"] = registry.problems
        return JSONResponse(body, status_code=200 if n else 503)

    @app.get(
        "/project-info", summary="Project, pipeline stages, params of the models, git revision"
    )
    async def project_info() -> dict[str, Any]:
        registry = state.registry
        return {
            "name": meta["name"],
            "version": meta["version"],
            "git_revision": state.git_revision,
            "stages": state.stages,
            "params": {model_id: s.model.params for model_id, s in registry.models.items()},
        }

    @app.get("/datasets", summary="Datasets in params.yaml, raw CSV shape, file names")
    async def datasets() -> dict[str, Any]:
        return {"datasets": state.registry.datasets}

    @app.get("/models", summary="Loaded models with test metrics and champion flag")
    async def models() -> dict[str, Any]:
        registry = state.registry
        return {
            "models": [s.summary() for s in registry.models.values()],
            "champions": registry.champions,
        }

    @app.get(
        "/models/{model_id}/schema",
        summary="Raw input columns of a model: kinds, dtypes, allowed categories",
        responses={404: ERRORS[404], 503: ERRORS[503]},
    )
    async def model_schema(model_id: str) -> dict[str, Any]:
        return state.registry.get(model_id).schema()

    @app.post(
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
    async def predict(body: PredictRequest) -> JSONResponse:
        registry = state.registry
        _check_rows(len(body.rows), settings)
        served = registry.resolve(body.model_id, body.dataset)
        if len(body.rows) <= INLINE_ROWS and served.predictor.compiled is not None:
            payload = predict_rows(served, body.rows, registry.threshold)
        else:  # the sklearn path or a big batch: keep the event loop free for other requests
            payload = await run_in_threadpool(predict_rows, served, body.rows, registry.threshold)
        return JSONResponse(payload)

    @app.post(
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
    async def validate(
        file: Annotated[UploadFile, File(description="CSV with a header row")],
        model_id: Annotated[str | None, Form(description="e.g. xgb_credit_v1")] = None,
        dataset: Annotated[str | None, Form(description="use its champion")] = None,
    ) -> JSONResponse:
        registry = state.registry
        data = await file.read()
        payload = await run_in_threadpool(validate_csv, registry, data, model_id, dataset, settings)
        return JSONResponse(payload)

    @app.post(
        "/reload",
        summary="Reload every model from disk (after a pipeline run)",
        responses={503: {"description": "nothing loadable; the previous models stay served"}},
    )
    async def reload() -> JSONResponse:
        async with state.reload_lock:
            fresh = await run_in_threadpool(load_registry, settings)
            old = state.registry
            if not fresh.models and old.models:
                raise UnavailableError(
                    f"reload found no loadable model ({'; '.join(fresh.problems)}); "
                    f"still serving the previous {len(old.models)}"
                )
            state.registry = fresh
            state.stages = await run_in_threadpool(pipeline_stages, settings.root)
        log.info("reloaded: %d models", len(fresh.models))
        body = {
            "status": "reloaded" if fresh.models else "no models loaded",
            "models_loaded": len(fresh.models),
            "model_ids": list(fresh.models),
            "problems": fresh.problems,
        }
        return JSONResponse(body, status_code=200 if fresh.models else 503)

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        registry = state.registry
        if state.openapi_cache is None or state.openapi_cache[0] is not registry:
            schema = copy.deepcopy(base_openapi())
            _add_examples(schema, registry)
            state.openapi_cache = (registry, schema)
        return state.openapi_cache[1]

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
