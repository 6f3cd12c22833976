"""Lambda's pricing: the seed's worked examples to the cent, billed-duration rounding."""

from __future__ import annotations

import pytest
from klambda.pricing import (
    Prices,
    billed_ms,
    gb_seconds,
    invocation_cost,
    monthly,
    prices_with,
    usage_cost,
)


@pytest.mark.parametrize(
    ("invocations", "memory", "duration_ms", "total"),
    [
        (3_000_000, 512, 1000, 18.74),  # 1.1 M GB-s after the free tier + $0.40 requests
        (30_000_000, 128, 200, 11.63),
        (1_000_000, 128, 100, 0.0),  # all within the free tier
    ],
)
def test_seed_examples(invocations: int, memory: int, duration_ms: float, total: float) -> None:
    assert round(monthly(invocations, memory, duration_ms).total, 2) == total


def test_unrounded_price_gives_aws_console_figure() -> None:
    prices = Prices(per_gb_second=0.0000166667)
    assert round(monthly(3_000_000, 512, 1000, prices).total, 2) == 18.73


def test_free_tier_can_be_switched_off() -> None:
    cost = monthly(1_000_000, 1024, 1000, free_tier=False)
    assert cost.request_cost == pytest.approx(0.20)
    assert cost.compute_cost == pytest.approx(1_000_000 * 0.00001667)


@pytest.mark.parametrize(
    ("duration", "billed"), [(0.0, 1), (0.01, 1), (1.0, 1), (1.001, 2), (99.5, 100), (3000.0, 3000)]
)
def test_billed_duration_rounds_up_to_the_millisecond(duration: float, billed: int) -> None:
    assert billed_ms(duration) == billed


def test_gb_seconds_and_cost_of_one_invocation() -> None:
    assert gb_seconds(1000, 1024) == 1.0
    assert invocation_cost(1000, 1024) == pytest.approx(0.2e-6 + 0.00001667)


@pytest.mark.parametrize(
    ("requests", "gbs", "cost"),
    [
        (0, 0.0, 0.0),
        (1_000_000, 0.0, 0.20),
        (0, 1.0, 0.00001667),
        (5, 2.5, 5 * 0.2e-6 + 2.5 * 0.00001667),
        (3_000_000, 1_500_000.0, 0.60 + 1_500_000 * 0.00001667),  # before the free tier
    ],
)
def test_usage_cost_is_requests_plus_gb_seconds(requests: int, gbs: float, cost: float) -> None:
    assert usage_cost(requests, gbs) == pytest.approx(cost)


def test_usage_cost_uses_the_prices_given() -> None:
    prices = Prices(per_million_requests=1.0, per_gb_second=0.001)
    assert usage_cost(2_000_000, 10.0, prices) == pytest.approx(2.0 + 0.01)


@pytest.mark.parametrize(
    ("gb", "million", "expected"),
    [
        (None, None, Prices()),
        (0.0000166667, None, Prices(per_gb_second=0.0000166667)),
        (None, 0.25, Prices(per_million_requests=0.25)),
        (0.0, 0.0, Prices(per_gb_second=0.0, per_million_requests=0.0)),
    ],
)
def test_prices_with_replaces_only_what_is_given(
    gb: float | None, million: float | None, expected: Prices
) -> None:
    assert prices_with(gb, million) == expected


def test_provisioned_concurrency_five_units_always_on() -> None:
    """The seed's "$34 a month for 5 units": 5 environments of 640 MB kept ready all month
    (730 hours) at $0.0000041667 per GB-second."""
    from klambda.pricing import monthly_provisioned

    bill = monthly_provisioned(5, 640)
    assert bill.ready_gb_seconds == 8_212_500
    assert round(bill.total, 2) == 34.22
    busy = monthly_provisioned(5, 640, invocations=1_000_000, duration_ms=100)
    assert round(busy.duration_cost, 2) == 0.61  # 62,500 GB-s at the lower duration price
    assert round(busy.total - bill.total, 2) == 0.81
