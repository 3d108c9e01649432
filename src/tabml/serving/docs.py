"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work offline.

FastAPI's own pages load their JavaScript and CSS from a CDN, so behind a firewall or on a
machine without internet they are blank. These are the same pages (FastAPI's
``get_swagger_ui_html`` / ``get_redoc_html``) with the assets served by this server, from the
files the ``fastapi-offline`` package ships; no page refers to anything outside the server.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, ...
# The pages' own guarantee that the browser fetches nothing from elsewhere, whatever the
# bundles try (ReDoc's sidebar shows a logo from cdn.redoc.ly). Allowed besides this server:
# inline scripts (each page's start-up) and styles (the bundles'), ReDoc's data: icons and
# its search worker (a blob:).
POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    )
)


def offline(page: HTMLResponse) -> HTMLResponse:
    """``page`` with the content security policy that keeps the browser on this server."""
    page.headers["Content-Security-Policy"] = POLICY
    return page


def assets_dir() -> Path:
    """The Swagger UI and ReDoc files of the installed ``fastapi-offline`` package."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the offline ``docs_url`` and ``redoc_url`` pages, Swagger UI's OAuth2 redirect page
    and the assets to ``app``, created with ``docs_url=None, redoc_url=None`` (FastAPI's CDN
    pages off). URLs are prefixed with the request's root path, as FastAPI's pages do, so
    they work behind a proxy that mounts the API under a prefix."""
    assert app.openapi_url, "the docs pages show the OpenAPI schema: keep openapi_url"
    assert app.docs_url is None and app.redoc_url is None, "FastAPI's CDN pages are on"
    openapi_url = app.openapi_url
    redirect_url = app.swagger_ui_oauth2_redirect_url
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return offline(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=root + redirect_url if redirect_url else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return offline(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return offline(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,  # ReDoc falls back to the system's fonts
            )
        )

    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)
