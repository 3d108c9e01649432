"""/docs and /redoc render offline: a real server, a real browser, nothing from outside.

The pages are drawn by JavaScript, so a 200 proves little: headless Chromium renders them
and the tests read the DOM it built, and Chromium's network log shows every URL the page
asked for (all must be this server's). The HTML and asset checks need no browser. The same
browser opens the pipeline's report from disk, as a user would.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html import escape
from pathlib import Path

import httpx
import pytest

from tabml.layout import Layout
from tabml.params import load_params
from tabml.serving.docs import ASSETS_URL, assets_dir
from tests.browser import Outline, page_requests, render_dom, requires_chromium
from tests.helpers import dvc
from tests.serving.conftest import uvicorn_server

PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
# Where an HTML page names something to load: src=, href=, url(...) in styles.
REFERENCE = re.compile(r"""(?:\bsrc|\bhref)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)""")
ABSOLUTE = re.compile(r"(?i)\b(?:https?:)?//[^\s\"'<>]+")


@pytest.fixture(scope="module")
def server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("docs-server") / "uvicorn.log"
    with uvicorn_server(project, log) as (url, _):
        yield url
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def operations(server: str) -> list[tuple[str, str, dict]]:
    """(method, path, operation) of every operation in the server's OpenAPI schema."""
    schema = httpx.get(f"{server}/openapi.json", timeout=30).json()
    return [
        (method, path, op) for path, item in schema["paths"].items() for method, op in item.items()
    ]


def references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


def assert_only_from(server: str, urls: set[str]) -> None:
    outside = sorted(u for u in urls if not u.startswith(f"{server}/"))
    assert not outside, f"the page loaded from outside the server: {outside}"


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_refer_to_nothing_outside_the_server(server, page):
    response = httpx.get(f"{server}{page}", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert ABSOLUTE.findall(html) == []  # no http(s)://, no protocol-relative //host
    for ref in references(html):
        assert ref.startswith("/"), ref  # this server's paths only
    # and the browser is told to fetch from nowhere else, whatever the scripts ask for
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert not re.search(r"https?:|\*|//", policy), policy


def test_docs_assets_are_served_with_their_content_type(server):
    html = httpx.get(f"{server}/docs", timeout=30).text + httpx.get(f"{server}/redoc").text
    assets = {ref for ref in references(html) if ref.startswith(f"{ASSETS_URL}/")}
    names = {ref.rsplit("/", 1)[1] for ref in assets}
    assert names == {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}
    kinds = {
        ".js": ("text/javascript", "application/javascript"),
        ".css": ("text/css",),
        ".png": ("image/png",),
    }
    for ref in sorted(assets):
        response = httpx.get(f"{server}{ref}", timeout=30)
        assert response.status_code == 200, ref
        kind = response.headers["content-type"].split(";")[0]
        assert kind in kinds[Path(ref).suffix], (ref, kind)
        assert response.content == (assets_dir() / Path(ref).name).read_bytes()
    assert httpx.get(f"{server}{ASSETS_URL}/nothing.js", timeout=30).status_code == 404


@requires_chromium
def test_swagger_ui_renders_every_operation_offline(server, operations, tmp_path):
    net_log = tmp_path / "netlog.json"
    dom = render_dom(f"{server}/docs", net_log=net_log)
    assert "swagger-ui" in dom and "Failed to load API definition" not in dom
    assert dom.count('class="opblock ') >= len(operations)
    for method, path, op in operations:
        assert f'data-path="{path}"' in dom, path  # the operation's summary line
        summary = escape(op["summary"], quote=False)
        assert f'<div class="opblock-summary-description">{summary}</div>' in dom, path
        assert f"opblock-{method}" in dom
    requests = page_requests(net_log)
    assert f"{server}/docs/assets/swagger-ui-bundle.js" in requests
    assert f"{server}/openapi.json" in requests
    assert_only_from(server, requests)


@requires_chromium
def test_redoc_renders_every_operation_offline(server, operations, tmp_path):
    net_log = tmp_path / "netlog.json"
    dom = render_dom(f"{server}/redoc", net_log=net_log)
    assert "Something went wrong" not in dom
    for method, path, op in operations:
        assert f'data-section-id="operation/{op["operationId"]}"' in dom, path
        assert f"</a>{escape(op['summary'], quote=False)} </h2>" in dom, path  # its heading
        assert f'http-verb {method}">{method}</span>' in dom
        assert f">{escape(path, quote=False)}</span>" in dom, path  # the request line
    requests = page_requests(net_log)
    assert f"{server}/docs/assets/redoc.standalone.js" in requests
    assert f"{server}/openapi.json" in requests
    assert_only_from(server, requests)


@pytest.fixture(scope="module")
def report(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's plots/report.html. The shared project is built up to evaluate, so the
    figures and the page are made by ``dvc repro report`` in a copy, unless it has them."""
    if Layout(project).report.is_file():
        return Layout(project).report
    copy = Path(shutil.copytree(project, tmp_path_factory.mktemp("report") / "project"))
    dvc("repro", "report", cwd=copy)
    return Layout(copy).report


@requires_chromium
def test_report_renders_from_disk_with_no_network(report, tmp_path):
    net_log = tmp_path / "netlog.json"
    page = Outline()
    page.feed(render_dom(report.as_uri(), net_log=net_log))
    source = Outline()
    source.feed(report.read_text(encoding="utf-8"))
    assert page.title.strip() and page.title == source.title
    datasets = list(load_params(report.parents[1] / "params.yaml").datasets)
    sections = [h for h in page.headings if h.strip() != page.title.strip()]  # not the h1
    for name in datasets:  # each dataset's section has a heading naming it
        named = [h for h in sections if re.search(rf"\b{re.escape(name)}\b", h)]
        assert named, (name, page.headings)
    assert len(page.images) >= len(datasets)
    assert [src for src in page.images if not src.startswith("data:image/")] == []
    assert page_requests(net_log) == set()  # everything is in the one file
