"""Reloading the models from disk after a pipeline run."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tabml.serving.deps import State
from tabml.serving.errors import UnavailableError
from tabml.serving.info import pipeline_stages
from tabml.serving.registry import load_registry

log = logging.getLogger("tabml.serving.admin")
router = APIRouter(tags=["admin"])


@router.post(
    "/reload",
    summary="Reload every model from disk (after a pipeline run)",
    responses={503: {"description": "nothing loadable; the previous models stay served"}},
)
async def reload(state: State) -> JSONResponse:
    async with state.reload_lock:
        fresh = await run_in_threadpool(load_registry, state.settings)
        old = state.registry
        if not fresh.models and old.models:
            raise UnavailableError(
                f"reload found no loadable model ({'; '.join(fresh.problems)}); "
                f"still serving the previous {len(old.models)}"
            )
        state.registry = fresh
        state.stages = await run_in_threadpool(pipeline_stages, state.settings.root)
    log.info("reloaded: %d models", len(fresh.models))
    body = {
        "status": "reloaded" if fresh.models else "no models loaded",
        "models_loaded": len(fresh.models),
        "model_ids": list(fresh.models),
        "problems": fresh.problems,
    }
    return JSONResponse(body, status_code=200 if fresh.models else 503)
