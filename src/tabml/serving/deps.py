"""What endpoints receive through FastAPI's ``Depends``: the server state and its registry."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, Request

from tabml.serving.registry import Registry
from tabml.serving.settings import Settings


class ServerState:
    """What the endpoints share: settings, project facts, and the current registry (swapped
    whole on reload, so a request sees one consistent set of models)."""

    def __init__(self, settings: Settings, meta: dict[str, str | None]) -> None:
        self.settings = settings
        self.meta = meta
        self.registry = Registry()
        self.git_revision: str | None = None
        self.stages: dict[str, Any] = {"source": None, "names": []}
        self.reload_lock = asyncio.Lock()


# Async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a hand-off
# that costs more than a whole single-row prediction; these only look up an attribute.
async def get_state(request: Request) -> ServerState:
    return request.app.state.serving


State = Annotated[ServerState, Depends(get_state)]


async def get_registry(request: Request) -> Registry:
    return request.app.state.serving.registry


async def get_settings(request: Request) -> Settings:
    return request.app.state.serving.settings


CurrentRegistry = Annotated[Registry, Depends(get_registry)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]
