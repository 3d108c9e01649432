"""The REST API: ``uvicorn tabml.serving.app:app`` (settings from ``SERVING_*``, see settings).

A thin edge over the core: routers per resource (``routers/``) get the registry through
FastAPI dependencies (``deps``), validate rows with the pipeline's own rules, and predict
through :mod:`tabml.serving.scoring`. Models load in the lifespan and on ``POST /reload``,
never per request. Errors have one mechanism, exception handlers: a client's error is JSON
``{"detail": "..."}`` with its status; an unexpected one is a generic 500 whose details go to
the server log only.
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabml.errors import PipelineError
from tabml.serving.deps import ServerState
from tabml.serving.errors import ServingError, SettingsError
from tabml.serving.info import git_revision, pipeline_stages, project_meta
from tabml.serving.registry import Registry, load_registry
from tabml.serving.routers import admin, meta, models, predictions
from tabml.serving.settings import MB, Settings

log = logging.getLogger("tabml.serving.app")

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


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit. An HTTPException, so FastAPI's
    body parsing lets it through (it turns other errors into a 400) to the 413 handler."""

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


def too_large_message(settings: Settings) -> str:
    n = settings.max_upload_bytes
    size = f"{n / MB:g} MB" if n >= MB else f"{n:,} bytes"
    return (
        f"request body over the limit of {size} (SERVING_MAX_UPLOAD_MB); use the batch CLI "
        "(python -m tabml.serving.predict) for large files"
    )


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Every error response of the API, in one place."""

    async def serving_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServingError)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def pipeline_error(request: Request, exc: Exception) -> JSONResponse:
        # Schema problems of the rows a request sent: the pipeline's own wording.
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
        detail = too_large_message(settings) if isinstance(exc, BodyTooLarge) else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this response, so the server also logs the traceback.
        log.error(
            "unexpected error on %s %s: %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
            exc,
        )
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(PipelineError, pipeline_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _configure_logging() -> None:
    """uvicorn configures only its own loggers; give ours a handler unless someone did."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def add_examples(schema: dict[str, Any], registry: Registry) -> None:
    """Request examples that validate: a typical row of the default (champion) model."""
    served, row = registry.default_model(), registry.example_row
    if served is None or row is None:
        return
    card = served.model.card
    with_nulls = dict(row)
    for spec in card.columns[:2]:
        with_nulls[spec.name] = None  # missing values are imputed
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = {
        "champion": {
            "summary": f"one row, champion model of dataset {card.dataset}",
            "value": {"rows": [row], "dataset": card.dataset},
        },
        "model_id": {
            "summary": f"two rows (one with nulls), model {card.model_id}",
            "value": {"rows": [row, with_nulls], "model_id": card.model_id},
        },
    }
    for param in schema["paths"]["/models/{model_id}/schema"]["get"].get("parameters", []):
        if param.get("name") == "model_id":
            param["example"] = card.model_id


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from the environment). Models load at start-up."""
    settings = settings or Settings.from_env()
    meta_info = project_meta(settings.root)
    state = ServerState(settings, meta_info)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _configure_logging()
        state.git_revision = await run_in_threadpool(git_revision, settings.root)
        state.stages = await run_in_threadpool(pipeline_stages, settings.root)
        state.registry = await run_in_threadpool(load_registry, settings)
        yield

    app = FastAPI(
        title=f"{meta_info['name'] or 'tabular'} model server",
        version=meta_info["version"] or "unknown",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        message=too_large_message(settings),
    )
    install_error_handlers(app, settings)
    for router in (meta.router, models.router, predictions.router, admin.router):
        app.include_router(router)

    base_openapi = app.openapi
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        registry = state.registry
        if cache.get("registry") is not registry:
            schema = copy.deepcopy(base_openapi())
            add_examples(schema, registry)
            cache.update(registry=registry, schema=schema)
        return cache["schema"]

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _app_from_env() -> FastAPI:
    """The app uvicorn imports; a bad SERVING_* variable stops it with one line."""
    try:
        return create_app()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")


app = _app_from_env()
