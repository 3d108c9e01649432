"""Reloading the models from disk after a pipeline run.

``POST /reload`` is off until ``SERVING_RELOAD_TOKEN`` is set, and then needs
``Authorization: Bearer <token>``: a header no cross-site form or link can send. It is all or
nothing: the new set replaces the served one only when every model, card and leaderboard
params.yaml declares loads (``dvc repro`` deletes a stage's outputs before it runs, so a
reload during a run must not serve what is left); otherwise the old set keeps serving and the
answer (409) lists what failed. Neither the token nor the request's headers are logged.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tabml.serving.deps import State
from tabml.serving.errors import ForbiddenError, ReloadRefused, UnauthorizedError
from tabml.serving.info import pipeline_stages
from tabml.serving.registry import Registry, load_registry
from tabml.serving.settings import Settings

log = logging.getLogger("tabml.serving.admin")
router = APIRouter(tags=["admin"])

# auto_error=False: a missing header is our 401 (with WWW-Authenticate), not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False,
    description="the server's SERVING_RELOAD_TOKEN",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

HOW = "set SERVING_RELOAD_TOKEN on the server and send it as 'Authorization: Bearer <token>'"


def check_token(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise unless the request carries the configured token (compared in constant time)."""
    token = settings.reload_token
    if token is None:
        raise ForbiddenError(
            f"POST /reload is disabled: {HOW} to enable it (or restart the server to load "
            "new models)"
        )
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, token.get_secret_value().encode()):
        log.warning("POST /reload refused: missing or wrong bearer token")
        raise UnauthorizedError(f"POST /reload needs the server's token: {HOW}")


def refused(fresh: Registry, old: Registry) -> ReloadRefused:
    served = (
        f"still serving the previous {len(old.models)} models ({', '.join(old.models)})"
        if old.models
        else "still serving no model"
    )
    return ReloadRefused(
        f"reload refused, nothing changed: {len(fresh.problems)} problem(s) with the models on "
        f"disk (see problems); {served}. Let the pipeline finish (or rerun dvc repro, or dvc "
        "checkout), then POST /reload again",
        fresh.problems,
    )


@router.post(
    "/reload",
    summary="Reload every model from disk (after a pipeline run); all or nothing",
    description=(
        "Needs `Authorization: Bearer <SERVING_RELOAD_TOKEN>` (403 while the server has no "
        "token set, 401 without the right one). The new models replace the served ones only "
        "when every model, card and leaderboard params.yaml declares loads; otherwise (409) "
        "the served ones stay and `problems` says what failed."
    ),
    responses={
        401: {"description": "missing or wrong bearer token"},
        403: {"description": "reload disabled: SERVING_RELOAD_TOKEN is not set"},
        409: {"description": "the models on disk are incomplete; the served ones stay"},
    },
)
async def reload(state: State, credentials: Credentials) -> dict[str, Any]:
    check_token(state.settings, credentials)
    async with state.reload_lock:
        fresh = await run_in_threadpool(load_registry, state.settings)
        old = state.registry
        if fresh.problems or not fresh.models:
            log.warning(
                "reload refused: %s; still serving %d models",
                "; ".join(fresh.problems) or "no model",
                len(old.models),
            )
            raise refused(fresh, old)
        state.registry = fresh
        state.stages = await run_in_threadpool(pipeline_stages, state.settings.root)
    log.info("reloaded: %d models", len(fresh.models))
    return {
        "status": "reloaded",
        "models_loaded": len(fresh.models),
        "model_ids": list(fresh.models),
        "problems": [],
    }
