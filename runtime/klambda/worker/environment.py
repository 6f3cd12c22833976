"""An execution environment seen from the worker: spawn it, invoke it, recycle it.

The worker writes the platform's log lines around each invocation (START, END, REPORT),
enforces the timeout by killing the process, and turns a process that died into Lambda's
error types. One request at a time: `busy` is set for the length of an invoke.

Killing or recycling an environment kills everything it started: its cgroup's every
process where it has cgroups, else its process group (which a process may leave with
setsid: only cgroups or the router's stop, which kills the sandbox uids, catch those).
An environment that died while idle (killed from outside) is noticed by `alive()` before
it is handed a request, and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from klambda import logformat
from klambda.environment import protocol
from klambda.execution import FunctionConfig, environment_variables, python_paths, stream_name
from klambda.invocation import Outcome, StreamSink
from klambda.worker import identity
from klambda.worker.cgroups import Cgroups, EnvironmentCgroup, container_oom_kills
from klambda.worker.logs import LogHub
from klambda.worker.sandbox import OPT, TASK_ROOT
from klambda.worker.zygote import Spare, Zygote

# Lambda's tail of logs returned with LogType=Tail
LOG_TAIL_BYTES = 4096
# Lambda's limit on the init phase of an on-demand environment
INIT_TIMEOUT_S = 10
# in /proc/PID/stat: PF_EXITING in `flags`, and SIGKILL among the pending signals
PF_EXITING = 0x4
SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


class InitFailed(Exception):
    """The environment's init failed; `body` is Lambda's error JSON."""

    def __init__(self, body: bytes, init_ms: float, error_type: str, stream: str) -> None:
        super().__init__(error_type)
        self.body = body
        self.init_ms = init_ms
        self.error_type = error_type
        self.stream = stream


@dataclass(eq=False)
class Environment:
    cfg: FunctionConfig
    pid: int
    stream: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    zygote: Zygote
    logs: LogHub
    cgroup: EnvironmentCgroup | None
    init_ms: float = 0.0
    max_memory_mb: int = 0  # the peak seen so far, for invocations that end without a report
    provisioned: bool = False
    invocations: int = 0
    last_used: float = field(default_factory=time.monotonic)
    dead: bool = False
    exit_status: int | None = None
    platform: logformat.Platform = logformat.TEXT
    _start_line: str | None = None
    _request_id: str = ""
    _phases: Mapping[str, float] | None = None
    start_ms: float = 0.0  # the environment's start besides init (fork, connection)
    _tree_killed: bool = False
    _stat_fd: int | None = None  # /proc/PID/stat, kept open: one pread per liveness check
    # with no cgroup of its own: the container's OOM kills when it started (cgroups.py)
    _oom_kills: int | None = None
    # made from the zygote's spare: have the zygote make the next one after the first
    # invocation (spawn)
    replenish_zygote: bool = False

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
        """Run one invocation; `phases` (ms) go into the REPORT line if it is the cold
        start's."""
        cfg = self.cfg
        collected: list[str] | None = [] if tail else None
        first = self.invocations == 0
        self.invocations += 1
        self._phases = phases if first else None
        deadline = time.time() + cfg.timeout_s
        meta: dict[str, Any] = {
            "id": request_id,
            "deadline": deadline,
            "arn": invoked_arn or cfg.arn,
        }
        if trace_id:
            meta["trace"] = trace_id
        if stream is not None:
            meta["stream"] = True
        started = time.perf_counter()
        self.writer.write(protocol.encode(protocol.INVOKE, meta, payload))
        self._request_id = request_id
        self._start_line = self.platform.start(request_id, cfg.version)
        try:
            # a timeout scope, not wait_for: no extra Task per invocation
            async with asyncio.timeout(cfg.timeout_s):
                kind, rmeta, body = await self._await_result(collected, stream)
        except TimeoutError:
            self._log_start(collected)
            await self.kill()
            duration = cfg.timeout_s * 1000.0
            text = self.platform.timed_out(request_id, cfg.timeout_s)
            err = {
                "errorMessage": f"RequestId: {request_id} Error: "
                + logformat.timeout_message(cfg.timeout_s),
                "errorType": "Sandbox.Timedout",
            }
            return self._finish(
                Outcome(
                    "timeout",
                    json.dumps(err).encode(),
                    request_id,
                    cfg.version,
                    duration,
                    self.max_memory_mb,
                    error_type="Sandbox.Timedout",
                ),
                first,
                collected,
                extra=text,
                status="timeout",
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            self._log_start(collected)
            duration = (time.perf_counter() - started) * 1000
            return self._finish(
                await self._crashed(request_id, duration), first, collected, status="error"
            )
        if kind == protocol.INVALID:
            self.invocations -= 1
            if self.replenish_zygote:
                self._replenish()
            return Outcome("invalid", rmeta["message"].encode(), request_id, cfg.version)
        max_mb = self.max_memory_mb = math.ceil(rmeta["max_rss_kb"] / 1024)
        if kind == protocol.RESULT:
            return self._finish(
                Outcome("ok", body, request_id, cfg.version, rmeta["duration_ms"], max_mb),
                first,
                collected,
            )
        error_type = json.loads(body).get("errorType", "Unhandled")
        return self._finish(
            Outcome(
                "error",
                body,
                request_id,
                cfg.version,
                rmeta["duration_ms"],
                max_mb,
                error_type=error_type,
            ),
            first,
            collected,
            status="error",
        )

    def _log_start(self, collected: list[str] | None) -> None:
        # START is written when the handler shows it ran (a log line or a result), so that
        # a payload refused as invalid JSON leaves no half invocation in the stream.
        if self._start_line:
            self._log(self._start_line, collected)
            self._start_line = None

    async def _await_result(
        self, collected: list[str] | None, sink: StreamSink | None = None
    ) -> tuple[int, dict[str, Any], bytes]:
        readexactly = self.reader.readexactly
        write = self.logs.write
        fn, stream, rid = self.cfg.function, self.stream, self._request_id
        while True:
            kind, mlen, blen = protocol.decode_header(await readexactly(protocol.HEADER.size))
            raw = await readexactly(mlen + blen) if mlen + blen else b""
            if kind == protocol.CHUNK:
                self._log_start(collected)
                if sink is not None:
                    if mlen:
                        ctype = protocol.decode_meta(raw[:mlen]).get("content_type", "")
                        await sink.start(ctype, self.cfg.version)
                    await sink.write(raw[mlen:])
                continue
            if kind != protocol.LOG:
                if kind != protocol.INVALID:
                    self._log_start(collected)
                return kind, protocol.decode_meta(raw[:mlen]), raw[mlen:]
            self._log_start(collected)
            text = raw[mlen:].decode("utf-8", "replace")
            write(fn, stream, text, rid)
            if collected is not None:
                collected.append(text)

    def _log(self, text: str | None, collected: list[str] | None) -> None:
        if text is None:  # dropped by the function's system log level
            return
        self.logs.write(self.cfg.function, self.stream, text, self._request_id)
        if collected is not None:
            collected.append(text)

    def _finish(
        self,
        out: Outcome,
        first: bool,
        collected: list[str] | None,
        extra: str | None = None,
        status: str | None = None,
    ) -> Outcome:
        if extra is not None:
            self._log(extra, collected)
        if self.replenish_zygote:
            self._replenish()
        phases = None
        if first and not self.provisioned:
            out.init_ms = self.init_ms
            if self._phases is not None:  # a pool pod's cold start: where its time went
                phases = {**self._phases, "environment_start": self.start_ms}
                out.phases = phases
        plat = self.platform
        self._log(plat.end(out.request_id, status or "success", out.duration_ms), collected)
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
            ),
            collected,
        )
        self.logs.dirty()
        if collected is not None:
            out.log_tail = collected
        self.last_used = time.monotonic()
        return out

    def _replenish(self) -> None:
        self.replenish_zygote = False
        self.zygote.replenish()

    async def _crashed(self, request_id: str, duration: float) -> Outcome:
        """The process died during an invoke: exit, signal, or out of memory."""
        self.dead = True
        status = self.exit_status = await self.zygote.exit_status(self.pid)
        oom = self.cgroup is not None and self.cgroup.oom_killed()
        if status is not None and os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status))
            if sig == signal.SIGKILL and not oom and self._oom_kills is not None:
                now = container_oom_kills()
                oom = now is not None and now > self._oom_kills
            name = {
                signal.SIGKILL: "killed",
                signal.SIGSEGV: "segmentation fault",
                signal.SIGABRT: "aborted",
            }.get(sig, sig.name)
            detail = f"signal: {name}"
        elif status is not None:
            code = os.waitstatus_to_exitcode(status)
            oom = oom or code == 137
            detail = f"exit status {code}"
        else:
            detail = "unknown exit"
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        if oom:
            detail = "signal: killed"
        self._log(self.platform.crashed(request_id, detail, error_type), None)
        mem = self.cfg.memory_mb if oom else self.max_memory_mb
        await self.close()
        return Outcome.failed(
            "crash", request_id, self.cfg.version, duration, mem, error_type,
            f"Runtime exited with error: {detail}",
        )  # fmt: skip

    def alive(self) -> bool:
        """Whether the process can still take a request: not exited, not dying, nothing
        killing it (a SIGKILL sent from outside shows in /proc before the process ends)."""
        if self.dead or self.reader.at_eof():
            return False
        try:
            if self._stat_fd is None:
                self._stat_fd = os.open(f"/proc/{self.pid}/stat", os.O_RDONLY)
            stat = os.pread(self._stat_fd, 1024, 0)  # ESRCH once the process is reaped
        except OSError:
            return False
        fields = stat[stat.rindex(b")") + 2 :].split()
        # fields[0] is the state, [6] the flags, [28] the pending signals
        return (
            fields[0] not in (b"Z", b"X", b"x")
            and not int(fields[6]) & PF_EXITING
            and not int(fields[28]) & SIGKILL_BIT
        )

    def _kill_tree(self) -> None:
        """SIGKILL the environment and everything it started."""
        self._tree_killed = True
        if self.cgroup is not None:
            self.cgroup.signal()  # close() waits for the exits, off the event loop
            return
        # its own process group (bootstrap.run makes it one), and itself if it is a
        # spare that never got that far
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    async def kill(self) -> None:
        self.dead = True
        self._kill_tree()
        await self.close()

    async def close(self) -> None:
        """Stop the environment and everything it started, and release its cgroup."""
        if not self._tree_killed:
            self._kill_tree()
        self.dead = True
        if self.replenish_zygote:
            self._replenish()
        if self._stat_fd is not None:
            os.close(self._stat_fd)
            self._stat_fd = None
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        if self.cgroup is not None:
            await self.cgroup.discard()
        if self.exit_status is None:
            self.exit_status = await self.zygote.exit_status(self.pid, wait=2.0)


def _sandbox(
    spec: dict[str, Any], cfg: FunctionConfig, zygote: Zygote, cgroup: EnvironmentCgroup | None
) -> None:
    """The function's uid, its code at /var/task (Lambda's task root), its layers at /opt,
    a private /tmp."""
    spec["sandbox"] = zygote.sandbox.spec(cfg, cgroup is not None and cgroup.limits_processes)
    spec["code_root"] = TASK_ROOT
    spec["env"]["LAMBDA_TASK_ROOT"] = TASK_ROOT
    if cfg.opt_root:  # the state folder is out of the function's reach: /opt is the way in
        spec["python_paths"] = [OPT + p[len(cfg.opt_root) :] for p in spec["python_paths"]]
        for name in ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH"):
            spec["env"][name] = spec["env"][name].replace(cfg.opt_root, OPT)


async def spawn(
    cfg: FunctionConfig,
    zygote: Zygote,
    logs: LogHub,
    cgroups: Cgroups,
    *,
    provisioned: bool = False,
    cpu_limits: bool = True,
) -> Environment:
    """Start an environment and run its init; InitFailed if the handler cannot load.

    From the zygote's spare when it has one. The next spare is made once this cold start
    is over (its init failed, or its first invocation ended: Environment._finish), not
    while it runs."""
    spare = zygote.take_spare()
    if spare is None:
        zygote.replenish()
        return await _start(cfg, zygote, logs, cgroups, None, provisioned, cpu_limits)
    try:
        env = await _start(cfg, zygote, logs, cgroups, spare, provisioned, cpu_limits)
    except BaseException:
        zygote.replenish()
        raise
    if provisioned:  # started ahead of traffic: no invocation follows
        zygote.replenish()
    else:
        env.replenish_zygote = True
    return env


async def _start(
    cfg: FunctionConfig,
    zygote: Zygote,
    logs: LogHub,
    cgroups: Cgroups,
    spare: Spare | None,
    provisioned: bool,
    cpu_limits: bool,
) -> Environment:
    env_id = uuid.uuid4().hex
    stream = stream_name(cfg.version)
    cgroup: EnvironmentCgroup | None
    if spare is not None:
        cgroup = spare.cgroup
        zygote.spare_memory_mb = cfg.memory_mb
        if cgroup is not None:
            cgroup.set_memory(cfg.memory_mb)
    else:
        cgroup = cgroups.create(f"env-{env_id[:12]}", cfg.memory_mb)
    spec: dict[str, Any] = {
        "id": env_id,
        "env": environment_variables(
            cfg, stream, "provisioned-concurrency" if provisioned else "on-demand"
        ),
        "code_root": cfg.code_root,
        "python_paths": python_paths(cfg.opt_root) if cfg.opt_root else [],
        "handler": cfg.handler,
        "function_name": cfg.function,
        "version": cfg.version,
        "memory_mb": cfg.memory_mb,
        "log_group": cfg.log_group,
        "log_stream": stream,
        "cgroup_procs": cgroup.procs_files if cgroup and spare is None else [],
        # without a memory cgroup: cap the address space (the size plus the interpreter's)
        "rlimit_as": None if cgroup else (cfg.memory_mb + 256) * 1024 * 1024,
    }
    if zygote.sandboxed:
        _sandbox(spec, cfg, zygote, cgroup)
    spec["env"].update(identity.credentials())  # the function's own, in a worker pod
    platform = logformat.platform(cfg.log_format, cfg.system_log_level)
    first_line = platform.init_start(
        cfg.runtime,
        cfg.arn,
        cfg.function,
        cfg.version,
        "provisioned-concurrency" if provisioned else "on-demand",
    )
    if first_line is not None:
        logs.write(cfg.function, stream, first_line)
    t0 = time.perf_counter()
    if spare is not None:
        pid, sock = spare.pid, spare.sock
        try:
            sock.sendall(protocol.encode(protocol.SPEC, spec))
        except OSError:  # the spare died (with its zygote): fork one the ordinary way
            sock.close()
            if cgroup is not None:
                cgroup.remove()
            cgroup = cgroups.create(f"env-{env_id[:12]}", cfg.memory_mb)
            spec["cgroup_procs"] = cgroup.procs_files if cgroup else []
            spec["rlimit_as"] = None if cgroup else (cfg.memory_mb + 256) * 1024 * 1024
            if zygote.sandboxed:
                _sandbox(spec, cfg, zygote, cgroup)
            pid, sock = await zygote.spawn(spec)
    else:
        pid, sock = await zygote.spawn(spec)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**24)
    env = Environment(
        cfg,
        pid,
        stream,
        reader,
        writer,
        zygote,
        logs,
        cgroup,
        provisioned=provisioned,
        platform=platform,
    )
    if cgroup is None:
        env._oom_kills = container_oom_kills()
    try:
        while True:
            # a timeout scope, not wait_for: no Task of its own for each frame
            async with asyncio.timeout(max(INIT_TIMEOUT_S, cfg.timeout_s)):
                header = await reader.readexactly(protocol.HEADER.size)
            kind, mlen, blen = protocol.decode_header(header)
            raw = await reader.readexactly(mlen + blen) if mlen + blen else b""
            if kind == protocol.LOG:
                logs.write(cfg.function, stream, raw[mlen:].decode("utf-8", "replace"))
                continue
            if kind == protocol.READY:
                ready = protocol.decode_meta(raw[:mlen])
                env.init_ms = ready["init_ms"]
                # what the environment's start took besides its init: the fork (or the
                # spare's hand-over) and its connection back
                env.start_ms = max(0.0, (time.perf_counter() - t0) * 1000 - env.init_ms)
                with contextlib.suppress(OSError):  # while it is surely this process
                    env._stat_fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
                env.max_memory_mb = math.ceil(ready["max_rss_kb"] / 1024)
                break
            body = raw[mlen:]
            error_type = json.loads(body).get("errorType", "Runtime.Unknown")
            await env.close()
            raise InitFailed(body, (time.perf_counter() - t0) * 1000, error_type, stream)
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
        await env.kill()
        err = {
            "errorMessage": f"Runtime exited during init: {exc!r}",
            "errorType": "Runtime.ExitError",
        }
        init_ms = (time.perf_counter() - t0) * 1000
        raise InitFailed(json.dumps(err).encode(), init_ms, "Runtime.ExitError", stream) from None
    if cgroup is not None and cpu_limits:
        # after init, like Lambda, which lets init run at full speed
        with contextlib.suppress(OSError):
            cgroup.set_cpu(cfg.memory_mb)
    return env
