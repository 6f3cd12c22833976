"""Lambda's pricing: the seed's worked examples to the cent, billed-duration rounding."""

from __future__ import annotations

import pytest
from klambda.pricing import Prices, billed_ms, gb_seconds, invocation_cost, monthly


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
