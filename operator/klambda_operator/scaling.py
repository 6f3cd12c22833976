"""How many environments (worker pods) a function version should have: a pure decision.

One pod hosts one environment, so replicas = desired environments:

    desired = provisioned + on-demand, capped by reserved concurrency and the account

- on-demand is the router's demand (annotation `klambda.io/demand`: environments wanted
  beyond the provisioned ones). Environments are kept warm: while the version was invoked
  within the idle window (annotation `klambda.io/last-invoked`) the operator does not
  scale below what it has; after the window it scales to provisioned + demand, which is
  zero for a version nobody calls (scale to zero).
- reserved concurrency 0 is Lambda's emergency stop: zero environments, provisioned or not.
- Scale-up is rate limited (Lambda: a burst, then N new environments a minute): a single
  timestamp, the scale-up clock, is a token bucket (GCRA) of one minute's burst that
  refills at `scale_up_per_minute`; scale-down is immediate.
- With a warm pool (a version whose code the pool can run), on-demand environments are
  pool pods the router specialises, not replicas: the Deployment keeps the provisioned
  ones only. Specialised pods are deleted when the version has been idle for the window
  (never returned to the pool), at once on the emergency stop, and, for $LATEST, when the
  configuration they were given is no longer the function's (`specialised_to_delete`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(seconds=60)  # the bucket holds one minute of scale-up


@dataclass(frozen=True)
class ScalingPolicy:
    idle_seconds: float = 600.0
    scale_up_per_minute: int = 500
    max_environments: int = 1000


@dataclass(frozen=True)
class Demand:
    """What the router and the resources ask of one function version."""

    demand: int = 0  # environments wanted beyond the provisioned ones
    provisioned: int = 0
    reserved: int | None = None  # the function's reserved concurrency, if set
    last_invoked: datetime | None = None
    pooled: bool = False  # on-demand environments come from the warm pool


@dataclass(frozen=True)
class Decision:
    replicas: int  # what the Deployment gets now
    desired: int  # what it should have once the rate limit allows
    reason: str  # ReservedConcurrencyZero | ScaledToZero | RateLimited | Scaled
    message: str
    clock: datetime | None  # the scale-up clock to store for the next decision


def idle(last_invoked: datetime | None, now: datetime, idle_seconds: float) -> bool:
    return last_invoked is None or (now - last_invoked).total_seconds() >= idle_seconds


def scale_up_budget(clock: datetime | None, now: datetime, per_minute: int) -> int:
    """New environments allowed now by a bucket whose budget is spent until `clock`."""
    start = now - WINDOW if clock is None else max(clock, now - WINDOW)
    return math.floor((now - start).total_seconds() * per_minute / 60 + 1e-9)


def decide(
    want: Demand, current: int, clock: datetime | None, now: datetime, policy: ScalingPolicy
) -> Decision:
    """The replicas for a version with `current` replicas; pure, so table-tested."""
    if want.reserved == 0:
        return Decision(
            0, 0, "ReservedConcurrencyZero", "reserved concurrency is 0: no environments", clock
        )
    demand, provisioned = max(want.demand, 0), max(want.provisioned, 0)
    warm = not idle(want.last_invoked, now, policy.idle_seconds)
    on_demand = max(demand, current - provisioned) if warm else demand
    if want.pooled:
        on_demand = 0
    cap = policy.max_environments if want.reserved is None else want.reserved
    cap = min(cap, policy.max_environments)
    desired = min(provisioned + on_demand, cap)
    parts = (
        f"{min(provisioned, desired)} provisioned, {desired - min(provisioned, desired)} on demand"
    )
    if desired <= current:
        if desired == 0 and want.pooled:
            return Decision(
                0,
                0,
                "OnDemandFromPool",
                "no dedicated environments: on demand from the pool",
                clock,
            )
        if desired == 0:
            why = "idle" if want.last_invoked is not None else "never invoked"
            return Decision(0, 0, "ScaledToZero", f"no environments ({why})", clock)
        return Decision(desired, desired, "Scaled", f"{desired} environments: {parts}", clock)
    budget = scale_up_budget(clock, now, policy.scale_up_per_minute)
    step = min(desired - current, budget)
    if step > 0:
        start = now - WINDOW if clock is None else max(clock, now - WINDOW)
        clock = start + timedelta(seconds=step * 60 / policy.scale_up_per_minute)
    replicas = current + step
    if replicas < desired:
        return Decision(
            replicas,
            desired,
            "RateLimited",
            f"{replicas} of {desired} environments ({parts}): scale-up is limited to "
            f"{policy.scale_up_per_minute} a minute",
            clock,
        )
    return Decision(replicas, desired, "Scaled", f"{desired} environments: {parts}", clock)


@dataclass(frozen=True)
class SpecialisedPod:
    """A pool pod that serves a version, as the operator reads it."""

    name: str
    config_sha256: str  # the configuration it was given (contract.config_digest)
    claimed_at: datetime | None  # when a router claimed it


def specialised_to_delete(
    pods: list[SpecialisedPod],
    want: Demand,
    config_sha256: str,
    now: datetime,
    policy: ScalingPolicy,
) -> list[tuple[str, str]]:
    """(pod, why) for the specialised pods of a version that should go. Pure.

    A pod claimed within the idle window is kept even if the version looks idle: the
    router writes `last-invoked` a second or so after the call that claimed it.
    """
    out = []
    version_idle = idle(want.last_invoked, now, policy.idle_seconds)
    for pod in pods:
        if want.reserved == 0:
            out.append((pod.name, "reserved concurrency is 0"))
        elif pod.config_sha256 != config_sha256:
            out.append((pod.name, "its configuration is no longer the function's"))
        elif version_idle and idle(pod.claimed_at, now, policy.idle_seconds):
            out.append((pod.name, f"idle for {policy.idle_seconds:g} s"))
    return out
