"""The loaded models and their input schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tabml.serving.deps import CurrentRegistry
from tabml.serving.schemas import ERRORS

router = APIRouter(tags=["models"])


@router.get("/models", summary="Loaded models with test metrics and champion flag")
async def models(registry: CurrentRegistry) -> dict[str, Any]:
    return {
        "models": [served.summary() for served in registry.models.values()],
        "champions": registry.champions,
    }


@router.get(
    "/models/{model_id}/schema",
    summary="Raw input columns of a model: kinds, dtypes, allowed categories",
    responses={404: ERRORS[404], 503: ERRORS[503]},
)
async def model_schema(model_id: str, registry: CurrentRegistry) -> dict[str, Any]:
    return registry.get(model_id).schema()
