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
    # provisioned concurrency (us-east-1, x86): its environments cost per GB-second kept
    # ready, and invocations on them pay a lower duration price; no free tier for either
    provisioned_per_gb_second: float = 0.0000041667
    provisioned_duration_per_gb_second: float = 0.0000097222


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


HOURS_PER_MONTH = 730  # AWS's month in its pricing examples


@dataclass(frozen=True)
class ProvisionedCost:
    """A month of provisioned concurrency: the environments kept ready, and invocations
    that ran on them (requests at the usual price, duration at the provisioned one)."""

    units: int
    memory_mb: int
    hours: float
    ready_gb_seconds: float
    ready_cost: float
    requests: int
    duration_gb_seconds: float
    request_cost: float
    duration_cost: float

    @property
    def total(self) -> float:
        return self.ready_cost + self.request_cost + self.duration_cost


def monthly_provisioned(
    units: int,
    memory_mb: int,
    hours: float = HOURS_PER_MONTH,
    invocations: int = 0,
    duration_ms: float = 0.0,
    prices: Prices = DEFAULT_PRICES,
) -> ProvisionedCost:
    """`units` environments of `memory_mb` kept initialised for `hours`, with `invocations`
    of `duration_ms` served by them. `klambda cost estimate --provisioned 5 --memory 640`
    gives $34.22 for 5 units always on (730 hours), the seed's "$34 a month for 5 units"."""
    ready = units * memory_mb / 1024.0 * hours * 3600
    used = invocations * gb_seconds(duration_ms, memory_mb) if invocations else 0.0
    return ProvisionedCost(
        units=units,
        memory_mb=memory_mb,
        hours=hours,
        ready_gb_seconds=ready,
        ready_cost=ready * prices.provisioned_per_gb_second,
        requests=invocations,
        duration_gb_seconds=used,
        request_cost=invocations / 1_000_000 * prices.per_million_requests,
        duration_cost=used * prices.provisioned_duration_per_gb_second,
    )
