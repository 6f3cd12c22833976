"""Environments follow demand: the operator's pure scaling decision, table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from klambda_operator.scaling import (
    Demand,
    ScalingPolicy,
    SpecialisedPod,
    decide,
    specialised_to_delete,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = ScalingPolicy(idle_seconds=600, scale_up_per_minute=60, max_environments=1000)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


S, Z, RL, R0 = "Scaled", "ScaledToZero", "RateLimited", "ReservedConcurrencyZero"
P = "OnDemandFromPool"
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
    # with a warm pool, on-demand environments are specialised pool pods, not replicas
    ("pool: demand",              D(5, last_invoked=ago(1), pooled=True),    0, None, 0, 0, P),
    ("pool: warm replicas go",    D(0, last_invoked=ago(1), pooled=True),    3, None, 0, 0, P),
    ("pool: provisioned kept",    D(4, 2, last_invoked=ago(1), pooled=True), 0, None, 2, 2, S),
    ("pool: reserved 0",          D(4, 2, reserved=0, pooled=True),          2, None, 0, 0, R0),
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


SHA = "digest-of-the-config"
Pod = SpecialisedPod

# (what, pods, demand, [(pod, why)])
RECLAIMS: list[tuple[str, list[SpecialisedPod], Demand, list[str]]] = [
    ("warm version keeps its pods", [Pod("a", SHA, ago(900)), Pod("b", SHA, ago(5))],
        D(last_invoked=ago(10)), []),
    ("idle version: all go", [Pod("a", SHA, ago(900)), Pod("b", SHA, ago(700))],
        D(last_invoked=ago(700)), ["a", "b"]),
    ("just claimed, not yet seen invoked", [Pod("a", SHA, ago(1))], D(), []),
    ("never invoked, claimed long ago", [Pod("a", SHA, ago(601))], D(), ["a"]),
    ("no claim time", [Pod("a", SHA, None)], D(last_invoked=ago(601)), ["a"]),
    ("stale configuration", [Pod("a", "older", ago(1)), Pod("b", SHA, ago(1))],
        D(last_invoked=ago(1)), ["a"]),
    ("emergency stop", [Pod("a", SHA, ago(1))], D(reserved=0, last_invoked=ago(1)), ["a"]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "pods", "want", "gone"), RECLAIMS, ids=[r[0] for r in RECLAIMS])
def test_specialised_pods_to_delete(
    what: str, pods: list[SpecialisedPod], want: Demand, gone: list[str]
) -> None:
    got = specialised_to_delete(pods, want, SHA, NOW, POLICY)
    assert [name for name, _why in got] == gone
