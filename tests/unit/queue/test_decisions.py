"""What happens after each attempt of an async event, and before the first: table-driven."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from klambda.queue import AsyncEvent, AsyncPolicy, RetrySchedule
from klambda.queue.decisions import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    Attempt,
    Failed,
    Kind,
    Retry,
    Succeeded,
    after_attempt,
    before_attempt,
)
from klambda.queue.event import Response

T0 = 1_000_000.0
SCHEDULE = RetrySchedule(error_base=60.0, throttle_base=1.0, throttle_cap=300.0, jitter=0.0)
ERROR = Attempt(
    Kind.FUNCTION_ERROR,
    Response(200, "$LATEST", "Unhandled", b'{"errorType": "ValueError"}'),
    "ValueError",
    "boom",
)
THROTTLE = Attempt(Kind.THROTTLED, None, "TooManyRequestsException", "Rate Exceeded.")


def event(**changes: Any) -> AsyncEvent:
    return replace(AsyncEvent.new("fn", b"{}", request_id="r-1", received_at=T0), **changes)


@pytest.mark.parametrize(
    ("retry_attempts", "attempts_before", "verdict", "delay"),
    [
        (2, 0, Retry, 60.0),
        (2, 1, Retry, 120.0),
        (2, 2, Failed, None),
        (1, 0, Retry, 60.0),
        (1, 1, Failed, None),
        (0, 0, Failed, None),
    ],
)
def test_function_errors_use_retry_attempts(
    retry_attempts: int, attempts_before: int, verdict: type, delay: float | None
) -> None:
    policy = AsyncPolicy(retry_attempts=retry_attempts, max_event_age_seconds=21600)
    out = after_attempt(event(attempts=attempts_before), ERROR, policy, SCHEDULE, T0 + 1)
    assert isinstance(out, verdict)
    assert out.event.attempts == attempts_before + 1
    assert out.event.request_id == "r-1"
    assert (out.event.last_error_type, out.event.last_error) == ("ValueError", "boom")
    assert out.event.last_response == ERROR.response
    if isinstance(out, Retry):
        assert out.delay == delay
        assert out.event.not_before == T0 + 1 + delay
        assert out.reason == "function_error"
    else:
        assert isinstance(out, Failed)
        assert out.condition == RETRIES_EXHAUSTED


@pytest.mark.parametrize(
    ("throttles_before", "now", "verdict", "delay"),
    [
        (0, T0 + 1, Retry, 1.0),
        (5, T0 + 100, Retry, 32.0),
        (100, T0 + 1000, Retry, 300.0),
        (100, T0 + 21600 - 300, Failed, None),  # the next try would be past the max age
    ],
)
def test_throttles_do_not_use_retry_attempts_and_stop_at_max_age(
    throttles_before: int, now: float, verdict: type, delay: float | None
) -> None:
    policy = AsyncPolicy(retry_attempts=0, max_event_age_seconds=21600)
    out = after_attempt(event(throttles=throttles_before), THROTTLE, policy, SCHEDULE, now)
    assert isinstance(out, verdict)
    assert out.event.attempts == 0
    assert out.event.throttles == throttles_before + 1
    assert out.event.last_error_type == "TooManyRequestsException"
    if isinstance(out, Retry):
        assert out.delay == delay
        assert out.reason == "throttled"
    else:
        assert isinstance(out, Failed)
        assert out.condition == EVENT_AGE_EXCEEDED


def test_a_service_error_is_retried_like_a_throttle() -> None:
    attempt = Attempt(Kind.SERVICE_ERROR, None, "ServiceException", "unavailable")
    out = after_attempt(event(), attempt, AsyncPolicy(retry_attempts=0), SCHEDULE, T0)
    assert isinstance(out, Retry)
    assert out.reason == "service_error"
    assert out.event.throttles == 1


def test_a_function_error_retry_past_max_age_fails_with_event_age_exceeded() -> None:
    policy = AsyncPolicy(retry_attempts=2, max_event_age_seconds=90)
    out = after_attempt(event(), ERROR, policy, SCHEDULE, T0 + 40)  # retry at T0+100 > 90
    assert isinstance(out, Failed)
    assert out.condition == EVENT_AGE_EXCEEDED
    assert out.event.attempts == 1


def test_a_rejected_invocation_fails_at_once_without_counting_an_attempt() -> None:
    attempt = Attempt(
        Kind.REJECTED, Response(404, None, None, b"{}"), "ResourceNotFoundException", "gone"
    )
    out = after_attempt(event(), attempt, AsyncPolicy(retry_attempts=2), SCHEDULE, T0)
    assert isinstance(out, Failed)
    assert out.condition == RETRIES_EXHAUSTED
    assert out.event.attempts == 0
    assert out.event.last_error_type == "ResourceNotFoundException"


def test_success_counts_the_invocation() -> None:
    ok = Attempt(Kind.SUCCESS, Response(200, "3", None, b'"hi"'))
    out = after_attempt(event(attempts=1), ok, AsyncPolicy(), SCHEDULE, T0)
    assert isinstance(out, Succeeded)
    assert out.event.attempts == 2
    assert out.event.last_response == ok.response


@pytest.mark.parametrize(
    ("age", "max_age", "too_old"),
    [(0, 60, False), (59.9, 60, False), (60, 60, True), (7 * 3600, 21600, True)],
)
def test_before_the_first_attempt_an_event_past_max_age_is_not_run(
    age: float, max_age: float, too_old: bool
) -> None:
    policy = AsyncPolicy(max_event_age_seconds=max_age)
    out = before_attempt(event(), policy, T0 + age)
    if not too_old:
        assert out is None
        return
    assert out is not None
    assert out.condition == EVENT_AGE_EXCEEDED
    assert out.event.last_error_type == EVENT_AGE_EXCEEDED
    assert f"maximum event age of {max_age:.0f} s" in (out.event.last_error or "")


def test_an_event_that_aged_out_after_errors_keeps_its_last_error() -> None:
    e = event(attempts=1, last_error_type="ValueError", last_error="boom")
    out = before_attempt(e, AsyncPolicy(max_event_age_seconds=60), T0 + 61)
    assert out is not None
    assert (out.event.last_error_type, out.event.last_error) == ("ValueError", "boom")
