"""The schedules' Lease: who may take it, what a holder writes, the ticks it carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from klambda import contract
from klambda.router.leadership import (
    Record,
    held_spec,
    may_take,
    micro_time,
    record_of,
    released_spec,
    ticks_annotation,
    ticks_of,
)

NOW = datetime(2024, 1, 1, 12, 0, 30, 250000, tzinfo=UTC)


def lease(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "l", "annotations": annotations or {}}, "spec": spec}


@pytest.mark.parametrize(
    ("holder", "unchanged_for", "takes"),
    [
        ("", 0.0, True),  # nobody holds it (never held, or released)
        ("me", 0.0, True),  # a renewal
        ("other", 0.0, False),  # just renewed by another router
        ("other", 14.9, False),
        ("other", 15.0, True),  # not renewed for its whole duration: stale
    ],
)
def test_who_may_take_the_lease(holder: str, unchanged_for: float, takes: bool) -> None:
    record = Record(holder, 15, "2024-01-01T12:00:00.000000Z", "", 3)
    assert may_take(record, "me", unchanged_for) is takes


def test_a_record_from_a_lease_and_from_an_empty_one() -> None:
    spec = {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "renewTime": "2024-01-01T12:00:00.000000Z",
        "acquireTime": "2024-01-01T11:00:00.000000Z",
        "leaseTransitions": 2,
    }
    assert record_of(lease(spec)) == Record(
        "a", 15, "2024-01-01T12:00:00.000000Z", "2024-01-01T11:00:00.000000Z", 2
    )
    assert record_of({}) == Record("", 0, "", "", 0)


def test_taking_over_counts_a_transition_and_a_renewal_keeps_the_acquire_time() -> None:
    other = Record("other", 15, "x", "2024-01-01T11:00:00.000000Z", 2)
    taken = held_spec(other, "me", NOW, 15)
    assert taken == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": "2024-01-01T12:00:30.250000Z",
        "renewTime": "2024-01-01T12:00:30.250000Z",
        "leaseTransitions": 3,
    }
    mine = Record("me", 15, "x", "2024-01-01T11:00:00.000000Z", 3)
    renewed = held_spec(mine, "me", NOW, 15)
    assert renewed["acquireTime"] == "2024-01-01T11:00:00.000000Z"
    assert renewed["leaseTransitions"] == 3
    # a released Lease (no holder) taken again is no transition away from anyone
    assert held_spec(Record("", 1, "x", "y", 3), "me", NOW, 15)["leaseTransitions"] == 3


def test_a_release_leaves_no_holder() -> None:
    spec = released_spec(Record("me", 15, "x", "a", 4), NOW)
    assert spec["holderIdentity"] == ""
    assert spec["leaseTransitions"] == 4
    assert spec["renewTime"] == micro_time(NOW)


def test_ticks_round_trip_through_the_annotation_and_bad_ones_count_as_none() -> None:
    ticks = {"hello/tick": 1704110400.0, "hello:prod/nightly": 1704078000.0}
    annotations = ticks_annotation(ticks)
    assert list(annotations) == [contract.ANNOTATION_SCHEDULE_TICKS]
    assert json.loads(annotations[contract.ANNOTATION_SCHEDULE_TICKS]) == ticks
    assert ticks_of(lease({}, annotations)) == ticks
    assert ticks_of(lease({})) == {}
    for bad in ("not json", "[1, 2]", '{"k": "x"}'):
        assert ticks_of(lease({}, {contract.ANNOTATION_SCHEDULE_TICKS: bad})) == {}
