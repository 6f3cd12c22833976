"""Environments follow demand: the operator's pure scaling decision, table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from klambda_operator.scaling import Demand, ScalingPolicy, decide

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = ScalingPolicy(idle_seconds=600, scale_up_per_minute=60, max_environments=1000)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


S, Z, RL, R0 = "Scaled", "ScaledToZero", "RateLimited", "ReservedConcurrencyZero"
D = Demand
SOON = NOW + timedelta(seconds=5)

# (what, demand, current, clock, replicas, desired, reason)
DECISIONS: list[tuple[str, Demand, int, datetime | None, int, int, str]] = [
    ("never invoked",             D(),                                    0, None, 0, 0, Z),
    ("demand",                    D(3, last_invoked=ago(1)),              0, None, 3, 3, S),
    ("warm after demand",         D(0, last_invoked=ago(10)),             3, None, 3, 3, S),
    ("warm keeps more",           D(1, last_invoked=ago(10)),             3, None, 3, 3, S),
    ("idle window over",          D(0, last_invoked=ago(601)),            3, None, 0, 0, Z),
    ("idle: demand only",         D(1, last_invoked=ago(700)),            3, None, 1, 1, S),
    ("provisioned floor",         D(0, 2, last_invoked=ago(700)),         5, None, 2, 2, S),
    ("provisioned + demand",      D(2, 2, last_invoked=ago(1)),           0, None, 4, 4, S),
    ("reserved 0 stops all",      D(9, 5, reserved=0),                    4, None, 0, 0, R0),
    ("reserved caps",             D(10, reserved=3, last_invoked=ago(1)), 0, None, 3, 3, S),
    ("account caps",              D(5000),                 1000, None, 1000, 1000, S),
    ("burst of a minute",         D(100),                     0, None,    60,  100, RL),
    ("budget spent",              D(100),                    60, NOW,     60,  100, RL),
    ("budget refills",            D(100),                    60, ago(30), 90,  100, RL),
    ("refilled enough",           D(100),                    90, ago(30), 100, 100, S),
    ("scale-down is not limited", D(0, last_invoked=ago(900)), 500, NOW,  0,     0, Z),
    ("invoked in the future",     D(0, last_invoked=SOON),     2, None,   2,     2, S),
    ("negative demand",           D(-4),                       0, None,   0,     0, Z),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "want", "current", "clock", "replicas", "desired", "reason"),
    DECISIONS,
    ids=[d[0] for d in DECISIONS],
)
def test_decide(
    what: str,
    want: Demand,
    current: int,
    clock: datetime | None,
    replicas: int,
    desired: int,
    reason: str,
) -> None:
    decision = decide(want, current, clock, NOW, POLICY)
    assert (decision.replicas, decision.desired, decision.reason) == (replicas, desired, reason)


def test_the_scale_up_clock_is_a_token_bucket() -> None:
    """Scaling up a minute's burst spends it; it refills at the rate, never beyond a minute."""
    first = decide(Demand(1000), 0, None, NOW, POLICY)
    assert (first.replicas, first.clock) == (60, NOW)
    later = NOW + timedelta(seconds=10)
    second = decide(Demand(1000), first.replicas, first.clock, later, POLICY)
    assert second.replicas == 70
    assert second.clock == later
    small = decide(Demand(61), 60, NOW - timedelta(hours=1), NOW, POLICY)
    assert small.replicas == 61
    assert small.clock == NOW - timedelta(seconds=59)  # 59 of the minute's 60 left
