"""What the server serves: name and status, health, the project, the datasets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tabml.serving.deps import CurrentRegistry, State

router = APIRouter(tags=["project"])


@router.get("/", summary="Name, version and status")
async def root(state: State) -> dict[str, Any]:
    n = len(state.registry.models)
    return {
        "name": state.meta["name"],
        "version": state.meta["version"],
        "status": "ok" if n else "no models loaded",
        "models_loaded": n,
        "docs": "/docs",
    }


@router.get(
    "/health",
    summary="Liveness, models loaded (503 while none is) and what could not be loaded",
    responses={503: {"description": "no model loaded"}},
)
async def health(registry: CurrentRegistry) -> JSONResponse:
    n = len(registry.models)
    body: dict[str, Any] = {"status": "ok" if n else "unavailable", "models_loaded": n}
    if registry.problems:
        body["problems"] = registry.problems
    return JSONResponse(body, status_code=200 if n else 503)


@router.get("/project-info", summary="Project, pipeline stages, params of the models, git revision")
async def project_info(state: State) -> dict[str, Any]:
    return {
        "name": state.meta["name"],
        "version": state.meta["version"],
        "git_revision": state.git_revision,
        "stages": state.stages,
        "params": {
            model_id: served.model.card.params for model_id, served in state.registry.models.items()
        },
    }


@router.get("/datasets", summary="Datasets in params.yaml, raw CSV shape, file names")
async def datasets(registry: CurrentRegistry) -> dict[str, Any]:
    return {"datasets": registry.datasets}
