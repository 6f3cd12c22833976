"""What tests and benchmarks need to run klambda for real: a router in its own process,
free loopback ports, and waiting for a condition without guessing how long it takes.

In the spirit of `kopf.testing`: the runner starts the real command line (`klambda up`,
or `klambda router` for cluster mode) on free ports, waits until it answers `/healthz`
and stops it when the `with` block ends::

    with RouterRunner.up(Path("functions"), "-q", workdir=tmp) as router:
        status, headers, body = router.invoke("hello", {"name": "Ada"})
        eventually(lambda: router.metric("klambda_invocations_total") == 1, "one invocation")

Why `eventually` and not a sleep: a fixed sleep is either too short on two busy cores
(the test flakes) or too long everywhere else (the suite crawls). `eventually` polls a
check until it holds and, when the time is up, fails with what it waited for and the
last value or exception the check gave, which is what the reader of a failure needs.

Nothing here is imported by klambda itself (an import-linter contract says so); it needs
the standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

__all__ = [
    "CLI",
    "RouterRunner",
    "StopWaiting",
    "accepts_tcp",
    "answers_http",
    "children",
    "cmdline",
    "eventually",
    "eventually_async",
    "free_port",
    "still_running",
]

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
CLI: tuple[str, ...] = (sys.executable, "-m", "klambda.cli.main")
"""The `klambda` command line, run by this interpreter (the console script may be absent)."""

_SHOWN = 2000  # characters of the last value or exception kept in a failure message


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` now (the kernel's pick; it may be taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class StopWaiting(Exception):
    """Raised by a check to end `eventually` at once: what it waits for cannot come (the
    process that would provide it has exited). `eventually` fails with this message."""


class _Attempts:
    """The bookkeeping shared by `eventually` and `eventually_async`."""

    def __init__(self, what: str, timeout: float, interval: float) -> None:
        if timeout < 0 or interval < 0:
            raise ValueError(f"timeout and interval must be >= 0, not {timeout}, {interval}")
        self.what = what
        self.timeout = timeout
        self.interval = interval
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.value: object = None
        self.error: Exception | None = None
        self.tried = 0

    def record(self, value: object, error: Exception | None) -> None:
        self.tried += 1
        self.value, self.error = value, error

    def pause(self) -> float | None:
        """Seconds to wait before the next try, or None when the time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        return min(self.interval, left)

    def gave_up(self, reason: StopWaiting) -> AssertionError:
        waited = time.monotonic() - self.started
        return AssertionError(f"gave up waiting for {self.what} after {waited:.1f}s: {reason}")

    def timed_out(self) -> AssertionError:
        if self.error is not None:
            last = f"last exception: {type(self.error).__name__}: {self.error}"
        else:
            last = f"last value: {self.value!r}"
        if len(last) > _SHOWN:
            last = last[:_SHOWN] + " [...]"
        return AssertionError(
            f"timed out after {self.timeout:g}s waiting for {self.what} "
            f"({self.tried} tries); {last}"
        )


def eventually(
    check: Callable[[], T], what: str, *, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call `check` every `interval` seconds until it returns something truthy, and return
    that. An exception from `check` counts as "not yet" (a check may assert); `StopWaiting`
    ends the wait at once. After `timeout` seconds, raise AssertionError naming `what`
    ("the DLQ to hold one event") and the last value or exception seen.

    A check written with asserts must return something truthy (`True`) when it passes."""
    attempts = _Attempts(what, timeout, interval)
    while True:
        try:
            value = check()
        except StopWaiting as stop:
            raise attempts.gave_up(stop) from stop
        except Exception as err:
            attempts.record(None, err)
        else:
            if value:
                return value
            attempts.record(value, None)
        pause = attempts.pause()
        if pause is None:
            raise attempts.timed_out() from attempts.error
        time.sleep(pause)


async def eventually_async(
    check: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - the wait's own deadline; checks are not cut short
    interval: float = 0.05,
) -> T:
    """`eventually` for asyncio code: `check` may be a coroutine function or a plain one,
    and the waits between tries let the event loop run."""
    attempts = _Attempts(what, timeout, interval)
    while True:
        try:
            got = check()
            value = cast(T, await got) if inspect.isawaitable(got) else got
        except StopWaiting as stop:
            raise attempts.gave_up(stop) from stop
        except Exception as err:
            attempts.record(None, err)
        else:
            if value:
                return value
            attempts.record(value, None)
        pause = attempts.pause()
        if pause is None:
            raise attempts.timed_out() from attempts.error
        await asyncio.sleep(pause)


def still_running(proc: subprocess.Popen[Any], log: Path | None = None) -> bool:
    """True while `proc` runs; once it has exited, raise `StopWaiting` with its exit code
    and its log, so that a check written as `still_running(p) and ready()` fails fast."""
    code = proc.poll()
    if code is None:
        return True
    output = _tail(log) if log is not None else ""
    raise StopWaiting(f"{_name(proc)} exited with {code}" + (f":\n{output}" if output else ""))


def answers_http(url: str, timeout: float = 1.0) -> bool:
    """True if a GET of `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False


def accepts_tcp(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if a TCP connection to `host:port` is accepted."""
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False


def _name(proc: subprocess.Popen[Any]) -> str:
    args = proc.args
    if isinstance(args, (list, tuple)):
        return " ".join(os.fspath(a) if not isinstance(a, bytes) else a.decode() for a in args)
    return str(args)


def _tail(path: Path, lines: int = 100) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def children(pid: int) -> list[int]:
    """The child processes of `pid` (of all its threads), from /proc."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out.extend(int(x) for x in (task / "children").read_text().split())
    return out


def cmdline(pid: int) -> str:
    """The command line of `pid`, arguments joined by spaces ('' if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class RouterRunner(contextlib.AbstractContextManager["RouterRunner"]):
    """A klambda router in its own process, for the duration of a `with` block.

    `args` are the `klambda` command and its options without the ports: the runner picks
    two free loopback ports and adds `--http-port` and `--grpc-port`. Entering starts the
    process (its output goes to `workdir/router-PORT.log`) and waits until `/healthz`
    answers, failing with the log if the process exits first; leaving stops it (SIGTERM,
    then SIGKILL after `stop_timeout`). `RouterRunner.up(...)` runs local mode.
    """

    def __init__(
        self,
        *args: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        state: Path | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.args = args
        self.workdir = workdir
        self.env = dict(env or {})
        self.cwd = cwd
        self.state = state
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.log = workdir / f"router-{self.http_port}.log"
        self.url = f"http://{LOOPBACK}:{self.http_port}"
        self.grpc_target = f"{LOOPBACK}:{self.grpc_port}"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def up(
        cls,
        functions: Path,
        *args: str,
        workdir: Path,
        state: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> Self:
        """`klambda up FUNCTIONS --state STATE ARGS...`; STATE is `workdir/state` unless
        given, so a second runner on the same `workdir` finds the first one's state."""
        state = state or workdir / "state"
        return cls(
            "up",
            str(functions),
            "--state",
            str(state),
            *args,
            workdir=workdir,
            env=env,
            cwd=cwd,
            state=state,
            startup_timeout=startup_timeout,
            stop_timeout=stop_timeout,
        )

    # -- the process --------------------------------------------------------------------

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("the router is not started: use `with runner:`")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> None:
        argv = [*CLI, *self.args, "--http-port", str(self.http_port)]
        argv += ["--grpc-port", str(self.grpc_port)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
            )
        try:
            eventually(
                lambda: still_running(self.proc, self.log) and answers_http(self.url + "/healthz"),
                f"klambda {self.args[0] if self.args else ''} to answer {self.url}/healthz",
                timeout=self.startup_timeout,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `stop_timeout`. Idempotent."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def output(self) -> str:
        """Everything the router has written to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def zygotes(self) -> list[int]:
        """The router's zygote processes (the forks that environments start from)."""
        return [p for p in children(self.pid) if "klambda.environment.zygote" in cmdline(p)]

    def environments(self) -> list[int]:
        """The children of the router's zygotes: its live execution environments, and the
        spare each zygote forks ahead of need."""
        return [e for z in self.zygotes() for e in children(z)]

    # -- the router's HTTP API ----------------------------------------------------------

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def invoke(
        self, name: str, payload: Any = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Lambda's REST Invoke: (HTTP status, headers in lower case, body)."""
        data = json.dumps({} if payload is None else payload).encode()
        req = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{name}/invocations",
            data=data,
            method="POST",
            headers=headers,
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()
