"""What the server serves: name and status, health, the project, the datasets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tabml.secrets import redacted
from tabml.serving.deps import CurrentRegistry, State

router = APIRouter(tags=["project"])


@router.get("/", summary="Name, version and status")
async def root(state: State) -> dict[str, Any]:
    registry = state.registry
    return {
        "name": state.meta["name"],
        "version": state.meta["version"],
        "status": "no models loaded" if registry.status == "unavailable" else registry.status,
        "models_loaded": len(registry.models),
        "docs": "/docs",
    }


@router.get(
    "/health",
    summary="ok, degraded (something declared is not served: see problems) or unavailable",
    description=(
        "`ok`: every model and champion params.yaml declares is served. `degraded` (still "
        "200, so the models that load keep serving): `problems` says what is missing. "
        "`unavailable` (503): no model is loaded."
    ),
    responses={503: {"description": "no model loaded"}},
)
async def health(registry: CurrentRegistry) -> JSONResponse:
    status = registry.status
    body: dict[str, Any] = {"status": status, "models_loaded": len(registry.models)}
    if registry.problems:
        body["problems"] = registry.problems
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


@router.get("/project-info", summary="Project, pipeline stages, params of the models, git revision")
async def project_info(state: State) -> dict[str, Any]:
    return {
        "name": state.meta["name"],
        "version": state.meta["version"],
        "git_revision": state.git_revision,
        "stages": state.stages,
        "params": {
            model_id: redacted(served.model.card.params)
            for model_id, served in state.registry.models.items()
        },
    }


@router.get("/datasets", summary="Datasets in params.yaml, raw CSV shape, file names")
async def datasets(registry: CurrentRegistry) -> dict[str, Any]:
    return {"datasets": registry.datasets}
