"""Recursive loop detection's hop count, read from and written to the trace header."""

from __future__ import annotations

import pytest
from klambda import lineage


@pytest.mark.parametrize(
    ("header", "root", "hops"),
    [
        (None, None, None),
        ("", None, None),
        (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "1-5759e988-bd862e3fe1be46a994272793",
            None,
        ),
        ("Root=1-a-b;Lineage=a87bb23b:0", "1-a-b", 0),
        ("Root=1-a-b;Parent=x;Sampled=0;Lineage=a87bb23b:15", "1-a-b", 15),
        ("Lineage=1:a87bb23b:3", None, 3),  # whatever comes before the count
        ("Root=1-a-b;Lineage=a87bb23b:-1", "1-a-b", None),
        ("Root=1-a-b;Lineage=a87bb23b:99999999", "1-a-b", None),  # absurd: ignored
        ("garbage;;=;Root=", None, None),
    ],
)
def test_parse(header: str | None, root: str | None, hops: int | None) -> None:
    assert lineage.parse(header) == (root, hops)


def test_a_call_from_outside_starts_a_chain() -> None:
    t = lineage.of_request(None)
    assert t.hops == 0
    assert t.root.startswith("1-")
    assert lineage.parse(t.header()) == (t.root, 0)


def test_a_call_from_a_handler_is_the_next_hop_of_its_chain() -> None:
    first = lineage.of_request(None)
    second = lineage.of_request(first.header())  # what botocore sends on
    assert (second.root, second.hops) == (first.root, 1)
    # an event keeps the trace it was accepted with; its destination is the next hop
    assert lineage.of_event(second.header()) == second
    assert lineage.of_event(second.header()).next_hop().hops == 2


def test_the_16th_hop_is_stopped() -> None:
    t = lineage.of_request(None)
    runs = 0
    while not t.stopped:
        runs += 1
        t = lineage.of_request(t.header())
    assert runs == 16  # hops 0..15 run
    assert t.hops == lineage.MAX_HOPS == 16
