"""Cross-origin resource sharing as Lambda's function URLs do it. Pure.

With a URL's `cors` set, the router answers a browser's preflight (an OPTIONS request
with `Origin` and `Access-Control-Request-Method`) itself, without invoking the function,
and adds the CORS headers to every other response, replacing any the function set (as
Lambda does: "Lambda ... overwrites the CORS headers of your function's response"). An
origin is allowed when the list holds it (compared without case) or `*`; a request from
an origin that is not allowed gets no CORS headers, so the browser refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFIX = "access-control-"


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def allowed_origin(cors: Cors, origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin for `origin`, or None when it is not allowed."""
    if not origin:
        return None
    if "*" in cors.allow_origins:
        # a credentialed request may not be answered with `*`: the origin itself
        return origin if cors.allow_credentials else "*"
    if origin.lower() in (o.lower() for o in cors.allow_origins):
        return origin
    return None


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return (
        method.upper() == "OPTIONS"
        and _header(headers, "origin") is not None
        and _header(headers, "access-control-request-method") is not None
    )


def _common(cors: Cors, allowed: str) -> list[tuple[str, str]]:
    out = [("Access-Control-Allow-Origin", allowed)]
    if allowed != "*":
        out.append(("Vary", "Origin"))
    if cors.allow_credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    return out


def preflight(cors: Cors, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers of the answer to a preflight (status 200, no body)."""
    allowed = allowed_origin(cors, _header(headers, "origin"))
    if allowed is None:
        return []
    out = _common(cors, allowed)
    if cors.allow_methods:
        out.append(("Access-Control-Allow-Methods", ",".join(cors.allow_methods)))
    if cors.allow_headers:
        out.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    if cors.max_age is not None:
        out.append(("Access-Control-Max-Age", str(cors.max_age)))
    return out


def response_headers(
    cors: Cors, request_headers: Mapping[str, str], headers: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The function's response headers with the CORS ones in place of its own."""
    kept = [(k, v) for k, v in headers if not k.lower().startswith(PREFIX)]
    allowed = allowed_origin(cors, _header(request_headers, "origin"))
    if allowed is None:
        return kept
    out = kept + _common(cors, allowed)
    if cors.expose_headers:
        out.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    return out
