"""Qualifier parsing and weighted alias routing (seeded, statistical)."""

from __future__ import annotations

import random

import pytest
from klambda.api.alias import AliasSpec, RoutingConfig
from klambda.router.routing import parse_function_name, pick_version


@pytest.mark.parametrize(
    ("name", "qualifier", "expected"),
    [
        ("hello", None, ("hello", None)),
        ("hello", "prod", ("hello", "prod")),
        ("hello:3", None, ("hello", "3")),
        ("hello:3", "3", ("hello", "3")),
        ("123456789012:function:hello", None, ("hello", None)),
        ("arn:aws:lambda:us-east-1:123456789012:function:hello", None, ("hello", None)),
        ("arn:aws:lambda:us-east-1:123456789012:function:hello:prod", None, ("hello", "prod")),
    ],
)
def test_parse_function_name(name: str, qualifier: str | None, expected: tuple[str, str]) -> None:
    assert parse_function_name(name, qualifier) == expected


def test_conflicting_qualifiers() -> None:
    with pytest.raises(ValueError, match="differ"):
        parse_function_name("hello:1", "2")


def test_no_routing_always_primary() -> None:
    spec = AliasSpec(function="f", version="1")
    assert {pick_version(spec, r / 10) for r in range(10)} == {"1"}


@pytest.mark.parametrize("weight", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_weights_hold_statistically(weight: float) -> None:
    spec = AliasSpec(
        function="f", version="1", routing=RoutingConfig(additional_version="2", weight=weight)
    )
    rnd = random.Random(42)
    n = 20_000
    share = sum(pick_version(spec, rnd.random()) == "2" for _ in range(n)) / n
    # binomial standard deviation at n=20,000 is at most 0.0036; 5 sigma
    assert abs(share - weight) < 0.018
