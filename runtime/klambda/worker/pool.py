"""The warm environments of one function version, reused one request at a time.

Provisioned environments (initialised ahead of traffic, never reclaimed) are used first;
requests beyond them spill over to on-demand environments. Idle on-demand environments
are kept most-recently-used first, so a steady trickle of requests keeps hitting the same
warm process and the others age out after the keep-warm time. An idle environment that
died (killed from outside) is dropped when it would be taken, and the request goes to
another or to a cold start: the caller never sees the death of an environment it did not
use. Closing the pool kills every environment, busy ones included; draining it (a $LATEST
replaced, a version deleted) closes the idle ones now and each busy one when its request
ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from klambda.execution import FunctionConfig
from klambda.worker import custom, runtimes, sidecar
from klambda.worker.cgroups import Cgroups
from klambda.worker.custom import RuntimeEnvironment
from klambda.worker.environment import Environment as ForkedEnvironment
from klambda.worker.environment import InitFailed, spawn
from klambda.worker.logs import LogHub
from klambda.worker.zygote import Zygote, ZygoteError

if TYPE_CHECKING:  # its server (aiohttp) is imported where an environment uses it
    from klambda.worker.runtimeapi import RuntimeApi

# a forked Python environment, or one whose runtime speaks the Runtime API (`provided*`)
Environment = ForkedEnvironment | RuntimeEnvironment


class EnvironmentPool:
    def __init__(
        self,
        cfg: FunctionConfig,
        zygote: Zygote | None,
        logs: LogHub,
        cgroups: Cgroups,
        *,
        cpu_limits: bool = True,
        runtime_container: RuntimeApi | None = None,
    ) -> None:
        """`runtime_container`: the listener of an image function's runtime container, in
        cluster mode (klambda.worker.sidecar), whose environments it gives."""
        self.cfg = cfg
        self._runtime_container = runtime_container
        self._zygote = zygote
        self._logs = logs
        self._cgroups = cgroups
        self._cpu_limits = cpu_limits
        self.idle: list[Environment] = []  # on-demand, most recently used last
        self.idle_provisioned: list[Environment] = []
        self.busy = 0
        self.busy_provisioned = 0
        self.starting = 0
        self.provisioned_target = 0
        self.provisioned_ready = 0
        self.provisioning_error: str | None = None
        self._provisioner: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Future[None]] = set()
        # closed while requests ran (a $LATEST replaced): their environments are closed
        # when those requests end, never reused
        self.closed = False
        self._live: set[Environment] = set()  # every environment started, until closed

    def _close_later(self, env: Environment) -> None:
        self._live.discard(env)
        fut = asyncio.ensure_future(env.close())
        self._closing.add(fut)
        fut.add_done_callback(self._closing.discard)

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.idle_provisioned) + self.busy + self.starting

    def take_idle(self) -> Environment | None:
        """A warm environment (provisioned first), or None when a cold start is needed."""
        for idle in (self.idle_provisioned, self.idle):
            while idle:
                env = idle.pop()
                if env.alive():
                    self.busy += 1
                    if env.provisioned:
                        self.busy_provisioned += 1
                    return env
                self._close_later(env)  # died while idle: its cgroup, its exit status
                if env.provisioned:
                    self.provisioned_ready -= 1
                    self._replenish()
        return None

    async def start(self, provisioned: bool = False) -> Environment:
        """A new environment, already counted busy (InitFailed if init fails)."""
        self.starting += 1
        try:
            try:
                env = await self._spawn(provisioned)
            except (ZygoteError, OSError):
                if self._zygote is None:
                    raise
                # the zygote died: start it again and try once more
                await self._zygote.ensure_running()
                env = await self._spawn(provisioned)
        finally:
            self.starting -= 1
        self._live.add(env)
        self.busy += 1
        if provisioned:
            self.busy_provisioned += 1
            self.provisioned_ready += 1
        return env

    async def _spawn(self, provisioned: bool) -> Environment:
        if self._runtime_container is not None:
            return await sidecar.spawn(
                self.cfg, self._logs, self._runtime_container, provisioned=provisioned
            )
        if runtimes.uses_runtime_api(self.cfg.runtime) or self.cfg.image or self._zygote is None:
            return await custom.spawn(
                self.cfg,
                self._logs,
                self._cgroups,
                provisioned=provisioned,
                cpu_limits=self._cpu_limits,
            )
        return await spawn(
            self.cfg,
            self._zygote,
            self._logs,
            self._cgroups,
            provisioned=provisioned,
            cpu_limits=self._cpu_limits,
        )

    def release(self, env: Environment) -> None:
        """A call is over. An environment still settling (its extensions finishing with
        the call, or its shutdown after a failed one) stays busy until that is done."""
        settling = env.settling if isinstance(env, RuntimeEnvironment) else None
        if settling is not None and not settling.done():
            fut = asyncio.ensure_future(self._release_after(env, settling))
            self._closing.add(fut)
            fut.add_done_callback(self._closing.discard)
            return
        self._release(env)

    async def _release_after(self, env: Environment, settling: asyncio.Future[None]) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(settling)
        self._release(env)

    def _release(self, env: Environment) -> None:
        self.busy -= 1
        if self.closed:
            if env.provisioned:
                self.busy_provisioned -= 1
            self._close_later(env)
            return
        if env.provisioned:
            self.busy_provisioned -= 1
            if env.dead:
                self._live.discard(env)
                self.provisioned_ready -= 1
                self._replenish()
            elif self.provisioned_ready > self.provisioned_target:
                self.provisioned_ready -= 1
                self._close_later(env)
            else:
                self.idle_provisioned.append(env)
        elif not env.dead:
            self.idle.append(env)
        else:
            self._live.discard(env)

    def set_provisioned(self, count: int) -> None:
        """Keep `count` provisioned environments; starts or stops them in the background."""
        self.provisioned_target = count
        self.provisioning_error = None
        while self.provisioned_ready > count and self.idle_provisioned:
            env = self.idle_provisioned.pop()
            self.provisioned_ready -= 1
            self._close_later(env)
        self._replenish()

    def _replenish(self) -> None:
        if self.provisioned_ready < self.provisioned_target and (
            self._provisioner is None or self._provisioner.done()
        ):
            self._provisioner = asyncio.ensure_future(self._provision())

    async def _provision(self) -> None:
        while self.provisioned_ready < self.provisioned_target:
            try:
                env = await self.start(provisioned=True)
            except InitFailed as err:
                self.provisioning_error = f"init failed: {err.error_type}"
                return
            self.release(env)

    async def provisioning(self) -> None:
        """Until the provisioned environments asked for are started (or their init failed)."""
        while self._provisioner is not None and not self._provisioner.done():
            await asyncio.shield(self._provisioner)

    @property
    def provisioning_status(self) -> str:
        if self.provisioning_error:
            return "FAILED"
        return "READY" if self.provisioned_ready >= self.provisioned_target else "IN_PROGRESS"

    async def reclaim(self, keep_warm_s: float) -> int:
        """Close on-demand environments idle for longer than `keep_warm_s`."""
        now = time.monotonic()
        old = [e for e in self.idle if now - e.last_used > keep_warm_s or not e.alive()]
        if not old:
            return 0
        self.idle = [e for e in self.idle if e not in old]
        self._live.difference_update(old)
        await asyncio.gather(*(e.close() for e in old))
        return len(old)

    @property
    def live(self) -> int:
        """Environments started and not yet closed, busy or idle."""
        return len(self._live)

    async def close(self, drain: bool = False) -> None:
        """Close every environment now, busy ones included (what they started must not
        outlive the pool); with `drain`, the idle ones now and the busy ones when their
        requests end (release)."""
        self.closed = True
        if self._provisioner is not None:
            self._provisioner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._provisioner
        if drain:
            envs = self.idle + self.idle_provisioned
            self._live.difference_update(envs)
        else:
            envs = list(self._live)
            self._live.clear()
        self.idle, self.idle_provisioned = [], []
        self.provisioned_ready = 0
        await asyncio.gather(*(e.close() for e in envs))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
