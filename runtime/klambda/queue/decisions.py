"""What happens to an asynchronous event next: pure decisions, no I/O.

Before an attempt, `before_attempt` says whether the event is too old to run at all
(Lambda: not invoked, sent to the DLQ / on-failure destination with `EventAgeExceeded`).
After an attempt, `after_attempt` turns what happened (`Attempt`) into a `Verdict`:

    Succeeded   the function returned; on-success destination, then acknowledge
    Retry       try again after `delay`; the event written back carries the new counts
    Failed      give up: `RetriesExhausted` or `EventAgeExceeded`; DLQ, on-failure, ack

A function error consumes one of `retryAttempts`; a throttle or a service error does not,
and is retried until the event's maximum age. An error the router reports as permanent
(the function no longer exists, the request is invalid) is not retried. A retry that could
only start after the event's maximum age is not scheduled: the event fails at once with
`EventAgeExceeded` rather than sleeping only to be discarded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from klambda.queue.event import AsyncEvent, Response
from klambda.queue.policy import AsyncPolicy
from klambda.queue.schedule import RetrySchedule

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
CONDITIONS = (SUCCESS, RETRIES_EXHAUSTED, EVENT_AGE_EXCEEDED)


class Kind(Enum):
    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"
    THROTTLED = "throttled"
    SERVICE_ERROR = "service_error"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Attempt:
    """What one try of an event came to."""

    kind: Kind
    response: Response | None = None
    error_type: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Succeeded:
    event: AsyncEvent


@dataclass(frozen=True)
class Retry:
    event: AsyncEvent
    delay: float
    reason: str
    """`function_error`, `throttled` or `service_error` (a metric label)."""


@dataclass(frozen=True)
class Failed:
    event: AsyncEvent
    condition: str


Verdict = Succeeded | Retry | Failed


def deadline(event: AsyncEvent, policy: AsyncPolicy) -> float:
    return event.received_at + policy.max_event_age_seconds


def before_attempt(event: AsyncEvent, policy: AsyncPolicy, now: float) -> Failed | None:
    if now >= deadline(event, policy):
        return Failed(
            dataclasses.replace(
                event,
                last_error_type=event.last_error_type or EVENT_AGE_EXCEEDED,
                last_error=event.last_error
                or f"Event age {event.age(now):.0f} s exceeded the maximum event age of "
                f"{policy.max_event_age_seconds:.0f} s",
            ),
            EVENT_AGE_EXCEEDED,
        )
    return None


def after_attempt(
    event: AsyncEvent,
    attempt: Attempt,
    policy: AsyncPolicy,
    schedule: RetrySchedule,
    now: float,
    rnd: float = 0.5,
) -> Verdict:
    kind = attempt.kind
    if kind is Kind.SUCCESS:
        return Succeeded(
            dataclasses.replace(event, attempts=event.attempts + 1, last_response=attempt.response)
        )
    if kind is Kind.FUNCTION_ERROR or kind is Kind.REJECTED:
        ran = kind is Kind.FUNCTION_ERROR
        failed = dataclasses.replace(
            event,
            attempts=event.attempts + (1 if ran else 0),
            last_error_type=attempt.error_type,
            last_error=attempt.error,
            last_response=attempt.response,
        )
        if not ran or failed.attempts > policy.retry_attempts:
            return Failed(failed, RETRIES_EXHAUSTED)
        delay = schedule.error_delay(failed.attempts, rnd)
    else:
        failed = dataclasses.replace(
            event,
            throttles=event.throttles + 1,
            last_error_type=attempt.error_type,
            last_error=attempt.error,
        )
        delay = schedule.throttle_delay(failed.throttles, rnd)
    if now + delay >= deadline(failed, policy):
        return Failed(failed, EVENT_AGE_EXCEEDED)
    return Retry(dataclasses.replace(failed, not_before=now + delay), delay, kind.value)
