"""Provisioned concurrency autoscaling's decisions, as Application Auto Scaling makes them
for Lambda: target tracking on the utilization of the provisioned environments
(`klambda_provisioned_concurrency_utilization`, busy / provisioned) between a min and a max
that scheduled actions may change. Pure: readings and times are handed in.

Target tracking: the wanted count is `ceil(current * utilization / target)`, clamped to the
bounds in force.

- Scale out on the mean utilization of the last `evaluation_s` seconds, once that window
  holds only readings taken since the last change (a change's effect is measured before
  the next) and the scale-out cooldown has passed.
- Scale in on the *highest* utilization over the whole scale-in cooldown, and only once
  that long has passed since the last change: a short lull does not shed environments that
  a burst will want back.
- Bounds: a scheduled action's min and max, from the last firing of its cron or rate
  expression, replace the policy's until another action fires; a count outside the bounds
  in force is brought inside at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from klambda.api.autoscaling import ProvisionedAutoscaling, ScheduledAction
from klambda.triggers import schedule

EPSILON = 1e-9


@dataclass(frozen=True)
class Bounds:
    min: int
    max: int
    action: str | None = None  # the scheduled action that set them, if any


def bounds_at(policy: ProvisionedAutoscaling, now: datetime) -> Bounds:
    """The min and max in force at `now` (an aware datetime)."""
    fired: tuple[datetime, ScheduledAction] | None = None
    for action in policy.scheduled_actions:
        tz = schedule.time_zone(action.timezone) if action.timezone else None
        at = schedule.prev_tick(schedule.parse(action.schedule), now, tz)
        if at is not None and (fired is None or at > fired[0]):
            fired = (at, action)
    if fired is None:
        return Bounds(policy.min_capacity, policy.max_capacity)
    action = fired[1]
    lo = policy.min_capacity if action.min_capacity is None else action.min_capacity
    hi = policy.max_capacity if action.max_capacity is None else action.max_capacity
    return Bounds(lo, max(lo, hi), action.name)


def tracked(current: int, utilization: float, target: float) -> int:
    """Target tracking's count: enough environments for `utilization` to be `target`."""
    return math.ceil(current * utilization / target - EPSILON)


@dataclass(frozen=True)
class Decision:
    count: int
    reason: str


@dataclass
class TargetTracker:
    """One alias's or version's readings and the times of its last changes."""

    evaluation_s: float = 60.0
    readings: deque[tuple[float, float]] = field(default_factory=deque)
    last_change: float = -math.inf
    last_scale_out: float = -math.inf
    started: float | None = None  # the first reading
    seen: int | None = None  # the count last decided on (another writer's change resets)

    def observe(self, policy: ProvisionedAutoscaling, t: float, utilization: float) -> None:
        if self.started is None:
            self.started = t
        self.readings.append((t, utilization))
        keep = max(self.evaluation_s, policy.scale_in_cooldown_seconds)
        while self.readings and self.readings[0][0] < t - keep - EPSILON:
            self.readings.popleft()

    def _since(self, t: float) -> list[float]:
        return [u for at, u in self.readings if at > t]

    def decide(
        self, policy: ProvisionedAutoscaling, current: int, t: float, now: datetime
    ) -> Decision | None:
        """The count to set now, or None to leave it; records a change it returns."""
        if self.seen is not None and current != self.seen:
            self.last_change = t  # changed by someone else: measure it afresh
        self.seen = current
        b = bounds_at(policy, now)
        why = f" (scheduled action {b.action})" if b.action else ""
        decision: Decision | None = None
        if current < b.min:
            decision = Decision(b.min, f"below the minimum {b.min}{why}")
        elif current > b.max:
            decision = Decision(b.max, f"above the maximum {b.max}{why}")
        elif current > 0:
            decision = self._track(policy, current, t, b)
        if decision is not None and decision.count != current:
            self.last_change = t
            self.seen = decision.count
            if decision.count > current:
                self.last_scale_out = t
            return decision
        return None

    def _track(
        self, policy: ProvisionedAutoscaling, current: int, t: float, b: Bounds
    ) -> Decision | None:
        target = policy.target_utilization
        # how long the readings have measured the current count
        settled = min(t - self.last_change, t - (t if self.started is None else self.started))
        if settled >= self.evaluation_s and t - self.last_scale_out >= (
            policy.scale_out_cooldown_seconds
        ):
            recent = self._since(max(t - self.evaluation_s, self.last_change))
            if recent:
                mean = sum(recent) / len(recent)
                want = min(b.max, tracked(current, mean, target))
                if want > current:
                    return Decision(want, f"utilization {mean:.2f} over {target:.2f}")
        cooldown = policy.scale_in_cooldown_seconds
        if settled >= cooldown:
            window = self._since(max(t - cooldown, self.last_change))
            if window:
                peak = max(window)
                want = max(b.min, tracked(current, peak, target))
                if want < current:
                    return Decision(
                        want,
                        f"utilization at most {peak:.2f} for {cooldown:g} s, under {target:.2f}",
                    )
        return None
