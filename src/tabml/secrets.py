"""Credentials never travel in URLs here: one rule to refuse them, one to mask them.

DVC records every params value in ``dvc.lock`` (committed to git) and its run cache, and the
cards of the models copy the dataset's params, so a password or token inside a source URL
would end up everywhere. :func:`credential_in_url` is the rule params validation applies;
:func:`redact` masks any URL userinfo and credential-like query value in a text, the second
line of defence for every log line, error, model card and API response. Credentials belong in
the environment or ``.env``, named in params by variable name only.

Hand-written (a few regexes): no maintained library masks URLs inside free text.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"

# Query parameter names that carry a credential: exact names, and any name containing one of
# the words (``api_key``, ``access_token``, ``X-Amz-Signature``, ``sig`` ...).
_CREDENTIAL_WORDS = re.compile(
    r"token|key|secret|signature|password|passwd|pwd|auth|credential|session|^sig$|^x-amz-",
    re.IGNORECASE,
)
# scheme://[userinfo@]host...: userinfo is everything before the last "@" of the authority.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>]*)")


def is_credential_param(name: str) -> bool:
    """Whether a query parameter name looks like it carries a credential."""
    return bool(_CREDENTIAL_WORDS.search(name.strip()))


def credential_in_url(url: str) -> str | None:
    """Why ``url`` carries a credential (never the credential itself), or None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if "@" in parts.netloc:
        return "user:password@ before the host"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if is_credential_param(name):
            return f"the query parameter {name!r}"
    return None


def _redact_match(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    trailing = len(rest) - len(rest.rstrip(".,:;!)]}"))
    rest, after = rest[: len(rest) - trailing], rest[len(rest) - trailing :]
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        authority = f"{MASK}@{authority.rsplit('@', 1)[1]}"
    path, sep, query = tail.partition("?")
    if sep:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            pairs.append(f"{name}={MASK}" if eq and value else pair)
        tail = f"{path}?{'&'.join(pairs)}{fragment}"
    return f"{scheme}{authority}{tail}{after}"


def redact(text: str) -> str:
    """``text`` with every URL's userinfo and query values replaced by ``***``.

    All query values are masked, not only credential-looking ones: a log line must not
    depend on guessing every name a service uses for its token.
    """
    if "://" not in text:
        return text
    return _URL.sub(_redact_match, text)


def redacted(value: Any) -> Any:
    """A JSON-like ``value`` with every string passed through :func:`redact`.

    Params refuse credential URLs, but a model card written before that rule may still hold
    one in its copy of the dataset params: nothing the API shows may carry it.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    return value
