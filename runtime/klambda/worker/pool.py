"""The warm environments of one function version, reused one request at a time.

Idle environments are kept most-recently-used first, so a steady trickle of requests
keeps hitting the same warm process and the others can age out after the keep-warm time.
Provisioned environments are started ahead of traffic and never reclaimed.
"""

from __future__ import annotations

import asyncio
import time

from klambda.worker.cgroups import Cgroups
from klambda.worker.environment import Environment, FunctionConfig, spawn
from klambda.worker.logs import LogHub
from klambda.worker.zygote import Zygote


class EnvironmentPool:
    def __init__(
        self,
        cfg: FunctionConfig,
        zygote: Zygote,
        logs: LogHub,
        cgroups: Cgroups,
        *,
        cpu_limits: bool = True,
    ) -> None:
        self.cfg = cfg
        self._zygote = zygote
        self._logs = logs
        self._cgroups = cgroups
        self._cpu_limits = cpu_limits
        self.idle: list[Environment] = []
        self.busy = 0
        self.starting = 0

    @property
    def size(self) -> int:
        return len(self.idle) + self.busy + self.starting

    def take_idle(self, provisioned_first: bool = True) -> Environment | None:
        """A warm environment, or None when a cold start is needed."""
        idle = self.idle
        while idle:
            env = idle.pop()
            if not env.dead:
                self.busy += 1
                return env
        return None

    async def start(self, provisioned: bool = False) -> Environment:
        """A new environment, already counted busy (InitFailed if init fails)."""
        self.starting += 1
        try:
            env = await spawn(
                self.cfg,
                self._zygote,
                self._logs,
                self._cgroups,
                provisioned=provisioned,
                cpu_limits=self._cpu_limits,
            )
        finally:
            self.starting -= 1
        self.busy += 1
        return env

    def release(self, env: Environment) -> None:
        self.busy -= 1
        if not env.dead:
            self.idle.append(env)

    async def provision(self, count: int) -> None:
        """Bring the provisioned environments up to `count`."""
        have = sum(1 for e in self.idle if e.provisioned and not e.dead)
        for _ in range(max(0, count - have)):
            env = await self.start(provisioned=True)
            self.release(env)

    async def reclaim(self, keep_warm_s: float) -> int:
        """Close on-demand environments idle for longer than `keep_warm_s`."""
        now = time.monotonic()
        old = [e for e in self.idle if not e.provisioned and now - e.last_used > keep_warm_s]
        if not old:
            return 0
        self.idle = [e for e in self.idle if e not in old and not e.dead]
        await asyncio.gather(*(e.close() for e in old))
        return len(old)

    async def close(self) -> None:
        envs, self.idle = self.idle, []
        await asyncio.gather(*(e.close() for e in envs))
