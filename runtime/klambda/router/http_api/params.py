"""What the handlers share: the path of Lambda's functions API, the function (and qualifier)
a request names, JSON object bodies, integer fields.

Names in a path are read by the one parser (`klambda.router.routing`), so every operation
takes what Lambda takes: a name, NAME:QUALIFIER where a qualifier belongs, a partial ARN or
an ARN.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from klambda.api import limits
from klambda.errors import InvalidParameterValue, InvalidRequestContent
from klambda.router.routing import parse_function, parse_function_name

API = "/2015-03-31/functions"


def function_of(request: web.Request) -> str:
    """The function `{name}` names, for an operation on the function itself."""
    return parse_function(request.match_info["name"])


def target_of(request: web.Request) -> tuple[str, str | None]:
    """The function and qualifier `{name}` and `?Qualifier=` name together."""
    return parse_function_name(request.match_info["name"], request.query.get("Qualifier"))


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, RecursionError) as err:  # nested too deep is not JSON we take
        raise InvalidRequestContent(f"Could not parse request body into json: {err}") from None
    if not isinstance(body, dict):
        raise InvalidRequestContent("the request body must be a JSON object")
    return body


def version_field(body: dict[str, Any], name: str = "FunctionVersion") -> str | None:
    """A version number or $LATEST named by `name` (None when absent), as Lambda takes it."""
    value = body.get(name)
    if value is None:
        return None
    text = str(value)
    if text != limits.LATEST and not re.fullmatch(limits.VERSION_PATTERN, text):
        raise InvalidParameterValue(
            f"{name}: {text[:64]!r} must be a version number or {limits.LATEST}"
        )
    return text


def int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameterValue(f"{name}: must be an integer, got {value!r}")
    return value
