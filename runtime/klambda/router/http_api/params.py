"""What the handlers share: the path of Lambda's functions API, JSON object bodies, integer
fields."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from klambda.errors import InvalidParameterValue, InvalidRequestContent

API = "/2015-03-31/functions"


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as err:
        raise InvalidRequestContent(f"Could not parse request body into json: {err}") from None
    if not isinstance(body, dict):
        raise InvalidRequestContent("the request body must be a JSON object")
    return body


def int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameterValue(f"{name}: must be an integer, got {value!r}")
    return value
