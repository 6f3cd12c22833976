"""A log record as the engine stores it: one JSON object, Insights' discovered fields set.

The fields are named as Insights names them (`@requestId`, `@type`, `@duration`, ...), so
that no key of a JSON message can collide with them; the message is `_msg`, the time
`_time`, and `function` and `@logStream` are the engine's stream fields (group = function,
stream = environment). The discovery rule is klambda.logs.discover, the same that the local
store's ingest SQL is checked against. Pure: the shipper sends what this returns.
"""

from __future__ import annotations

import datetime as dt

from klambda.logs.discover import discover

STREAM_FIELDS = ("function", "@logStream")
TIME_FIELD = "_time"
MESSAGE_FIELD = "_msg"

NUMBERS = {
    "@duration": "duration",
    "@billedDuration": "billed_duration",
    "@memorySize": "memory_size",
    "@maxMemoryUsed": "max_memory_used",
    "@initDuration": "init_duration",
}


def rfc3339(t: float) -> str:
    """Epoch seconds as RFC 3339 in UTC, to the microsecond."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def engine_record(
    function: str,
    t: float,
    stream: str,
    request_id: str,
    message: str,
    account: str = "000000000000",
) -> dict[str, str]:
    found = discover(message)
    out = {
        TIME_FIELD: rfc3339(t),
        MESSAGE_FIELD: message,
        "function": function,
        "@logStream": stream,
        "@log": f"{account}:/aws/lambda/{function}",
    }
    rid = request_id or found.request_id
    if rid:
        out["@requestId"] = rid
    if found.type:
        out["@type"] = found.type
    for name, attr in NUMBERS.items():
        value = getattr(found, attr)
        if value is not None:
            out[name] = _number(value)
    return out
