"""An asynchronous invocation as it waits in a queue: the `AsyncEvent`.

The event carries everything the dispatcher needs to decide what to do next without asking
anyone: the request id (the same on every attempt, so a handler can be idempotent through
`context.aws_request_id`), when the event was accepted (its age is measured from there), how
many times the function ran and how many times it was throttled, and what the last attempt
answered (for the DLQ and the destination record). Events are immutable; a retry writes a
new copy with `dataclasses.replace`.

Both backends store an event as the same bytes (`encode`/`decode`): one line of JSON with
the metadata, a newline, then the payload verbatim. JSON never contains a raw newline, so
the first one ends the header, and the payload needs no base64.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from klambda import ids
from klambda.api import limits
from klambda.errors import RequestTooLarge

FORMAT = 1
# json.dumps with separators= builds a new encoder at every call; one is kept instead
_compact = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class Response:
    """What one invocation answered, kept for the destination record."""

    status_code: int
    executed_version: str | None
    function_error: str | None
    payload: bytes


@dataclass(frozen=True)
class Origin:
    """The trigger an event came from (a schedule, a topic subscription), with the retry
    and dead-letter settings it overrides for its own events."""

    trigger: str
    type: str
    retry_attempts: int | None = None
    max_event_age_seconds: float | None = None
    dead_letter_function: str | None = None
    dead_letter_queue: str | None = None

    def header(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "type": self.type,
            "retryAttempts": self.retry_attempts,
            "maxEventAgeSeconds": self.max_event_age_seconds,
            "deadLetterFunction": self.dead_letter_function,
            "deadLetterQueue": self.dead_letter_queue,
        }

    @classmethod
    def from_header(cls, h: dict[str, Any] | None) -> Origin | None:
        if not h:
            return None
        age = h.get("maxEventAgeSeconds")
        return cls(
            trigger=str(h["trigger"]),
            type=str(h["type"]),
            retry_attempts=h.get("retryAttempts"),
            max_event_age_seconds=None if age is None else float(age),
            dead_letter_function=h.get("deadLetterFunction"),
            dead_letter_queue=h.get("deadLetterQueue"),
        )


@dataclass(frozen=True)
class AsyncEvent:
    request_id: str
    function: str
    payload: bytes
    qualifier: str | None = None
    received_at: float = field(default_factory=time.time)
    attempts: int = 0
    """Invocations that ran and returned a function error (throttles are not counted)."""
    throttles: int = 0
    """Tries refused before the function ran (throttles, service errors)."""
    not_before: float = 0.0
    """Epoch seconds before which the event must not be tried (retry backoff)."""
    last_error_type: str | None = None
    last_error: str | None = None
    last_response: Response | None = None
    redrives: int = 0
    origin: Origin | None = None
    """The trigger that produced the event; None for a direct asynchronous invocation."""
    trace: str | None = None
    """The X-Ray trace header this invocation runs with (its hop count: klambda.lineage)."""

    @classmethod
    def new(
        cls,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        received_at: float | None = None,
        origin: Origin | None = None,
        trace: str | None = None,
    ) -> AsyncEvent:
        return cls(
            request_id=request_id or ids.request_id(),
            function=function,
            payload=payload,
            qualifier=qualifier,
            received_at=time.time() if received_at is None else received_at,
            origin=origin,
            trace=trace,
        )

    def age(self, now: float) -> float:
        return max(0.0, now - self.received_at)


def check_payload(payload: bytes) -> None:
    """Refuse an async payload over Lambda's 256 KB limit, naming the limit."""
    if len(payload) > limits.ASYNC_PAYLOAD_MAX_BYTES:
        raise RequestTooLarge(
            f"Request must be smaller than {limits.ASYNC_PAYLOAD_MAX_BYTES} bytes for the "
            f"asynchronous InvokeFunction operation (got {len(payload)} bytes)"
        )


def _text(data: bytes) -> str:
    # surrogateescape keeps any bytes; json escapes the surrogates and gives them back.
    return data.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def header(event: AsyncEvent) -> dict[str, Any]:
    """The event's metadata as JSON-ready values (everything but the payload)."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "requestId": event.request_id,
        "function": event.function,
        "qualifier": event.qualifier,
        "receivedAt": event.received_at,
        "attempts": event.attempts,
        "throttles": event.throttles,
        "notBefore": event.not_before,
        "lastErrorType": event.last_error_type,
        "lastError": event.last_error,
        "redrives": event.redrives,
    }
    if event.origin is not None:
        out["origin"] = event.origin.header()
    if event.trace is not None:
        out["trace"] = event.trace
    r = event.last_response
    if r is not None:
        out["lastResponse"] = {
            "statusCode": r.status_code,
            "executedVersion": r.executed_version,
            "functionError": r.function_error,
            "payload": _text(r.payload),
        }
    return out


def from_header(h: dict[str, Any], payload: bytes) -> AsyncEvent:
    r = h.get("lastResponse")
    return AsyncEvent(
        request_id=h["requestId"],
        function=h["function"],
        payload=payload,
        qualifier=h.get("qualifier"),
        received_at=float(h["receivedAt"]),
        attempts=int(h.get("attempts", 0)),
        throttles=int(h.get("throttles", 0)),
        not_before=float(h.get("notBefore", 0.0)),
        last_error_type=h.get("lastErrorType"),
        last_error=h.get("lastError"),
        last_response=None
        if r is None
        else Response(
            int(r["statusCode"]),
            r.get("executedVersion"),
            r.get("functionError"),
            _bytes(r["payload"]),
        ),
        redrives=int(h.get("redrives", 0)),
        origin=Origin.from_header(h.get("origin")),
        trace=h.get("trace"),
    )


def pack(head: dict[str, Any], payload: bytes) -> bytes:
    return _compact(head).encode() + b"\n" + payload


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    head, sep, payload = data.partition(b"\n")
    if not sep:
        raise ValueError("not an encoded klambda event: no header line")
    try:
        value = json.loads(head)
    except ValueError as err:
        raise ValueError(f"not an encoded klambda event: {err}") from None
    if not isinstance(value, dict):
        raise ValueError("not an encoded klambda event: header is not an object")
    return value, payload


def encode(event: AsyncEvent) -> bytes:
    return pack(header(event), event.payload)


def decode(data: bytes) -> AsyncEvent:
    head, payload = unpack(data)
    return from_header(head, payload)
