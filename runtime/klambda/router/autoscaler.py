"""Provisioned concurrency autoscaling in a router: every few seconds, each alias or version
with `provisionedAutoscaling` gets a reading of its provisioned environments' utilization
(busy / provisioned, what `klambda_provisioned_concurrency_utilization` reports) and
`klambda.autoscaling` decides its count, which `apply` sets (local mode: `LocalControl`,
as `klambda provisioned put` would)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from klambda.api.autoscaling import ProvisionedAutoscaling
from klambda.autoscaling import Decision, TargetTracker, bounds_at
from klambda.errors import KlambdaError
from klambda.router.invoke import Invoker
from klambda.router.registry import FunctionEntry

log = logging.getLogger("klambda.autoscaling")

Apply = Callable[[str, str, int], Awaitable[None]]


@dataclass
class Scaled:
    """The last change made to one alias or version, for its status."""

    at: float
    count: int
    reason: str
    error: str | None = None


def policies(entry: FunctionEntry) -> list[tuple[str, ProvisionedAutoscaling, int, list[str]]]:
    """(qualifier, policy, provisioned now, the versions it covers) of each alias and version
    with a policy."""
    out = []
    for number, v in sorted(entry.versions.items()):
        if v.spec.provisioned_autoscaling is not None:
            out.append(
                (number, v.spec.provisioned_autoscaling, v.spec.provisioned_concurrency, [number])
            )
    for name, a in sorted(entry.aliases.items()):
        if a.spec.provisioned_autoscaling is not None:
            covers = [a.spec.version] + (
                [a.spec.routing.additional_version] if a.spec.routing else []
            )
            out.append(
                (name, a.spec.provisioned_autoscaling, a.spec.provisioned_concurrency, covers)
            )
    return out


class Autoscaler:
    def __init__(self, invoker: Invoker, apply: Apply, period_s: float, evaluation_s: float):
        self.invoker = invoker
        self.apply = apply
        self.period_s = period_s
        self.evaluation_s = evaluation_s
        self.trackers: dict[tuple[str, str], TargetTracker] = {}
        self.scaled: dict[tuple[str, str], Scaled] = {}
        self._task: asyncio.Task[None] | None = None

    def utilization(self, entry: FunctionEntry, versions: list[str]) -> float:
        busy = configured = 0
        for number in versions:
            target = entry.targets.get(number)
            if target is not None:
                p = self.invoker.executor.provisioned(target)
                busy, configured = busy + p.busy, configured + p.configured
        return busy / configured if configured else 0.0

    async def tick(self, t: float, now: datetime) -> None:
        seen = set()
        for name, entry in list(self.invoker.registry.functions.items()):
            for qualifier, policy, current, versions in policies(entry):
                key = (name, qualifier)
                seen.add(key)
                tracker = self.trackers.get(key)
                if tracker is None:
                    tracker = self.trackers[key] = TargetTracker(self.evaluation_s)
                if current > 0:
                    tracker.observe(policy, t, self.utilization(entry, versions))
                decision = tracker.decide(policy, current, t, now)
                if decision is not None:
                    await self._apply(name, qualifier, current, decision, t)
        for key in set(self.trackers) - seen:
            del self.trackers[key]
            self.scaled.pop(key, None)

    async def _apply(self, name: str, qualifier: str, current: int, d: Decision, t: float) -> None:
        try:
            await self.apply(name, qualifier, d.count)
        except KlambdaError as err:
            log.warning(
                "%s:%s: provisioned concurrency %d not set: %s", name, qualifier, d.count, err
            )
            self.scaled[(name, qualifier)] = Scaled(t, current, d.reason, str(err))
            return
        log.info(
            "%s:%s: provisioned concurrency %d -> %d: %s",
            name,
            qualifier,
            current,
            d.count,
            d.reason,
        )
        self.scaled[(name, qualifier)] = Scaled(t, d.count, d.reason)

    def status(self, entry: FunctionEntry, qualifier: str) -> dict[str, object]:
        """What GetProvisionedAutoscaling and the console show for one alias or version."""
        for q, policy, current, versions in policies(entry):
            if q != qualifier:
                continue
            b = bounds_at(policy, datetime.now(UTC))
            out: dict[str, object] = {
                "policy": policy.wire(),
                "provisionedConcurrency": current,
                "utilization": round(self.utilization(entry, versions), 3),
                "minCapacity": b.min,
                "maxCapacity": b.max,
            }
            if b.action:
                out["scheduledAction"] = b.action
            last = self.scaled.get((entry.function.name, qualifier))
            if last is not None:
                out["lastScaling"] = {
                    "time": datetime.fromtimestamp(last.at, UTC).isoformat(),
                    "provisionedConcurrency": last.count,
                    "reason": last.reason,
                    **({"error": last.error} if last.error else {}),
                }
            return out
        return {}

    async def _run(self) -> None:
        while True:
            try:
                await self.tick(time.monotonic(), datetime.now(UTC))
            except Exception:  # a bad tick must not end autoscaling
                log.exception("provisioned autoscaling")
            await asyncio.sleep(self.period_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="provisioned-autoscaling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
