"""A real browser for the tests: headless Chromium renders a page, scripts and all.

A page whose content is drawn by JavaScript (Swagger UI, ReDoc) or that must render from a
file with no network (the report) can only be checked by running it. ``render_dom`` returns
the DOM after the page's scripts ran; ``page_requests`` lists every URL the page asked for;
``Outline`` reads a DOM's title, headings and images. Tests that need Chromium are marked
``requires_chromium`` and skip with a clear reason without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

SKIP_REASON = "Debian package chromium not installed: apt-get install chromium"

# Chromium's own background traffic (component updates, sync, field trials, QUIC probes...)
# is refused by a closed network and can stall a page; these flags switch it off.
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """The Chromium executable on PATH (Debian: chromium; Ubuntu and others:
    chromium-browser), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


requires_chromium = pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)


def render_dom(
    url: str, *, timeout: float = 60, budget_ms: int = 5000, net_log: Path | None = None
) -> str:
    """The DOM of ``url`` after its scripts ran (``--dump-dom``), as HTML text.

    ``budget_ms`` is virtual time: Chromium fast-forwards timers while idle and waits for
    pending network requests, so a page's scripts finish in far less real time. With
    ``net_log``, Chromium writes its network log there (see :func:`page_requests`).
    A Chromium that fails or outlives ``timeout`` seconds fails the test with its stderr.
    """
    executable = chromium_path()
    if executable is None:
        pytest.skip(SKIP_REASON)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        args = [
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
        ]
        if net_log is not None:
            args.append(f"--log-net-log={net_log}")
        # Its own config and cache directories too: nothing written to the user's home.
        env = dict(os.environ, XDG_CONFIG_HOME=profile, XDG_CACHE_HOME=profile)
        proc = subprocess.Popen(
            [*args, "--dump-dom", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its helper processes share a group: stopped together
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(
                f"chromium did not render {url} within {timeout:g} s:\n{tail(err)}"
            ) from None
        finally:
            kill_group(proc.pid)
    dom = out.decode("utf-8", "replace")
    if proc.returncode != 0 or not dom.strip():
        raise AssertionError(f"chromium exited {proc.returncode} on {url}:\n{tail(err)}")
    return dom


def kill_group(pgid: int) -> None:
    """Stop helper processes a finished Chromium may have left in its process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def tail(err: bytes, lines: int = 20) -> str:
    return "\n".join(err.decode("utf-8", "replace").splitlines()[-lines:])


def page_requests(net_log: Path) -> set[str]:
    """Every URL the page itself asked for (scripts, styles, images, fetches), from
    Chromium's ``--log-net-log`` file. Requests of the browser's own (clock, account checks)
    have no initiating origin and are left out, as is the navigation to the page."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log.get("events", []):
        params = event.get("params", {})
        if event.get("type") != start_job or "url" not in params:
            continue  # another event, or a job's end
        if params.get("initiator") != "not an origin":
            urls.add(params["url"])
    return urls


class Outline(HTMLParser):
    """The parts of a rendered page that say it has content: title, headings, images."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings: list[str] = []
        self.images: list[str] = []
        self.inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" or re.fullmatch(r"h[1-6]", tag):
            self.inside = tag
            if tag != "title":
                self.headings.append("")
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == self.inside:
            self.inside = None

    def handle_data(self, data: str) -> None:
        if self.inside == "title":
            self.title += data
        elif self.inside:
            self.headings[-1] += data
