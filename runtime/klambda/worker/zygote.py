"""The worker's side of a zygote: start it, ask it for environments, learn how they end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import klambda
from klambda.api.limits import MEMORY_MAX_MB
from klambda.worker.cgroups import Cgroups, EnvironmentCgroup
from klambda.worker.sandbox import Sandbox

# the folder holding the `klambda` package, for interpreters outside this one's venv
PACKAGE_ROOT = str(Path(klambda.__file__).resolve().parent.parent)


class ZygoteError(RuntimeError):
    pass


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@dataclass
class Spare:
    """A forked process already in its cgroup, waiting for the spec it will run."""

    pid: int
    sock: socket.socket
    cgroup: EnvironmentCgroup | None


class Zygote:
    """One warm interpreter of one runtime, forking environments on request."""

    def __init__(
        self,
        python: str = sys.executable,
        preload: tuple[str, ...] = (),
        cgroups: Cgroups | None = None,
        spares: int = 1,
        sandbox: Sandbox | None = None,
        mergeable: bool = False,
        room: Callable[[], int] | None = None,
    ) -> None:
        """`room`: how many more environments its owner may start now (None: no limit). A
        spare is made only while there is room for it: a worker that runs one environment
        at a time keeps none beside it (forking and rehearsing one costs ~5 ms of CPU,
        which a burst of cold starts on the node would pay in its slowest calls), and
        forks the next environment directly if that one dies."""
        self.python = python
        self.room = room
        self.preload = preload
        # environments' pages marked for the kernel's same-page merging, which merges them
        # only where the host runs it (klambda.environment.zygote.mark_mergeable). Local
        # mode asks (RouterSettings.memory_merge); a worker pod does not: it runs one
        # environment, whose pages share little with other pods' zygotes, and the mark
        # would cost its start ~1.5 ms of CPU (ctypes) under the function's CPU share.
        self.mergeable = mergeable
        self.cgroups = cgroups
        # sandboxes environments when the worker runs as root (a uid per function)
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self.spares_wanted = spares
        self.spares: list[Spare] = []
        # the memory limit of the next spare's cgroup: the size of the function that took
        # the last one (at first Lambda's largest), so that taking it rarely changes it
        self.spare_memory_mb = MEMORY_MAX_MB
        self._making: asyncio.Task[None] | None = None
        self._restarting = asyncio.Lock()
        self._sending = asyncio.Lock()  # one request at a time into the control socket
        self._proc: asyncio.subprocess.Process | None = None
        self._ctl: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._spawning: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}

    async def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        if self.python != sys.executable:
            env["PYTHONPATH"] = PACKAGE_ROOT
        await self.sandbox.probe(self.python, env)
        preload = self.preload
        if self.sandboxed:  # what every environment then enters, imported once in the zygote
            preload = (*preload, "klambda.environment.sandbox")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "klambda.environment.zygote",
                str(child.fileno()),
                *(["--mergeable"] if self.mergeable else []),
                *preload,
                pass_fds=[child.fileno()],
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            child.close()
        parent.setblocking(False)
        self._ctl = parent
        self._reader = asyncio.create_task(self._read_loop(), name="zygote-reader")
        self.replenish()

    @property
    def alive(self) -> bool:
        return (
            self._proc is not None
            and self._proc.returncode is None
            and self._reader is not None
            and not self._reader.done()
        )

    async def ensure_running(self) -> None:
        """Start the zygote again if it died (its environments died with their sockets)."""
        async with self._restarting:
            if self.alive:
                return
            await self.stop()
            self._spawning.clear()
            await self.start()

    def take_spare(self) -> Spare | None:
        """A spare to turn into an environment. The caller calls `replenish` once the cold
        start is over: forking the next spare and moving it into its cgroup would take
        the router's loop and a core from the cold start (~0.5 ms of it on two cores)."""
        return self.spares.pop() if self.spares else None

    def _wanted(self) -> int:
        if self.room is None:
            return self.spares_wanted
        return min(self.spares_wanted, max(0, self.room()))

    def replenish(self) -> None:
        if len(self.spares) < self._wanted() and (self._making is None or self._making.done()):
            self._making = asyncio.create_task(self._make_spares(), name="zygote-spares")

    async def _make_spares(self) -> None:
        while len(self.spares) < self._wanted():
            cgroup = None
            if self.cgroups is not None:
                # set to the function's size when taken, if it is another
                name = f"spare-{uuid.uuid4().hex[:12]}"
                cgroup = self.cgroups.create(name, self.spare_memory_mb)
            spare_id = uuid.uuid4().hex
            procs = cgroup.procs_files if cgroup else []
            try:
                spec = {"spare": spare_id, "cgroup_procs": procs, "isolate": self.sandboxed}
                pid, sock = await self._fork(spec)
            except (ZygoteError, OSError):
                if cgroup is not None:
                    cgroup.remove()
                # the zygote died: the next cold start starts it again (ensure_running)
                return
            self.spares.append(Spare(pid, sock, cgroup))

    async def _read_loop(self) -> None:
        assert self._ctl is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg = await loop.sock_recv(self._ctl, 65536)
            except OSError:
                msg = b""
            if not msg:
                break
            note: dict[str, Any] = json.loads(msg)
            if "spawned" in note:
                fut = self._spawning.pop(note["spawned"], None)
                if fut is not None and not fut.done():
                    fut.set_result(note["pid"])
            elif "exited" in note:
                exit_fut = self._exits.get(note["exited"])
                if exit_fut is None:
                    exit_fut = self._exits[note["exited"]] = loop.create_future()
                if not exit_fut.done():
                    exit_fut.set_result(note["status"])
        for fut in self._spawning.values():
            if not fut.done():
                fut.set_exception(ZygoteError("the zygote exited"))

    @property
    def sandboxed(self) -> bool:
        """Whether this zygote's environments run sandboxed (klambda.worker.sandbox)."""
        return self.sandbox.usable(self.python)

    async def spawn(self, spec: dict[str, Any]) -> tuple[int, socket.socket]:
        """Fork an environment; its pid and our end of its socket."""
        return await self._fork(spec)

    async def _fork(self, spec: dict[str, Any]) -> tuple[int, socket.socket]:
        if self._ctl is None or self._reader is None or self._reader.done():
            raise ZygoteError("the zygote is not running")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        key = spec.get("spare") or spec["id"]
        self._spawning[key] = fut
        try:
            await self._send(json.dumps(spec).encode(), theirs.fileno())
        except BaseException:
            self._spawning.pop(key, None)
            ours.close()
            raise
        finally:
            theirs.close()
        pid = await fut
        return pid, ours

    async def _send(self, msg: bytes, fd: int) -> None:
        """One request to the zygote, waiting while its socket is full: in a burst the
        router asks for environments faster than the zygote forks them."""
        ctl = self._ctl
        assert ctl is not None
        async with self._sending:
            while True:
                try:
                    socket.send_fds(ctl, [msg], [fd])
                    return
                except BlockingIOError:
                    reader = self._reader
                    if reader is None or reader.done() or ctl.fileno() < 0:
                        raise ZygoteError("the zygote is not running") from None
                    loop = asyncio.get_running_loop()
                    writable: asyncio.Future[None] = loop.create_future()
                    loop.add_writer(ctl.fileno(), _resolve, writable)
                    try:  # writable again, or the zygote gone
                        await asyncio.wait((writable, reader), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        if ctl.fileno() >= 0:
                            loop.remove_writer(ctl.fileno())
                        writable.cancel()

    async def exit_status(self, pid: int, wait: float = 1.0) -> int | None:
        """The wait status of an environment that has ended (None if not known in time)."""
        fut = self._exits.get(pid)
        if fut is None:
            fut = self._exits[pid] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), wait)
        except TimeoutError:
            return None
        finally:
            if fut.done():
                self._exits.pop(pid, None)

    async def stop(self) -> None:
        if self._making is not None:
            self._making.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._making
        for spare in self.spares:
            spare.sock.close()  # the spare reads EOF and exits
        spares, self.spares = self.spares, []
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for spare in spares:
            if spare.cgroup is not None:
                spare.cgroup.remove()
