"""An environment whose runtime speaks Lambda's Runtime API: a custom runtime's `bootstrap`
(`provided`, `provided.al2023`) or a runtime interface client such as awslambdaric.

The same contract as the forked Python environments (`klambda.worker.environment`): the
worker writes INIT_START, START, END and REPORT around each invocation, kills the process
group and recycles the environment at the timeout, turns a runtime that died into
`Runtime.ExitError` or `Runtime.OutOfMemory`, and limits memory with the environment's
cgroup (RLIMIT_AS where there is none). Only the way in differs: a process started with
AWS_LAMBDA_RUNTIME_API pointing at its own listener (`klambda.worker.runtimeapi`), whose
stdout and stderr lines are the function's log lines.

Its layers' external extensions run here too, with Lambda's lifecycle around the runtime
(`klambda.worker.extensions`): started first and registered before the runtime starts,
sent each INVOKE beside it, given their post-runtime phase before the environment takes
another call (`settling`), and sent SHUTDOWN when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from klambda import logformat
from klambda.execution import FunctionConfig, environment_variables, stream_name
from klambda.invocation import Outcome, StreamSink
from klambda.worker import container, extensionprocs
from klambda.worker import extensions as lifecycle
from klambda.worker.cgroups import Cgroups, EnvironmentCgroup, container_oom_kills
from klambda.worker.environment import INIT_TIMEOUT_S, InitFailed
from klambda.worker.extensionprocs import LINE_LIMIT, ExtensionProcess, Relay, read_lines
from klambda.worker.logs import LogHub

if TYPE_CHECKING:  # their server (aiohttp) is imported by the first environment, or prepare()
    from klambda.worker.extensionsapi import ExtensionsApi
    from klambda.worker.runtimeapi import Answer, RuntimeApi

# where Lambda looks for a custom runtime's entry point, in order (LAMBDA_TASK_ROOT, /opt)
BOOTSTRAP_NAMES = ("bootstrap",)


def prepare() -> None:
    """Import what an environment of this kind needs now: a worker whose environments all
    speak the Runtime API does so before it is ready, not in its first cold start."""
    importlib.import_module("klambda.worker.runtimeapi")


def bootstrap_path(code_root: str) -> Path | None:
    """A custom runtime's `bootstrap` in its code, or None."""
    for name in BOOTSTRAP_NAMES:
        path = Path(code_root) / name
        if path.is_file():
            return path
    return None


def bootstrap_command(path: Path) -> list[str] | None:
    """How to run `bootstrap`: itself when executable. The code store keeps a file's bytes
    and not its mode (inline code and ConfigMaps have none), so a bootstrap that lost its
    executable bit is made executable again, or else run by its `#!` line; None when it
    cannot run."""
    if not os.access(path, os.X_OK):
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | 0o111)
    if os.access(path, os.X_OK):
        return [str(path)]
    with contextlib.suppress(OSError), path.open("rb") as f:
        first = f.readline(256)
        if first.startswith(b"#!"):
            return [*first[2:].decode("utf-8", "replace").split(), str(path)]
    return None


def launcher(
    command: list[str],
    procs_files: list[str],
    address_space_kb: int | None,
    mounts: list[tuple[str, str]] | None = None,
) -> list[str]:
    """`command` behind a shell that first joins the environment's cgroup (or caps its
    address space) and then execs it: the runtime is limited from its first instruction,
    with no code run between fork and exec in the worker (a threaded process). With
    `mounts` ((host folder, path) pairs: the layers at /opt, file systems under /mnt) the
    shell runs in a mount namespace of its own; /mnt there is a fresh tmpfs, so the mount
    points made in it never appear on the host."""
    steps = [f"echo $$ > {shlex.quote(f)}" for f in procs_files]
    if address_space_kb is not None:
        steps.append(f"ulimit -v {address_space_kb}")
    if mounts and any(dst.startswith("/mnt/") for _src, dst in mounts):
        steps.append("mount -t tmpfs -o size=1m klambda-mnt /mnt || exit 70")
    for src, dst in mounts or []:
        if dst.startswith("/mnt/"):
            steps.append(f"mkdir -p {shlex.quote(dst)}")
        steps.append(f"mount --bind {shlex.quote(src)} {shlex.quote(dst)} || exit 70")
    steps.append('exec "$@"')
    shell = ["/bin/sh", "-c", "; ".join(steps), "klambda-runtime", *command]
    if mounts:
        return ["unshare", "--mount", "--propagation", "private", *shell]
    return shell


@functools.cache
def can_mount_opt() -> bool:
    """Whether an environment may get /opt and /mnt of its own: a mount namespace and bind
    mounts need root (CAP_SYS_ADMIN) and util-linux's unshare. Elsewhere /opt's places are
    given by their real paths (PATH, LD_LIBRARY_PATH, PYTHONPATH), and a function with a
    file system does not start."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or not Path("/opt").is_dir():
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "mount", "--bind", "/", "/opt"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _kill_members(cgroup: EnvironmentCgroup) -> int:
    """SIGKILL every process still in the cgroup; how many there were."""
    left = 0
    for procs in cgroup.procs_files:
        with contextlib.suppress(OSError, ValueError):
            for pid in Path(procs).read_text().split():
                left += 1
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
    return left


def _peak_kb(cgroup: EnvironmentCgroup | None, pid: int) -> int:
    """The environment's peak memory: its cgroup's, else the runtime process's high-water
    mark."""
    if cgroup is not None:
        name = "memory.peak" if cgroup.v2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((cgroup.memory_dir / name).read_text()) // 1024
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class RuntimeProcess(Protocol):
    """The runtime's process as an environment sees it: one the worker started
    (asyncio's), or the runtime container of an image function's pod (klambda.worker.sidecar)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


@dataclass(eq=False)
class RuntimeEnvironment:
    cfg: FunctionConfig
    proc: RuntimeProcess
    api: RuntimeApi
    stream: str
    logs: LogHub
    cgroup: EnvironmentCgroup | None
    platform: logformat.Platform = logformat.TEXT
    init_ms: float = 0.0
    max_memory_mb: int = 0
    provisioned: bool = False
    invocations: int = 0
    last_used: float = field(default_factory=time.monotonic)
    dead: bool = False
    exit_status: int | None = None
    _exited: asyncio.Task[int] | None = None
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _request_id: str = ""
    _collected: list[str] | None = None
    _start_line: str | None = None
    _phases: Mapping[str, float] | None = None
    container: str | None = None  # an image function's container, removed with it
    cidfile: str | None = None
    # with no cgroup of its own: the container's OOM kills when it started (cgroups.py)
    _oom_kills: int | None = None
    # its external extensions' processes (klambda.worker.extensionprocs)
    extension_procs: list[ExtensionProcess] = field(default_factory=list)
    # work that must end before the environment is reused or gone: the extensions' part
    # of the last call (Lambda's post-runtime phase), or the shutdown after a failed call;
    # the pool releases the environment when it is done (klambda.worker.pool)
    settling: asyncio.Future[None] | None = None
    _closed: asyncio.Future[None] | None = None
    _failure_logged: bool = False

    @property
    def extensions(self) -> ExtensionsApi | None:
        return self.api.extensions

    def alive(self) -> bool:
        """Whether the runtime can still take a request (its bootstrap has not exited, and
        no extension has failed)."""
        ext = self.extensions
        failed = ext is not None and ext.failure.done()
        return not self.dead and self.proc.returncode is None and not failed

    def peak_kb(self) -> int:
        if self.cidfile is not None:
            return container.peak_kb(self.cidfile)
        return _peak_kb(self.cgroup, self.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def watch(self) -> None:
        """Read the runtime's output as log lines and notice when it exits."""
        assert isinstance(self.proc, asyncio.subprocess.Process)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [
            asyncio.ensure_future(read_lines(self.proc.stdout, self.line)),
            asyncio.ensure_future(read_lines(self.proc.stderr, self.line)),
        ]
        self._exited = asyncio.ensure_future(self.proc.wait())
        self._exited.add_done_callback(self._on_exit)

    def _on_exit(self, task: asyncio.Task[int]) -> None:
        self.dead = True

    def line(self, text: str) -> None:
        """A line the runtime or an extension wrote: the current request's, if any (an
        extension writes between calls too: flushed soon, not at the next END)."""
        self._log_start()
        self._log(text)
        self.logs.dirty()

    def _log(self, text: str | None) -> None:
        if text is None:  # dropped by the function's system log level
            return
        self.logs.write(self.cfg.function, self.stream, text, self._request_id)
        if self._collected is not None:
            self._collected.append(text)

    def _log_start(self) -> None:
        if self._start_line:
            line, self._start_line = self._start_line, None
            self._log(line)

    async def _settle_output(self) -> None:
        """Let lines the runtime wrote before its answer reach the log ahead of END."""
        for _ in range(3):
            await asyncio.sleep(0)

    async def invoke(
        self,
        request_id: str,
        payload: bytes,
        *,
        invoked_arn: str | None = None,
        tail: bool = False,
        trace_id: str | None = None,
        stream: StreamSink | None = None,
        phases: Mapping[str, float] | None = None,
    ) -> Outcome:
        cfg = self.cfg
        self._collected = [] if tail else None
        first = self.invocations == 0
        self.invocations += 1
        self._phases = phases if first else None
        self._request_id = request_id
        self._start_line = self.platform.start(request_id, cfg.version)
        from klambda.worker.runtimeapi import Invocation

        inv = Invocation(
            request_id,
            payload,
            int((time.time() + cfg.timeout_s) * 1000),
            invoked_arn or cfg.arn,
            trace_id,
        )
        started = time.perf_counter()
        # the function's timeout covers the runtime and its extensions' part of the call
        deadline = asyncio.get_running_loop().time() + cfg.timeout_s
        self.api.submit(inv)
        ext = self.extensions
        if ext is not None and ext.roster.subscribed(lifecycle.INVOKE):
            # at the same time as the runtime's, as Lambda sends it
            event = lifecycle.invoke_event(request_id, inv.deadline_ms, inv.function_arn, trace_id)
            ext.send(lifecycle.INVOKE, event)
        assert self._exited is not None
        try:
            async with asyncio.timeout(cfg.timeout_s):
                ends: list[asyncio.Future[Any]] = [inv.answer, self._exited]
                if ext is not None:
                    ends.append(ext.failure)
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            self._log_start()
            self.api.forget(inv)
            await self._end(lifecycle.TIMEOUT)
            text = self.platform.timed_out(request_id, cfg.timeout_s)
            err = {
                "errorMessage": f"RequestId: {request_id} Error: "
                + logformat.timeout_message(cfg.timeout_s),
                "errorType": "Sandbox.Timedout",
            }
            out = Outcome(
                "timeout",
                json.dumps(err).encode(),
                request_id,
                cfg.version,
                cfg.timeout_s * 1000.0,
                self.max_memory_mb,
                error_type="Sandbox.Timedout",
            )
            return self._finish(out, first, extra=text, status="timeout")
        duration = (time.perf_counter() - started) * 1000
        self.api.forget(inv)
        if not inv.answer.done() and ext is not None and ext.failure.done():
            self._log_start()
            out = await self._extension_failed(request_id, duration, ext.failure.result())
            return self._finish(out, first, status="error")
        if not inv.answer.done():
            self._log_start()
            return self._finish(await self._crashed(request_id, duration), first, status="error")
        answer: Answer = inv.answer.result()
        self._log_start()
        await self._settle_output()
        self.max_memory_mb = math.ceil(self.peak_kb() / 1024)
        if ext is not None and not ext.roster.settled():
            # the caller has its answer now; the environment takes no other call until
            # every extension sent this one has asked for its next event
            self.settling = asyncio.ensure_future(self._post_runtime(ext, deadline))
        if answer.ok:
            if stream is not None:
                await stream.start("application/json", cfg.version)
                await stream.write(answer.body)
            out = Outcome("ok", answer.body, request_id, cfg.version, duration, self.max_memory_mb)
            return self._finish(out, first)
        out = Outcome(
            "error",
            answer.body,
            request_id,
            cfg.version,
            duration,
            self.max_memory_mb,
            error_type=answer.error_type,
        )
        return self._finish(out, first, status="error")

    def _finish(
        self, out: Outcome, first: bool, extra: str | None = None, status: str | None = None
    ) -> Outcome:
        if extra is not None:
            self._log(extra)
        phases = None
        if first and not self.provisioned:
            out.init_ms = self.init_ms
            phases = self._phases
        plat = self.platform
        self._log(plat.end(out.request_id, status or "success", out.duration_ms))
        self._log(
            plat.report(
                out.request_id,
                out.duration_ms,
                self.cfg.memory_mb,
                out.max_memory_mb,
                out.init_ms,
                status,
                out.error_type if status else None,
                phases,
            )
        )
        self.logs.dirty()
        if self._collected is not None:
            out.log_tail = self._collected
        self._collected = None
        self._request_id = ""
        self.last_used = time.monotonic()
        return out

    async def _end(self, reason: str) -> None:
        """End the environment after a failed call. With extensions registered the
        shutdown phase (up to 2 s) goes on after the call's outcome, in `settling`."""
        self.dead = True
        ext = self.extensions
        if ext is not None and ext.roster.registered():
            self.settling = asyncio.ensure_future(self.close(reason))
        else:
            await self.close(reason)

    async def _post_runtime(self, ext: ExtensionsApi, deadline: float) -> None:
        """Wait for the extensions to finish with the call, within the function's timeout;
        an environment whose extensions do not, or fail, or whose runtime died, ends."""
        exited = self._exited
        assert exited is not None
        settled = asyncio.ensure_future(ext.until(ext.roster.settled))
        try:
            ends: list[asyncio.Future[Any]] = [settled, ext.failure, exited]
            timeout = max(0.0, deadline - asyncio.get_running_loop().time())
            await asyncio.wait(ends, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            settled.cancel()
        if ext.failure.done():
            self._log_failure(ext.failure.result())
        elif ext.roster.settled() and not exited.done():
            return
        self.dead = True
        reason = lifecycle.TIMEOUT if self.proc.returncode is None else lifecycle.FAILURE
        await self.close(lifecycle.FAILURE if ext.failure.done() else reason)

    def _log_failure(self, failure: lifecycle.Failure) -> None:
        """The EXTENSION line of the extension that failed (once)."""
        ext = self.extensions
        found = ext.roster.named(failure.extension) if ext is not None else None
        if found is not None and not self._failure_logged:
            self._failure_logged = True
            line = self.platform.extension(
                found.name, found.state, found.events, found.error_type or failure.error_type
            )
            if line is not None:
                self._log(line)

    async def _extension_failed(
        self, request_id: str, duration: float, failure: lifecycle.Failure
    ) -> Outcome:
        """An extension crashed or reported an error before the runtime answered."""
        self._log_failure(failure)
        await self._end(lifecycle.FAILURE)
        return Outcome.failed(
            "crash", request_id, self.cfg.version, duration, self.max_memory_mb,
            failure.error_type, failure.message,
        )  # fmt: skip

    async def _crashed(self, request_id: str, duration: float) -> Outcome:
        """The runtime exited during an invoke: exit, signal, or out of memory."""
        self.dead = True
        code = await self.proc.wait()
        await self._drain()
        oom = self.cgroup is not None and self.cgroup.oom_killed()
        if code < 0:
            sig = signal.Signals(-code)
            if sig == signal.SIGKILL and not oom and self._oom_kills is not None:
                now = container_oom_kills()
                oom = now is not None and now > self._oom_kills
            name = {
                signal.SIGKILL: "killed",
                signal.SIGSEGV: "segmentation fault",
                signal.SIGABRT: "aborted",
            }.get(sig, sig.name)
            detail = f"signal: {name}"
        else:
            oom = oom or code == 137
            detail = f"exit status {code}"
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        if oom:
            detail = "signal: killed"
        self._log(self.platform.crashed(request_id, detail, error_type))
        mem = self.cfg.memory_mb if oom else self.max_memory_mb
        await self._end(lifecycle.FAILURE)
        return Outcome.failed(
            "crash", request_id, self.cfg.version, duration, mem, error_type,
            f"Runtime exited with error: {detail}",
        )  # fmt: skip

    async def _drain(self) -> None:
        """The runtime has exited: its last lines, up to a second for them."""
        if self._readers:
            await asyncio.wait(self._readers, timeout=1.0)

    async def kill(self, reason: str = lifecycle.TIMEOUT) -> None:
        """Kill the runtime now, then close (its extensions still get SHUTDOWN)."""
        self.dead = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.close(reason)

    async def close(self, reason: str = lifecycle.SPINDOWN) -> None:
        """Stop the environment, once (a second call waits for the first): with extensions
        registered, Lambda's shutdown phase first; then the runtime (its whole process
        group, and whatever else is in its cgroup), its extensions, its listener and its
        cgroup."""
        if self._closed is None:
            self._closed = asyncio.ensure_future(self._close(reason))
        await asyncio.shield(self._closed)

    async def _shutdown(self, ext: ExtensionsApi, reason: str) -> None:
        """Lambda's shutdown phase: the runtime is sent SIGTERM and given 30 % of 2 s to
        exit, then SHUTDOWN goes to the extensions that registered for it, which have the
        rest to ask for their next event or exit; the others are killed at once."""
        loop = asyncio.get_running_loop()
        end = loop.time() + lifecycle.SHUTDOWN_S
        if ext.failure.done():
            reason = lifecycle.FAILURE
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            grace = lifecycle.SHUTDOWN_S * lifecycle.RUNTIME_SHUTDOWN_SHARE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        left = max(0.0, end - loop.time())
        event = lifecycle.shutdown_event(reason, int((time.time() + left) * 1000))
        told = ext.send(lifecycle.SHUTDOWN, event)
        for p in self.extension_procs:
            if p.ext not in told:
                p.kill()

        def done() -> bool:
            return all(e.idle or e.state == lifecycle.State.EXITED for e in told)

        if told:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ext.until(done), left)

    async def _close(self, reason: str) -> None:
        self.dead = True
        ext = self.extensions
        if ext is not None:
            ext.shutting_down = True  # its extensions' exits are no crashes from now on
            if ext.failure.done():  # one failed between calls, say which
                self._log_failure(ext.failure.result())
                self.logs.dirty()
            if ext.roster.registered():
                await self._shutdown(ext, reason)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        if self.cgroup is not None:
            # what left the process group (a daemon that called setsid) is still in the
            # cgroup, holding the runtime's output pipes: it goes too
            for _ in range(40):  # killed processes leave the cgroup as they exit
                if not _kill_members(self.cgroup):
                    break
                await asyncio.sleep(0.025)
        # asyncio's wait() also waits for the output pipes; without a cgroup a daemon may
        # hold them open, so the exit status is taken as it is after a while
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), 5)
        if self.exit_status is None:
            self.exit_status = self.proc.returncode
        for task in self._readers:
            task.cancel()
        await extensionprocs.stop(self.extension_procs)
        await self.api.close()
        if self.container is not None:
            await container.remove(self.container)
            if self.cidfile is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.cidfile)
        if self.cgroup is not None:
            self.cgroup.remove()


def runtime_command(cfg: FunctionConfig) -> list[str] | None:
    """What the environment runs: the code's `bootstrap` (None if there is none)."""
    path = bootstrap_path(cfg.code_root)
    return None if path is None else bootstrap_command(path)


def _init_failed(body: dict[str, Any], t0: float, stream: str) -> InitFailed:
    init_ms = (time.perf_counter() - t0) * 1000
    return InitFailed(json.dumps(body).encode(), init_ms, str(body["errorType"]), stream)


def _extension_command(opt_mounted: str | None, path: Path) -> list[str] | None:
    """How to run an extension: as a bootstrap is run, by its /opt path when the layers
    are mounted there (`opt_mounted`: the host folder they come from)."""
    command = bootstrap_command(path)
    if command is None or opt_mounted is None:
        return command
    inside = "/opt" + str(path)[len(opt_mounted) :]
    return [inside if part == str(path) else part for part in command]


async def _first(waits: list[Awaitable[Any]], deadline: float) -> None:
    """Until one of `waits` is over, or the loop's clock reaches `deadline`."""
    futures = [asyncio.ensure_future(w) for w in waits]
    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, wait in zip(futures, waits, strict=True):
            if future is not wait:  # a task made here for a coroutine
                future.cancel()


def _extension_lines(platform: logformat.Platform, ext: ExtensionsApi) -> list[str]:
    """Lambda's EXTENSION line of each extension at the end of init."""
    failed = ext.failure.result() if ext.failure.done() else None
    lines = []
    for e in ext.roster.all():
        error_type = e.error_type
        if error_type is None and failed is not None and failed.extension == e.name:
            error_type = failed.error_type
        line = platform.extension(e.name, e.state, e.events, error_type)
        if line is not None:
            lines.append(line)
    return lines


def _extensions_not_ready(ext: ExtensionsApi, limit: float) -> dict[str, str]:
    """Init's error when an extension took too long: to register, or to ask for an event."""
    late = ext.roster.unregistered()
    what = "register"
    if not late:
        late = [e for e in ext.roster.registered() if not e.idle]
        what = "ask for an event"
    names = ", ".join(e.name for e in late)
    return {
        "errorMessage": f"Extension {names} did not {what} within {limit} s",
        "errorType": "Sandbox.Timedout",
    }


async def _abandon(
    procs: list[ExtensionProcess],
    ext: ExtensionsApi,
    api: RuntimeApi,
    cgroup: EnvironmentCgroup | None,
) -> None:
    """Undo an init that failed before its runtime was started."""
    ext.shutting_down = True
    for p in procs:
        p.kill()
    if cgroup is not None:
        for _ in range(40):
            if not _kill_members(cgroup):
                break
            await asyncio.sleep(0.025)
    await extensionprocs.stop(procs)
    await api.close()
    if cgroup is not None:
        cgroup.remove()


async def spawn(
    cfg: FunctionConfig,
    logs: LogHub,
    cgroups: Cgroups,
    *,
    provisioned: bool = False,
    cpu_limits: bool = True,
) -> RuntimeEnvironment:
    """Start a Runtime API environment as Lambda runs init: its external extensions first,
    until each has registered; then the runtime, until its first `GET .../next`; then
    until every registered extension has asked for its first event. InitFailed on
    `/runtime/init/error`, an extension's failure, an exit, or Lambda's 10 s init limit
    over all of it."""
    env_id = uuid.uuid4().hex
    stream = stream_name(cfg.version)
    initialization = "provisioned-concurrency" if provisioned else "on-demand"
    platform = logformat.platform(cfg.log_format, cfg.system_log_level)
    first_line = platform.init_start(
        cfg.runtime, cfg.arn, cfg.function, cfg.version, initialization
    )
    if first_line is not None:
        logs.write(cfg.function, stream, first_line)
    t0 = time.perf_counter()
    limit = max(INIT_TIMEOUT_S, cfg.timeout_s)
    deadline = asyncio.get_running_loop().time() + limit
    command = ["docker"] if cfg.image else runtime_command(cfg)
    if command is None:
        where = [str(Path(cfg.code_root) / name) for name in BOOTSTRAP_NAMES]
        raise _init_failed(
            {
                "errorMessage": f"Couldn't find valid bootstrap(s): {where}",
                "errorType": "Runtime.InvalidEntrypoint",
            },
            t0,
            stream,
        )
    # an image's extensions are its own /opt/extensions, which it would have to start
    paths = extensionprocs.extension_paths(cfg.opt_root) if cfg.opt_root and not cfg.image else []
    if len(paths) > lifecycle.MAX_EXTENSIONS:
        raise _init_failed(
            {
                "errorMessage": f"Extension limit ({lifecycle.MAX_EXTENSIONS}) reached",
                "errorType": lifecycle.LAUNCH_ERROR,
            },
            t0,
            stream,
        )
    from klambda.worker.extensionsapi import ExtensionsApi
    from klambda.worker.runtimeapi import RuntimeApi

    ext = ExtensionsApi(cfg.function, cfg.version, cfg.handler, cfg.account)
    api = RuntimeApi(ext)
    address = await api.start()
    env_vars = environment_variables(cfg, stream, initialization)
    env_vars["AWS_LAMBDA_RUNTIME_API"] = address
    mounts = [(host, path) for host, path in cfg.mounts]
    name = cidfile = None
    if cfg.image:
        # the engine limits the container's memory; layers and file systems are volumes
        cgroup, cap = None, None
        name = f"klambda-{cfg.function}-{env_id[:12]}"
        cidfile = str(Path(tempfile.gettempdir()) / f"{name}.cid")
        if cfg.opt_root:
            mounts.append((cfg.opt_root, "/opt"))
        command = container.run_argv(cfg, name, cidfile, env_vars, mounts)
        mounts = []
        env_vars["PATH"] = os.environ.get("PATH", env_vars["PATH"])
    else:
        cgroup = cgroups.create(f"env-{env_id[:12]}", cfg.memory_mb)
        # without a memory cgroup: cap the address space (the size plus the runtime's own)
        cap = None if cgroup else (cfg.memory_mb + 256) * 1024
    opt_mounted = None
    if cfg.opt_root and not cfg.image and can_mount_opt():
        # the layers at /opt itself, as on Lambda: the environment's variables say /opt
        mounts.append((cfg.opt_root, "/opt"))
        opt_mounted = cfg.opt_root
        for var in ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH"):
            env_vars[var] = env_vars[var].replace(cfg.opt_root, "/opt")
    procs_files = cgroup.procs_files if cgroup else []

    # the extensions' lines go to the stream until the environment exists, then through it
    def before_runtime(text: str) -> None:
        logs.write(cfg.function, stream, text)
        logs.dirty()

    relay = Relay(before_runtime)
    procs: list[ExtensionProcess] = []
    if paths:
        procs = await extensionprocs.start(
            paths,
            ext,
            command_of=functools.partial(_extension_command, opt_mounted),
            launch=lambda cmd: launcher(cmd, procs_files, cap, mounts),
            cwd=cfg.code_root or None,
            env=env_vars,
            write=relay,
        )
        # the runtime starts once every extension has registered, as on Lambda
        await _first([ext.until(ext.roster.all_registered), ext.failure], deadline)
        if ext.failure.done() or not ext.roster.all_registered():
            if ext.failure.done():
                failure = ext.failure.result()
                body = {"errorMessage": failure.message, "errorType": failure.error_type}
            else:
                body = _extensions_not_ready(ext, limit)
            for line in _extension_lines(platform, ext):
                logs.write(cfg.function, stream, line)
            await _abandon(procs, ext, api, cgroup)
            raise _init_failed(body, t0, stream)
    proc = await asyncio.create_subprocess_exec(
        *launcher(command, procs_files, cap, mounts),
        cwd=cfg.code_root or None,
        env=env_vars,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=LINE_LIMIT,
    )
    env = RuntimeEnvironment(
        cfg,
        proc,
        api,
        stream,
        logs,
        cgroup,
        platform=platform,
        provisioned=provisioned,
        container=name,
        cidfile=cidfile,
        extension_procs=procs,
    )
    relay.write = env.line
    if cgroup is None and cidfile is None:
        env._oom_kills = container_oom_kills()
    env.watch()
    exited = env._exited
    assert exited is not None
    await _first([api.ready.wait(), api.init_error, exited, ext.failure], deadline)
    if api.ready.is_set() and not ext.failure.done() and ext.roster.registered():
        # init ends when every registered extension has asked for its first event too
        await _first([ext.until(ext.roster.all_ready), ext.failure, exited], deadline)
    ready = api.ready.is_set() and ext.roster.all_ready()
    if ext.failure.done() or api.init_error.done() or not ready:
        if ext.failure.done():
            failure = ext.failure.result()
            body = {"errorMessage": failure.message, "errorType": failure.error_type}
        elif api.init_error.done():
            answer = api.init_error.result()
            body = json.loads(answer.body)
        elif exited.done():
            await env._drain()
            body = {
                "errorMessage": "Runtime exited without providing a reason",
                "errorType": "Runtime.ExitError",
            }
        elif not api.ready.is_set():
            body = {
                "errorMessage": f"Runtime did not ask for an invocation within {limit} s",
                "errorType": "Runtime.ExitError",
            }
        else:
            body = _extensions_not_ready(ext, limit)
        for line in _extension_lines(platform, ext):
            logs.write(cfg.function, stream, line)
        env._failure_logged = True
        await env.kill(lifecycle.FAILURE)
        raise _init_failed(body, t0, stream)
    for line in _extension_lines(platform, ext):
        logs.write(cfg.function, stream, line)
    env.init_ms = (time.perf_counter() - t0) * 1000
    env.max_memory_mb = math.ceil(env.peak_kb() / 1024)
    if cgroup is not None and cpu_limits:
        with contextlib.suppress(OSError):
            cgroup.set_cpu(cfg.memory_mb)
    return env
