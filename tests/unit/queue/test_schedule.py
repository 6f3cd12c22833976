"""The retry schedule: Lambda's one minute then two for function errors; one second
doubling to five minutes for throttles; jitter within bounds."""

from __future__ import annotations

import pytest
from klambda.queue import RetrySchedule

LAMBDA = RetrySchedule(jitter=0.0)


@pytest.mark.parametrize(("attempt", "delay"), [(1, 60.0), (2, 120.0), (3, 240.0)])
def test_function_errors_back_off_one_then_two_minutes(attempt: int, delay: float) -> None:
    assert LAMBDA.error_delay(attempt) == delay


@pytest.mark.parametrize(
    ("throttles", "delay"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (50, 300.0), (10_000, 300.0)],
)
def test_throttles_back_off_from_one_second_to_five_minutes(throttles: int, delay: float) -> None:
    assert LAMBDA.throttle_delay(throttles) == delay


def test_bases_scale_the_whole_schedule_for_tests() -> None:
    fast = RetrySchedule(error_base=0.05, throttle_base=0.01, throttle_cap=0.1, jitter=0.0)
    assert [fast.error_delay(n) for n in (1, 2)] == [0.05, 0.1]
    assert [fast.throttle_delay(n) for n in (1, 2, 3, 4, 5)] == [0.01, 0.02, 0.04, 0.08, 0.1]


@pytest.mark.parametrize(("rnd", "factor"), [(0.0, 0.9), (0.5, 1.0), (1.0, 1.1)])
def test_jitter_stays_within_its_fraction(rnd: float, factor: float) -> None:
    s = RetrySchedule(jitter=0.1)
    assert s.error_delay(1, rnd) == pytest.approx(60.0 * factor)
    assert s.throttle_delay(20, rnd) == pytest.approx(300.0 * factor)


@pytest.mark.parametrize("n", [0, -1])
def test_counts_start_at_one(n: int) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        LAMBDA.error_delay(n)
    with pytest.raises(ValueError, match="start at 1"):
        LAMBDA.throttle_delay(n)
