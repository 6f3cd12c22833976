"""Asynchronous invocation that never loses an event: a durable queue and its dispatcher.

    event        AsyncEvent: one async invocation, request id stable across retries
    policy       AsyncPolicy: retryAttempts, maxEventAgeSeconds, deadLetter, destinations
    schedule     RetrySchedule: backoff of function errors and of throttles (pure)
    decisions    what happens after each attempt: succeed, retry, fail (pure)
    records      Lambda's destination record and DLQ message (pure)
    backend      the Queue interface, DeadLetter, QueueMessage
    sqlite       SqliteQueue: embedded, WAL, group commit (local mode)
    jetstream    JetStreamQueue: NATS JetStream, durable pull consumer (cluster mode)
    intake       Intake: accepts an event (durable, counted): the 202
    dispatcher   Dispatcher: leases events, invokes, applies the decisions
    metrics      AsyncMetrics: received, age, dropped, dead-letter errors, DLQ depth, retries

`open_queue(url)` makes a backend from one setting: `sqlite:///path/to/queue.db` or
`nats://host:4222` (comma-separated servers; query parameters are the constructor's
keyword arguments, e.g. `?synchronous=NORMAL`, `?stream_prefix=KLAMBDA&replicas=3`).

This package imports `klambda.api` and `klambda.errors`, never the router: the router
hands the dispatcher its invoke path as a callable.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from klambda.queue.backend import DeadLetter, Delivery, Queue, QueueMessage
from klambda.queue.decisions import EVENT_AGE_EXCEEDED, RETRIES_EXHAUSTED, SUCCESS
from klambda.queue.dispatcher import Dispatcher, Invoke, InvokeOutcome, PolicyLookup
from klambda.queue.event import AsyncEvent, check_payload
from klambda.queue.intake import Intake
from klambda.queue.jetstream import JetStreamQueue
from klambda.queue.metrics import AsyncMetrics
from klambda.queue.policy import AsyncPolicy, Target
from klambda.queue.schedule import RetrySchedule
from klambda.queue.sqlite import SqliteQueue

__all__ = [
    "EVENT_AGE_EXCEEDED",
    "RETRIES_EXHAUSTED",
    "SUCCESS",
    "AsyncEvent",
    "AsyncMetrics",
    "AsyncPolicy",
    "DeadLetter",
    "Delivery",
    "Dispatcher",
    "Intake",
    "Invoke",
    "InvokeOutcome",
    "JetStreamQueue",
    "PolicyLookup",
    "Queue",
    "QueueMessage",
    "RetrySchedule",
    "SqliteQueue",
    "Target",
    "check_payload",
    "local_queue_url",
    "open_queue",
]

_FLOATS = ("visibility_timeout", "poll_interval", "busy_timeout", "connect_timeout")
_FLOATS_NATS = ("request_timeout",)


def local_queue_url(state_dir: Path) -> str:
    """The queue of local mode when KLAMBDA_QUEUE_URL names none: SQLite in the state
    folder (every router process of `klambda up` opens the same file)."""
    return f"sqlite:///{state_dir / 'queue.db'}"


def open_queue(url: str, **overrides: object) -> Queue:
    """A queue backend (not yet opened: `await q.open()`) from a URL; keyword arguments
    win over the URL's query parameters."""
    parts = urlsplit(url)
    params: dict[str, object] = {}
    for key, value in parse_qsl(parts.query):
        if key in _FLOATS or key in _FLOATS_NATS:
            params[key] = float(value)
        elif key == "replicas":
            params[key] = int(value)
        else:
            params[key] = value
    params.update(overrides)
    if parts.scheme == "sqlite":
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"queue URL {url!r} names no database file")
        return SqliteQueue(path, **params)  # type: ignore[arg-type]
    if parts.scheme in ("nats", "tls"):
        servers = [f"{parts.scheme}://{host}" for host in parts.netloc.split(",") if host] or [
            "nats://127.0.0.1:4222"
        ]
        return JetStreamQueue(servers, **params)  # type: ignore[arg-type]
    raise ValueError(f"queue URL {url!r}: the scheme must be sqlite or nats")
