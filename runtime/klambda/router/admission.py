"""Lambda's concurrency pools: who may run now, and who is throttled. Pure, no I/O.

One account pool (default 1000) is shared by every function. A function with reserved
concurrency owns that many slots and never runs more; the others compete for what is not
reserved, of which at least 100 always stay. A request that finds no slot is refused at
once with Lambda's reason; nothing here ever waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from klambda.api import limits
from klambda.api.limits import ACCOUNT_LIMIT, RESERVED_LIMIT, SCALE_UP_LIMIT
from klambda.api.rules import RuleError, check_reservation

__all__ = [
    "ACCOUNT_LIMIT",
    "RESERVED_LIMIT",
    "SCALE_UP_LIMIT",
    "Admission",
    "ConcurrencyPools",
    "ReservationError",
    "ScaleUp",
    "ScaleUpLimiter",
    "admit",
    "refill",
]


# refusals of a reservation are the control rules' (klambda.api.rules)
ReservationError = RuleError


def admit(
    running: int, reserved: int | None, unreserved_running: int, unreserved_limit: int
) -> str | None:
    """Whether one more call of a function may run: None, or Lambda's throttle reason.

    `running`: the function's calls in flight; `reserved`: its reserved concurrency (None:
    it takes from the unreserved pool, which has `unreserved_running` of `unreserved_limit`
    in use). Where the counts are kept (one process, or shared by several:
    klambda.router.sharedpools) is the caller's business.
    """
    if reserved is not None:
        return RESERVED_LIMIT if running >= reserved else None
    return ACCOUNT_LIMIT if unreserved_running >= unreserved_limit else None


def refill(tokens: float, elapsed: float, per_minute: int) -> float:
    """A scale-up bucket's tokens after `elapsed` seconds: `per_minute` a minute, at most
    `per_minute` (the burst)."""
    return min(float(per_minute), tokens + max(0.0, elapsed) * per_minute / 60.0)


class Admission(Protocol):
    """What the invoke path and the control API ask of the concurrency pools, kept in this
    process (`ConcurrencyPools`) or shared by the router processes of one `klambda up
    --processes N` (klambda.router.sharedpools.SharedPools)."""

    account_limit: int
    unreserved_min: int

    @property
    def reserved(self) -> dict[str, int]: ...

    @property
    def unreserved_limit(self) -> int: ...

    @property
    def account_in_flight(self) -> int: ...

    @property
    def unreserved_in_flight(self) -> int: ...

    def check_reservation(self, function: str, reserved: int | None) -> None: ...

    def set_reserved(self, function: str, reserved: int | None) -> None: ...

    def try_acquire(self, function: str) -> str | None: ...

    def release(self, function: str) -> None: ...


@dataclass
class ConcurrencyPools:
    account_limit: int = limits.ACCOUNT_CONCURRENCY_DEFAULT
    unreserved_min: int = limits.UNRESERVED_CONCURRENCY_MIN
    reserved: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    unreserved_in_flight: int = 0
    # slots a function holds from the unreserved pool (its reservation may change while
    # they run; counting them per function keeps the totals right when they end)
    unreserved_by: dict[str, int] = field(default_factory=dict)
    total_in_flight: int = 0

    @property
    def total_reserved(self) -> int:
        return sum(self.reserved.values())

    @property
    def unreserved_limit(self) -> int:
        return self.account_limit - self.total_reserved

    @property
    def account_in_flight(self) -> int:
        return self.total_in_flight

    def check_reservation(self, function: str, reserved: int | None) -> None:
        """ReservationError (naming the limit) unless `reserved` can be given to `function`."""
        check_reservation(
            function, reserved, self.reserved, self.account_limit, self.unreserved_min
        )

    def set_reserved(self, function: str, reserved: int | None) -> None:
        self.check_reservation(function, reserved)
        if reserved is None:
            self.reserved.pop(function, None)
        else:
            self.reserved[function] = reserved

    def try_acquire(self, function: str) -> str | None:
        """Take a slot for `function`; None on success, else the throttle reason."""
        running = self.in_flight.get(function, 0)
        reserved = self.reserved.get(function)
        reason = admit(running, reserved, self.unreserved_in_flight, self.unreserved_limit)
        if reason is not None:
            return reason
        if reserved is None:
            self.unreserved_in_flight += 1
            self.unreserved_by[function] = self.unreserved_by.get(function, 0) + 1
        self.in_flight[function] = running + 1
        self.total_in_flight += 1
        return None

    def release(self, function: str) -> None:
        self.in_flight[function] -= 1
        self.total_in_flight -= 1
        if self.unreserved_by.get(function, 0) > 0:
            self.unreserved_by[function] -= 1
            self.unreserved_in_flight -= 1


class ScaleUp(Protocol):
    """Whether a new on-demand environment may start now (`ScaleUpLimiter`, or the one
    bucket of several router processes: klambda.router.sharedpools.SharedScaleUp)."""

    def try_take(self, now: float) -> bool: ...


class ScaleUpLimiter:
    """How fast new on-demand environments of one function may start: a token bucket.

    Lambda lets each function gain up to 1,000 environments every 10 seconds; a request
    that needs a new environment beyond that rate is throttled. The bucket holds `burst`
    tokens (at most a minute's worth; `per_minute` when not given) and refills at
    `per_minute` a minute. `now` is passed in, so the arithmetic is pure and testable.
    """

    def __init__(self, per_minute: int, now: float = 0.0, burst: int | None = None) -> None:
        self.per_minute = per_minute
        self.burst = per_minute if burst is None else min(burst, per_minute)
        self.tokens = float(self.burst)
        self.stamp = now

    def try_take(self, now: float) -> bool:
        self.tokens = min(float(self.burst), refill(self.tokens, now - self.stamp, self.per_minute))
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
