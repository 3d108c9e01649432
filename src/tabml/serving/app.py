"""The REST API: ``uvicorn tabml.serving.app:app`` (settings from ``SERVING_*``, see settings).

A thin edge over the core: routers per resource (``routers/``) get the registry through
FastAPI dependencies (``deps``), validate rows with the pipeline's own rules, and predict
through :mod:`tabml.serving.scoring`. Models load in the lifespan and on ``POST /reload``,
never per request. Errors have one mechanism, exception handlers: a client's error is JSON
``{"detail": "..."}`` with its status; an unexpected one is a generic 500 whose details go to
the server log only.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
from collections.abc import AsyncIterator, Callable
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
from tabml.serving.docs import install_docs
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
  request body (413 beyond), `SERVING_BODY_TIMEOUT` seconds to send a body (408 beyond);
  while `SERVING_MAX_INFLIGHT_MB` of bodies are being handled, more is a 503 with
  `Retry-After`.
* `GET /health` is `ok`, `degraded` (200: something params.yaml declares is not served, see
  `problems`) or `unavailable` (503: no model). `POST /reload` needs
  `Authorization: Bearer <SERVING_RELOAD_TOKEN>` and swaps models all or nothing.
"""


class BodyRefused(HTTPException):
    """Raised from ``receive`` while a body is read: too large (413), too slow (408), or the
    server's budget of bytes in flight is spent (503). An HTTPException, so FastAPI's body
    parsing lets it through (it turns other errors into a 400) to the handler. The rest of
    the body is never read, so the connection closes after the answer."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers={"Connection": "close"})
        self.headers.update(headers or {})


RETRY_AFTER = 2  # seconds: a busy answer's hint; bodies in flight usually drain within it
TRIM_AFTER = MB  # a request that held this many body bytes returns freed memory (see trim)


def body_messages(settings: Settings) -> dict[int, str]:
    """The one-line answers of :class:`BodyGuard`, by status."""
    n = settings.max_upload_bytes
    size = f"{n / MB:g} MB" if n >= MB else f"{n:,} bytes"
    return {
        413: (
            f"request body over the limit of {size} (SERVING_MAX_UPLOAD_MB); use the batch "
            "CLI (python -m tabml.serving.predict) for large files"
        ),
        408: (
            f"request body not received within {settings.body_timeout:g} s "
            "(SERVING_BODY_TIMEOUT): send the whole body without pauses"
        ),
        503: (
            f"server busy: request bodies in flight would pass "
            f"{settings.max_inflight_bytes / MB:g} MB (SERVING_MAX_INFLIGHT_MB); retry after "
            f"{RETRY_AFTER} s"
        ),
    }


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS).

    Freed request buffers stay in glibc's heaps (the process keeps its peak RSS); trimming
    after a large request hands them back to the system."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class BodyGuard:
    """Bound what request bodies can cost the server.

    - size: over ``max_upload_bytes`` is a 413, by Content-Length before reading and by
      counting while reading (chunked uploads);
    - time: the whole body must arrive within ``body_timeout`` seconds of the request (one
      deadline, so a client dribbling a byte at a time gains nothing), else 408;
    - memory: bytes of bodies being read or held across concurrent requests stay under
      ``max_inflight_bytes`` (a declared Content-Length is reserved up front), else 503 with
      Retry-After instead of buffering; the budget is released when the response is sent.

    After a request that held a large body, freed memory is returned to the system
    (:func:`malloc_trim`, in a thread, once nothing large is in flight).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_bytes = settings.max_upload_bytes
        self.max_inflight = settings.max_inflight_bytes
        self.timeout = settings.body_timeout
        self.messages = body_messages(settings)
        self.inflight = 0  # one event loop: no lock needed
        self.trim = malloc_trim()
        self.trimming = False
        self.trim_task: asyncio.Task[None] | None = None  # a reference keeps it alive

    def refused(self, status: int) -> BodyRefused:
        extra = {"Retry-After": str(RETRY_AFTER)} if status == 503 else None
        return BodyRefused(status, self.messages[status], extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and (
            length > self.max_bytes or self.inflight + length > self.max_inflight
        ):
            error = self.refused(413 if length > self.max_bytes else 503)
            response = JSONResponse({"detail": error.detail}, error.status_code, error.headers)
            await response(scope, receive, send)
            return
        reserved = length or 0
        self.inflight += reserved
        deadline = asyncio.get_running_loop().time() + self.timeout
        received = 0
        complete = False

        async def guarded_receive() -> Message:
            nonlocal received, reserved, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise self.refused(408) from None
            if message["type"] != "http.request":
                complete = True  # the client went away
                return message
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self.refused(413)
            if received > reserved:
                if self.inflight + received - reserved > self.max_inflight:
                    raise self.refused(503)
                self.inflight += received - reserved
                reserved = received
            complete = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, guarded_receive, send)
        finally:
            self.inflight -= reserved
            if reserved >= TRIM_AFTER:
                self.trim_soon()

    def trim_soon(self) -> None:
        """Return freed memory to the system in a thread, unless a trim runs already or a
        large body is still held (its memory is in use: trimming would free little)."""
        if self.trim is None or self.trimming or self.inflight >= TRIM_AFTER:
            return
        self.trimming = True

        async def run(trim: Callable[[], object]) -> None:
            try:
                await asyncio.to_thread(trim)
            finally:
                self.trimming = False

        self.trim_task = asyncio.get_running_loop().create_task(run(self.trim))


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None (chunked, or no body)."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length" and value.isdigit():
            return int(value)
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Every error response of the API, in one place."""

    async def serving_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServingError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

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
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

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


class AccessLogRedaction(logging.Filter):
    """uvicorn's access log writes each request target with its query string, so a token a
    client put in a URL (``/reload?token=...``) would be kept in the log: mask every query
    value (:func:`tabml.secrets.redact`). The token is only ever read from a header."""

    ORIGIN = "http://-"  # redact works on URLs; the logged target is a path

    def filter(self, record: logging.LogRecord) -> bool:
        from tabml.secrets import redact

        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and isinstance(args[2], str):
            path, sep, query = args[2].partition("?")
            if sep:
                masked = redact(f"{self.ORIGIN}/?{query}")[len(self.ORIGIN) + 2 :]
                record.args = (*args[:2], f"{path}?{masked}", *args[3:])
        return True


def _configure_logging() -> None:
    """uvicorn configures only its own loggers; give ours a handler unless someone did, and
    keep query values out of the access log."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in access.filters):
        access.addFilter(AccessLogRedaction())


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
        docs_url=None,  # FastAPI's pages load from a CDN: these serve their own assets
        redoc_url=None,
    )
    install_docs(app)
    app.state.serving = state
    app.add_middleware(BodyGuard, settings=settings)
    install_error_handlers(app)
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
