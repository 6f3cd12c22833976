"""Concurrency pools: account limit, reserved carve-outs, at least 100 unreserved."""

from __future__ import annotations

import pytest
from klambda.router.admission import (
    ACCOUNT_LIMIT,
    RESERVED_LIMIT,
    ConcurrencyPools,
    ReservationError,
)


def test_reserved_function_throttled_at_its_limit_even_with_account_room() -> None:
    pools = ConcurrencyPools(account_limit=1000)
    pools.set_reserved("a", 5)
    assert [pools.try_acquire("a") for _ in range(6)] == [None] * 5 + [RESERVED_LIMIT]
    pools.release("a")
    assert pools.try_acquire("a") is None


def test_reserved_zero_throttles_everything() -> None:
    pools = ConcurrencyPools()
    pools.set_reserved("a", 0)
    assert pools.try_acquire("a") == RESERVED_LIMIT


def test_unreserved_functions_share_what_is_left() -> None:
    pools = ConcurrencyPools(account_limit=200, unreserved_min=100)
    pools.set_reserved("big", 100)
    results = [pools.try_acquire("x" if i % 2 else "y") for i in range(101)]
    assert results[:100] == [None] * 100
    assert results[100] == ACCOUNT_LIMIT
    assert pools.try_acquire("big") is None  # its reservation is untouched


@pytest.mark.parametrize(
    ("account", "existing", "asked", "ok"),
    [
        (1000, {}, 900, True),
        (1000, {}, 901, False),
        (1000, {"b": 400}, 500, True),
        (1000, {"b": 400}, 501, False),
        (1000, {"a": 300}, 900, True),  # replacing a's own reservation
    ],
)
def test_at_least_100_stay_unreserved(
    account: int, existing: dict[str, int], asked: int, ok: bool
) -> None:
    pools = ConcurrencyPools(account_limit=account)
    for fn, n in existing.items():
        pools.set_reserved(fn, n)
    if ok:
        pools.set_reserved("a", asked)
        assert pools.reserved["a"] == asked
    else:
        with pytest.raises(ReservationError, match="at least 100 of the account's 1000"):
            pools.set_reserved("a", asked)
        assert pools.reserved.get("a") == existing.get("a")


def test_reservation_change_while_running_keeps_totals_right() -> None:
    pools = ConcurrencyPools(account_limit=1000)
    assert pools.try_acquire("a") is None
    pools.set_reserved("a", 10)
    pools.release("a")
    assert pools.unreserved_in_flight == 0
    assert pools.account_in_flight == 0


def test_scale_up_bucket_allows_a_burst_then_its_rate() -> None:
    from klambda.router.admission import ScaleUpLimiter

    limiter = ScaleUpLimiter(per_minute=60, now=0.0)
    assert all(limiter.try_take(0.0) for _ in range(60))
    assert not limiter.try_take(0.0)
    assert not limiter.try_take(0.5)
    assert limiter.try_take(1.01)  # one a second refills
    assert not limiter.try_take(1.02)
    assert sum(limiter.try_take(1000.0) for _ in range(100)) == 60  # never above the burst


def test_scale_up_follows_lambdas_rule_a_thousand_every_ten_seconds() -> None:
    from klambda.api.limits import SCALE_UP_BURST_DEFAULT, SCALE_UP_PER_MINUTE_DEFAULT
    from klambda.router.admission import ScaleUpLimiter

    limiter = ScaleUpLimiter(SCALE_UP_PER_MINUTE_DEFAULT, 0.0, SCALE_UP_BURST_DEFAULT)
    assert sum(limiter.try_take(0.0) for _ in range(1200)) == 1000
    assert sum(limiter.try_take(10.0) for _ in range(1200)) == 1000
    assert sum(limiter.try_take(11.0) for _ in range(1200)) == 100


def test_scale_up_burst_is_at_most_a_minutes_worth() -> None:
    from klambda.router.admission import ScaleUpLimiter

    limiter = ScaleUpLimiter(per_minute=2, now=0.0, burst=1000)
    assert sum(limiter.try_take(0.0) for _ in range(10)) == 2


@pytest.mark.parametrize(
    ("running", "reserved", "unreserved_running", "unreserved_limit", "reason"),
    [
        (4, 5, 0, 900, None),
        (5, 5, 0, 900, RESERVED_LIMIT),
        (0, 0, 0, 900, RESERVED_LIMIT),  # reserved 0: stopped
        (5, 10, 900, 900, None),  # a reservation ignores the unreserved pool
        (0, None, 899, 900, None),
        (0, None, 900, 900, ACCOUNT_LIMIT),
    ],
)
def test_admit_decides_from_the_counts_alone(
    running: int,
    reserved: int | None,
    unreserved_running: int,
    unreserved_limit: int,
    reason: str | None,
) -> None:
    from klambda.router.admission import admit

    assert admit(running, reserved, unreserved_running, unreserved_limit) == reason


@pytest.mark.parametrize(
    ("tokens", "elapsed", "per_minute", "after"),
    [
        (0.0, 1.0, 60, 1.0),
        (59.5, 10.0, 60, 60.0),  # never above the burst
        (3.0, -1.0, 60, 3.0),  # a clock read before another process's: no refill
        (0.0, 30.0, 500, 250.0),
    ],
)
def test_refill(tokens: float, elapsed: float, per_minute: int, after: float) -> None:
    from klambda.router.admission import refill

    assert refill(tokens, elapsed, per_minute) == pytest.approx(after)
