"""Lambda's pricing model: requests, billed GB-seconds, the monthly free tier.

Pure arithmetic; prices come from a `Prices` value (configurable), never from literals
scattered through the code. The defaults are the figures of AWS's published worked
examples ($0.20 per million requests, $0.00001667 per GB-second).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    per_million_requests: float = 0.20
    per_gb_second: float = 0.00001667
    free_requests: int = 1_000_000
    free_gb_seconds: float = 400_000.0


DEFAULT_PRICES = Prices()


def prices_with(
    per_gb_second: float | None = None,
    per_million_requests: float | None = None,
    base: Prices = DEFAULT_PRICES,
) -> Prices:
    """`base` with the prices given (a flag, a setting) in place of its own."""
    return dataclasses.replace(
        base,
        per_million_requests=base.per_million_requests
        if per_million_requests is None
        else per_million_requests,
        per_gb_second=base.per_gb_second if per_gb_second is None else per_gb_second,
    )


def billed_ms(duration_ms: float) -> int:
    """Billed duration: rounded up to the next millisecond, at least 1 ms."""
    return max(1, math.ceil(round(duration_ms, 6)))


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    return billed_ms(duration_ms) / 1000.0 * memory_mb / 1024.0


def usage_cost(requests: int, billed_gb_seconds: float, prices: Prices = DEFAULT_PRICES) -> float:
    """What `requests` invocations using `billed_gb_seconds` add to the bill, before any
    free tier (a usage report's cost column)."""
    return (
        requests * prices.per_million_requests / 1_000_000
        + billed_gb_seconds * prices.per_gb_second
    )


def invocation_cost(duration_ms: float, memory_mb: int, prices: Prices = DEFAULT_PRICES) -> float:
    """What one invocation adds to the bill, before any free tier."""
    return usage_cost(1, gb_seconds(duration_ms, memory_mb), prices)


@dataclass(frozen=True)
class MonthlyCost:
    requests: int
    gb_seconds: float
    request_cost: float
    compute_cost: float

    @property
    def total(self) -> float:
        return self.request_cost + self.compute_cost


def monthly(
    invocations: int,
    memory_mb: int,
    duration_ms: float,
    prices: Prices = DEFAULT_PRICES,
    free_tier: bool = True,
) -> MonthlyCost:
    """A month's bill for `invocations` of `duration_ms` each at `memory_mb`."""
    total_gbs = invocations * gb_seconds(duration_ms, memory_mb)
    billable_requests = max(0, invocations - (prices.free_requests if free_tier else 0))
    billable_gbs = max(0.0, total_gbs - (prices.free_gb_seconds if free_tier else 0.0))
    return MonthlyCost(
        requests=invocations,
        gb_seconds=total_gbs,
        request_cost=billable_requests / 1_000_000 * prices.per_million_requests,
        compute_cost=billable_gbs * prices.per_gb_second,
    )
