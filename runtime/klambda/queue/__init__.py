"""Asynchronous invocation that never loses an event: a durable queue and its dispatcher.

    event        AsyncEvent: one async invocation, request id stable across retries
    policy       AsyncPolicy: retryAttempts, maxEventAgeSeconds, deadLetter, destinations
    schedule     RetrySchedule: backoff of function errors and of throttles (pure)
    decisions    what happens after each attempt: succeed, retry, fail (pure)
    records      Lambda's destination record and DLQ message (pure)
    backend      the Queue interface, DeadLetter, QueueMessage

This package imports `klambda.api` and `klambda.errors`, never the router: the router
hands the dispatcher its invoke path as a callable.
"""

from __future__ import annotations

from klambda.queue.backend import DeadLetter, Delivery, Queue, QueueMessage
from klambda.queue.decisions import EVENT_AGE_EXCEEDED, RETRIES_EXHAUSTED, SUCCESS
from klambda.queue.event import AsyncEvent, check_payload
from klambda.queue.policy import AsyncPolicy, Target
from klambda.queue.schedule import RetrySchedule

__all__ = [
    "EVENT_AGE_EXCEEDED",
    "RETRIES_EXHAUSTED",
    "SUCCESS",
    "AsyncEvent",
    "AsyncPolicy",
    "DeadLetter",
    "Delivery",
    "Queue",
    "QueueMessage",
    "RetrySchedule",
    "Target",
    "check_payload",
]
