"""Provisioned concurrency autoscaling's decisions: target tracking, cooldowns, bounds and
scheduled actions, with time handed in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from klambda.api.autoscaling import ProvisionedAutoscaling
from klambda.autoscaling import TargetTracker, bounds_at, tracked
from pydantic import ValidationError

NOW = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # a Monday


def policy(**kw: object) -> ProvisionedAutoscaling:
    base: dict[str, object] = {
        "minCapacity": 1,
        "maxCapacity": 10,
        "targetUtilization": 0.7,
        "scaleInCooldownSeconds": 30,
    }
    return ProvisionedAutoscaling.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("current", "utilization", "want"),
    [(2, 1.0, 3), (4, 0.7, 4), (10, 0.35, 5), (3, 0.0, 0), (1, 0.71, 2)],
)
def test_target_tracking_count(current: int, utilization: float, want: int) -> None:
    assert tracked(current, utilization, 0.7) == want


def run(
    tracker: TargetTracker, p: ProvisionedAutoscaling, current: int, u: float, t0: float, t1: float
) -> tuple[int, list[tuple[float, int]]]:
    """Readings of `u` every second from t0 to t1, applying each decision."""
    changes = []
    t = t0
    while t <= t1:
        tracker.observe(p, t, u)
        d = tracker.decide(p, current, t, NOW)
        if d is not None:
            current = d.count
            changes.append((t, current))
        t += 1.0
    return current, changes


def test_sustained_utilization_scales_out_and_idleness_scales_in_after_the_cooldown() -> None:
    p = policy()
    tr = TargetTracker(evaluation_s=5.0)
    current, changes = run(tr, p, 2, 1.0, 0.0, 20.0)
    # each step waits for a full evaluation window of readings of the new count
    assert [c for _, c in changes] == [3, 5, 8, 10]
    assert changes[0][0] == 5.0
    assert changes[1][0] - changes[0][0] == 5.0
    current, changes = run(tr, p, current, 0.0, 21.0, 80.0)
    # nothing for the cooldown (30 s since the last change at 20), then down to the minimum
    assert changes == [(50.0, 1)]


def test_a_short_lull_does_not_scale_in() -> None:
    p = policy()
    tr = TargetTracker(evaluation_s=5.0)
    current, _ = run(tr, p, 4, 0.7, 0.0, 40.0)
    current, _ = run(tr, p, current, 0.0, 41.0, 50.0)
    current, changes = run(tr, p, current, 0.7, 51.0, 75.0)
    assert (current, changes) == (4, [])


def test_a_count_outside_the_bounds_is_brought_in_at_once() -> None:
    tr = TargetTracker()
    d = tr.decide(policy(minCapacity=3), 1, 0.0, NOW)
    assert d is not None
    assert d.count == 3
    assert "minimum" in d.reason
    d = TargetTracker().decide(policy(maxCapacity=2), 5, 0.0, NOW)
    assert d is not None
    assert d.count == 2


def test_scheduled_actions_set_the_bounds_from_their_last_firing() -> None:
    p = policy(
        scheduledActions=[
            {"name": "day", "schedule": "cron(0 8 ? * MON-FRI *)", "minCapacity": 5},
            {"name": "night", "schedule": "cron(0 20 * * ? *)", "minCapacity": 1, "maxCapacity": 2},
        ]
    )
    assert bounds_at(p, NOW) == bounds_at(p, NOW.replace(hour=19))
    day = bounds_at(p, NOW)
    assert (day.min, day.max, day.action) == (5, 10, "day")
    night = bounds_at(p, NOW.replace(hour=21))
    assert (night.min, night.max, night.action) == (1, 2, "night")
    d = TargetTracker().decide(p, 2, 0.0, NOW)
    assert d is not None
    assert d.count == 5
    assert "scheduled action day" in d.reason


def test_a_change_by_someone_else_is_measured_afresh() -> None:
    p = policy()
    tr = TargetTracker(evaluation_s=5.0)
    current, _ = run(tr, p, 4, 0.7, 0.0, 10.0)
    assert current == 4
    # 6 set by hand at 11: its effect is measured for a whole window before a decision
    current, changes = run(tr, p, 6, 1.0, 11.0, 16.0)
    assert changes == [(16.0, 9)]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"minCapacity": 5, "maxCapacity": 2}, "minCapacity 5 is above maxCapacity 2"),
        ({"minCapacity": 1, "maxCapacity": 2, "targetUtilization": 0.95}, "targetUtilization"),
        (
            {
                "minCapacity": 1,
                "maxCapacity": 2,
                "scheduledActions": [{"name": "a", "schedule": "cron(0 8 * *)", "minCapacity": 1}],
            },
            "cron(0 8 * *)",
        ),
        (
            {
                "minCapacity": 1,
                "maxCapacity": 2,
                "scheduledActions": [{"name": "a", "schedule": "rate(5 minutes)"}],
            },
            "give minCapacity, maxCapacity or both",
        ),
    ],
)
def test_bad_policies_are_refused_naming_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ProvisionedAutoscaling.model_validate(spec)
    assert field in str(err.value)
