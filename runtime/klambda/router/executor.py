"""The execution seam: where an admitted invocation runs.

`Invoker` hands every admitted call to one `Executor` and does the rest itself (cold-start,
spillover and error metrics, throttles, the usage ledger), so those are written once for
every place environments live. Two implementations:

- `LocalEnvironments` (local mode): environments forked from this router's zygotes, one
  `VersionExecutor` per function version, new ones only as fast as the function's
  scale-up limit allows (Lambda's rule: 1,000 every 10 s, shared by its versions);
- `RemoteWorkers` (cluster mode, `klambda.router.remote`): worker pods over gRPC, each
  running the same `VersionExecutor`.

Either raises `NoCapacity` (with Lambda's throttle reason) when no environment can take the
call, and reports provisioned concurrency as `Provisioned`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

from klambda.invocation import Call, Outcome
from klambda.router.admission import SCALE_UP_LIMIT, ScaleUp, ScaleUpLimiter
from klambda.router.registry import Target
from klambda.settings import RouterSettings
from klambda.worker import runtimes
from klambda.worker.cgroups import Cgroups
from klambda.worker.executor import NoCapacity, VersionExecutor
from klambda.worker.logs import LogHub
from klambda.worker.pool import EnvironmentPool
from klambda.worker.sandbox import Sandbox
from klambda.worker.zygote import Zygote

__all__ = ["Executor", "LocalEnvironments", "NoCapacity", "Provisioned"]


@dataclass(frozen=True)
class Provisioned:
    """Provisioned concurrency of one version: asked for, initialised, in use."""

    configured: int = 0
    ready: int = 0
    busy: int = 0
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return "FAILED"
        return "READY" if self.ready >= self.configured else "IN_PROGRESS"


class Executor(Protocol):
    async def run(self, target: Target, call: Call) -> Outcome:
        """Run an admitted call; NoCapacity when no environment can take it."""
        ...

    def set_provisioned(self, target: Target, count: int) -> None: ...

    def provisioned(self, target: Target) -> Provisioned: ...

    async def discard(self, target: Target) -> None:
        """The target is gone (a deleted version, a finished tuning copy)."""
        ...

    async def reclaim_idle(self, keep_warm_s: float) -> None: ...

    async def close(self) -> None: ...


async def reclaim_forever(executor: Executor, keep_warm_s: float) -> None:
    """Close environments idle for longer than `keep_warm_s`, looking a quarter of that
    often (every 1 to 30 s), until cancelled."""
    period = max(1.0, min(30.0, keep_warm_s / 4))
    while True:
        await asyncio.sleep(period)
        await executor.reclaim_idle(keep_warm_s)


class LocalEnvironments:
    """Environments in this process's zygotes (local mode)."""

    def __init__(
        self,
        settings: RouterSettings,
        logs: LogHub,
        cgroups: Cgroups,
        sandbox: Sandbox | None = None,
        scale_up: ScaleUp | None = None,
        kill_uids: bool = True,
    ) -> None:
        self.settings = settings
        self.logs = logs
        self.cgroups = cgroups
        self.sandbox = sandbox if sandbox is not None else Sandbox(enabled=False)
        self.zygotes: dict[str, Zygote] = {}
        self.versions: dict[str, VersionExecutor] = {}
        self._draining: set[EnvironmentPool] = set()  # discarded, requests still running
        self.scale_up: dict[str, ScaleUp] = {}  # by function
        # several router processes share one bucket for every function
        # (klambda.router.sharedpools)
        self.shared_scale_up = scale_up
        # at close, kill whatever runs as a function's uid (not in a follower router
        # process: the other processes' environments run as the same uids)
        self.kill_uids = kill_uids

    async def start(self, runtime_names: set[str]) -> None:
        """A zygote per runtime that has an interpreter here (others' functions are Failed)."""
        for runtime in runtime_names:
            python = runtimes.interpreter(runtime)
            if python is None or runtime in self.zygotes:
                continue
            zygote = Zygote(
                python,
                self.settings.preload,
                cgroups=self.cgroups,
                sandbox=self.sandbox,
                mergeable=self.settings.memory_merge,
            )
            await zygote.start()
            self.zygotes[runtime] = zygote

    def _may_start(self, function: str) -> tuple[str, str] | None:
        now = time.monotonic()
        limiter = self.shared_scale_up or self.scale_up.get(function)
        if limiter is None:
            s = self.settings
            limiter = self.scale_up[function] = ScaleUpLimiter(
                s.scale_up_per_minute, now, s.scale_up_burst
            )
        if limiter.try_take(now):
            return None
        return SCALE_UP_LIMIT, "Rate Exceeded."

    def executor(self, target: Target) -> VersionExecutor:
        ex = self.versions.get(target.key)
        if ex is None:
            pool = EnvironmentPool(
                target.config,
                self.zygotes.get(target.config.runtime),  # none: a Runtime API runtime
                self.logs,
                self.cgroups,
                cpu_limits=self.settings.cpu_limits,
            )
            function = target.config.function
            ex = self.versions[target.key] = VersionExecutor(
                pool, self.logs, lambda: self._may_start(function)
            )
        return ex

    async def run(self, target: Target, call: Call) -> Outcome:
        return await self.executor(target).run(call)

    def set_provisioned(self, target: Target, count: int) -> None:
        if count or target.key in self.versions:
            self.executor(target).pool.set_provisioned(count)

    def provisioned(self, target: Target) -> Provisioned:
        ex = self.versions.get(target.key)
        if ex is None:
            return Provisioned()
        p = ex.pool
        return Provisioned(
            p.provisioned_target, p.provisioned_ready, p.busy_provisioned, p.provisioning_error
        )

    async def discard(self, target: Target) -> None:
        ex = self.versions.pop(target.key, None)
        if ex is not None:
            # what runs there finishes there; the router's close ends what is still running
            self._draining = {p for p in self._draining if p.live} | {ex.pool}
            await ex.pool.close(drain=True)

    async def reclaim_idle(self, keep_warm_s: float) -> None:
        for ex in list(self.versions.values()):
            await ex.pool.reclaim(keep_warm_s)

    async def close(self) -> None:
        pools = [ex.pool for ex in self.versions.values()] + list(self._draining)
        await asyncio.gather(*(pool.close() for pool in pools))
        for z in self.zygotes.values():
            with contextlib.suppress(Exception):
                await z.stop()
        # what escaped every cgroup (there are none) or process group: the functions' uids
        if self.kill_uids:
            self.sandbox.kill_all()
