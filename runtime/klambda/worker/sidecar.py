"""Container-image functions in cluster mode: the function's own image is the second
container of its worker pod, and its entry point (a runtime interface client such as
awslambdaric, as in Lambda's base images, or any program that speaks the Runtime API)
talks to the worker's Runtime API on 127.0.0.1, the pod's shared loopback.

The pod shares its process namespace, both containers run as the same uid, and the
worker starts first (a native sidecar whose startup probe is the Runtime API's port), so:

- an environment's init is the runtime's start up to its first `GET .../next`, timed from
  the runtime process's own start (`/proc/PID/stat`);
- the runtime's processes are the pod's processes outside the worker's cgroup (PID 1 is
  the pod's pause); the worker reads their peak memory from `/proc` and, at a timeout or
  when the environment is closed, kills them all, after which the kubelet starts the
  container again and its first `.next` is the next environment's init;
- the runtime's own output goes to its container's log (`kubectl logs POD -c function`);
  START, END and REPORT are the worker's, as for every environment. The container's exit
  status is not visible from the worker's side, so a runtime that dies during a call is
  `Runtime.ExitError` (an out-of-memory kill included).

One listener serves every environment of the pod in turn (`RuntimeApi.renew`): the
runtime container finds the address it was given whenever it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from klambda.execution import FunctionConfig, stream_name
from klambda.invocation import Outcome
from klambda.logformat import platform as platform_of
from klambda.worker.custom import RuntimeEnvironment
from klambda.worker.environment import INIT_TIMEOUT_S, InitFailed
from klambda.worker.logs import LogHub

if TYPE_CHECKING:  # the worker started its server (serve's runtime_api_port)
    from klambda.worker.runtimeapi import RuntimeApi

# how long the first environment of a pod may wait for its runtime container to start
# (image unpacking, the kubelet's restart back-off after a kill) before Lambda's init limit
CONTAINER_START_S = 120.0
POLL_S = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None when it is gone."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/stat").read_text()
        return raw[raw.rindex(")") + 2 :].split()
    return None


def running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def runtime_pids() -> list[int]:
    """The processes of the pod's other containers: every process of the shared process
    namespace but PID 1 (the pause) whose cgroup is not the worker's own."""
    try:
        mine = Path("/proc/self/cgroup").read_text()
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or entry.name == "1":
            continue
        with contextlib.suppress(OSError):
            if Path(entry.path, "cgroup").read_text() != mine and running(int(entry.name)):
                found.append(int(entry.name))
    return sorted(found)


def age_s(pid: int) -> float | None:
    """How long ago process `pid` started, or None."""
    fields = _stat(pid)
    if fields is None:
        return None
    started = int(fields[19]) / CLOCK_TICKS  # starttime, the 22nd field, in ticks after boot
    return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)


def _hwm_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class RuntimeContainer:
    """The runtime container's processes, as `RuntimeEnvironment` sees the process it
    would have started itself: gone when none of them runs any more."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.killed = False
        self.peak = 0

    @property
    def pid(self) -> int:
        return self.pids[0] if self.pids else 0

    @property
    def returncode(self) -> int | None:
        if any(running(p) for p in self.pids):
            return None
        return -signal.SIGKILL if self.killed else 1

    async def wait(self) -> int:
        # polled: a process of another container gives the worker no handle to wait on
        while True:
            code = self.returncode
            if code is not None:
                return code
            await asyncio.sleep(POLL_S)

    def kill(self) -> None:
        """SIGKILL every process of the runtime container (the ones it started since too)."""
        self.killed = True
        for pid in {*self.pids, *runtime_pids()}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def peak_kb(self) -> int:
        """The peak memory seen: the sum of the high-water marks of its processes now."""
        self.peak = max(self.peak, sum(_hwm_kb(p) for p in {*self.pids, *runtime_pids()}))
        return self.peak


class SidecarEnvironment(RuntimeEnvironment):
    proc: RuntimeContainer

    def watch(self) -> None:
        self._exited = asyncio.ensure_future(self.proc.wait())
        self._exited.add_done_callback(self._on_exit)

    def peak_kb(self) -> int:
        return self.proc.peak_kb()

    async def _crashed(self, request_id: str, duration: float) -> Outcome:
        """The runtime container's processes ended during a call."""
        self.dead = True
        self._log(self.platform.crashed(request_id, "exit status unknown", "Runtime.ExitError"))
        await self.close()
        return Outcome.failed(
            "crash", request_id, self.cfg.version, duration, self.max_memory_mb,
            "Runtime.ExitError", "Runtime exited without providing a reason",
        )  # fmt: skip

    async def kill(self, reason: str = "timeout") -> None:
        await self.close(reason)

    async def close(self, reason: str = "spindown") -> None:
        """Kill the runtime container's processes (the kubelet starts it again); the
        listener stays for the next one."""
        self.dead = True
        if self.proc.returncode is None:
            self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), 5)
        if self.exit_status is None:
            self.exit_status = self.proc.returncode


async def spawn(
    cfg: FunctionConfig, logs: LogHub, api: RuntimeApi, *, provisioned: bool = False
) -> SidecarEnvironment:
    """The environment of the runtime container that asks `api` for its next invocation;
    its init ends there (InitFailed on `/runtime/init/error`, or when no runtime has asked
    within Lambda's init limit after the container could have started)."""
    stream = stream_name(cfg.version)
    initialization = "provisioned-concurrency" if provisioned else "on-demand"
    platform = platform_of(cfg.log_format, cfg.system_log_level)
    first_line = platform.init_start(
        cfg.runtime, cfg.arn, cfg.function, cfg.version, initialization
    )
    if first_line is not None:
        logs.write(cfg.function, stream, first_line)
    t0 = time.perf_counter()
    api.renew()
    ready = asyncio.ensure_future(api.ready.wait())
    limit = CONTAINER_START_S + max(INIT_TIMEOUT_S, cfg.timeout_s)
    try:
        starts: list[asyncio.Future[Any]] = [ready, api.init_error]
        await asyncio.wait(starts, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    pids = runtime_pids()
    # the runtime process's start, on the clock of `ready_at` (None: not seen)
    age = age_s(pids[0]) if pids else None
    now = time.perf_counter()
    started = None if age is None else now - age
    if not api.ready.is_set():
        if api.init_error.done():
            body = json.loads(api.init_error.result().body)
        else:
            body = {
                "errorMessage": f"Runtime did not ask for an invocation within {limit:.0f} s",
                "errorType": "Runtime.ExitError",
            }
        RuntimeContainer(pids).kill()
        init_ms = (now - (t0 if started is None else started)) * 1000
        raise InitFailed(json.dumps(body).encode(), init_ms, str(body["errorType"]), stream)
    env = SidecarEnvironment(
        cfg, RuntimeContainer(pids), api, stream, logs, None, platform=platform,
        provisioned=provisioned,
    )  # fmt: skip
    # init: from the runtime process's start to its first `.next`, which may have come
    # before this call (the runtime starts with its container, not with a call)
    began = t0 if started is None or started > api.ready_at else started
    env.init_ms = max(0.0, api.ready_at - began) * 1000
    env.max_memory_mb = math.ceil(env.peak_kb() / 1024)
    env.watch()
    return env
