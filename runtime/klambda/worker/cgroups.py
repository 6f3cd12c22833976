"""Memory, CPU and process limits of execution environments through Linux cgroups, and
killing an environment's whole process tree.

Lambda enforces an environment's memory size, gives it CPU in proportion (1,769 MB = one
vCPU) and allows it 1,024 processes and threads. Where this process may create cgroups
(v1 `memory`/`cpu`/`pids` hierarchies, or a v2 subtree with those controllers delegated)
each environment gets its own cgroup under `klambda-<pid>` below ours. Elsewhere
`available()` is False and the worker falls back to RLIMIT_AS for memory, no CPU limit,
RLIMIT_NPROC where environments have their own uid, and killing by process group: the
docs say so.

Everything an environment starts stays in its cgroup, whatever it does with sessions and
process groups, so `kill()` ends all of it: `cgroup.kill` on v2 (Linux 5.14+), else
SIGKILL to every process listed in `cgroup.procs` until none is left (a process killed
cannot fork again, so the list shrinks to nothing even under a fork bomb, whose size the
pids limit bounds anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from klambda.api.limits import MB_PER_VCPU, PROCESS_LIMIT

ROOT = Path("/sys/fs/cgroup")
# A short period keeps the quota proportional for short invocations (CFS needs >= 1 ms).
CPU_PERIOD_US = 20_000


def _own_path(controller: str) -> str | None:
    """Our cgroup path in a v1 hierarchy (`controller`) or v2 (`""`)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "" and _id == "0"):
            return path
    return None


def container_oom_kills() -> int | None:
    """How many processes the kernel's OOM killer has killed in the memory cgroup this
    process is in (in a pod: its container's), None where that is not readable. A worker
    with no cgroup per environment (a pod's, non-root) compares it before and after an
    environment dies of SIGKILL to tell Lambda's Runtime.OutOfMemory from an exit."""
    for path, key in (
        (ROOT / "memory.events", "oom_kill"),  # v2 (a container sees its own at the root)
        (ROOT / "memory" / "memory.oom_control", "oom_kill"),  # v1: its own, bind-mounted
    ):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    return None


def remove_stale(folder: Path) -> list[str]:
    """Remove `klambda-<pid>` cgroups whose process is gone (a router killed with -9 leaves
    them behind); busy or foreign ones are left. The names removed."""
    removed = []
    for parent in folder.glob("klambda-*"):
        pid = parent.name.removeprefix("klambda-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for child in parent.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()
            removed.append(parent.name)
    return removed


def signal_members(folder: Path) -> bool:
    """SIGKILL every process in the cgroup `folder` once, without waiting; whether it was
    already empty (or gone)."""
    kill = folder / "cgroup.kill"
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
    try:
        pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return True  # gone
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return not pids


def kill_members(folder: Path, rounds: int = 1000) -> bool:
    """SIGKILL every process in the cgroup `folder` until it is empty; whether it is."""
    for _ in range(rounds):
        if signal_members(folder):
            return True
        time.sleep(0.0005)
    return False


def remove_dir(folder: Path, wait_s: float = 2.0) -> bool:
    """rmdir a cgroup whose processes were killed: it is busy until they have exited."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            kill_members(folder, rounds=10)
            time.sleep(0.001)


@dataclass
class EnvironmentCgroup:
    """The cgroup directories of one environment (one per v1 hierarchy, or one in v2)."""

    memory_dir: Path
    cpu_dir: Path | None
    v2: bool
    pids_dir: Path | None = None
    memory_mb: int = 0  # the memory limit written last

    @property
    def dirs(self) -> list[Path]:
        return list(dict.fromkeys(d for d in (self.memory_dir, self.cpu_dir, self.pids_dir) if d))

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    @property
    def limits_processes(self) -> bool:
        return self.pids_dir is not None

    def set_memory(self, memory_mb: int) -> None:
        """The memory limit, written only if it is not already the one in force (a spare's
        cgroup is made at the size of the function that took the last spare)."""
        if memory_mb == self.memory_mb:
            return
        limit = str(memory_mb * 1024 * 1024)
        name = "memory.max" if self.v2 else "memory.limit_in_bytes"
        (self.memory_dir / name).write_text(limit)
        self.memory_mb = memory_mb

    def set_cpu(self, memory_mb: int) -> None:
        """CPU in proportion to memory: quota/period = memory / 1,769 MB (on v1 the period
        was written when the cgroup was made, with no quota yet)."""
        if self.cpu_dir is None:
            return
        quota = max(1000, CPU_PERIOD_US * memory_mb // MB_PER_VCPU)
        if self.v2:
            (self.cpu_dir / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        else:
            (self.cpu_dir / "cpu.cfs_quota_us").write_text(str(quota))

    def oom_killed(self) -> bool:
        try:
            if self.v2:
                events = (self.memory_dir / "memory.events").read_text()
                return any(
                    line.split()[0] == "oom_kill" and int(line.split()[1]) > 0
                    for line in events.splitlines()
                )
            return int((self.memory_dir / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError, IndexError):
            return False

    def kill(self) -> None:
        """SIGKILL every process of the environment, however it was started, and wait
        until they have exited (blocking: not on an event loop, see `signal`)."""
        for d in self.dirs:
            kill_members(d)

    def signal(self) -> None:
        """SIGKILL every process of the environment and return at once: `discard()`
        waits for them to exit without blocking an event loop (a killed process can take
        hundreds of milliseconds to exit under a small CPU quota)."""
        for d in self.dirs:
            signal_members(d)

    def remove(self, wait_s: float = 2.0) -> None:
        """Kill what is left in it and remove it."""
        self.kill()
        for d in self.dirs:
            remove_dir(d, wait_s)

    async def discard(self, wait_s: float = 5.0) -> bool:
        """`remove()` without blocking the event loop while the processes exit."""
        deadline = time.monotonic() + wait_s
        for d in self.dirs:
            while True:
                if signal_members(d):
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        pass  # killed, not yet exited
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.005)
        return True


class Cgroups:
    """Creates and removes environment cgroups; `available` says whether it can."""

    def __init__(self, enabled: bool = True) -> None:
        self.v2 = False
        self.memory_parent: Path | None = None
        self.cpu_parent: Path | None = None
        self.pids_parent: Path | None = None
        if enabled:
            self._setup()

    @property
    def available(self) -> bool:
        return self.memory_parent is not None

    def _setup(self) -> None:
        name = f"klambda-{os.getpid()}"
        mem = _own_path("memory")
        if mem is not None and (ROOT / "memory").is_dir():
            parent = ROOT / "memory" / mem.lstrip("/") / name
            try:
                parent.mkdir(exist_ok=True)
                (parent / "memory.limit_in_bytes").read_text()
            except OSError:
                return
            self.memory_parent = parent
            remove_stale(parent.parent)
            cpu = _own_path("cpu")
            if cpu is not None and (ROOT / "cpu").is_dir():
                cpu_parent = ROOT / "cpu" / cpu.lstrip("/") / name
                remove_stale(cpu_parent.parent)
                with contextlib.suppress(OSError):
                    cpu_parent.mkdir(exist_ok=True)
                    self.cpu_parent = cpu_parent
            pids = _own_path("pids")
            if pids is not None and (ROOT / "pids").is_dir():
                pids_parent = ROOT / "pids" / pids.lstrip("/") / name
                remove_stale(pids_parent.parent)
                with contextlib.suppress(OSError):
                    pids_parent.mkdir(exist_ok=True)
                    self.pids_parent = pids_parent
            return
        own = _own_path("")
        if own is None or not (ROOT / "cgroup.controllers").exists():
            return
        # v2: our own cgroup holds processes, so delegate from a child of it.
        parent = ROOT / own.lstrip("/") / name
        try:
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+memory +cpu")
        except OSError:
            with contextlib.suppress(OSError):
                parent.rmdir()
            return
        self.v2 = True
        self.memory_parent = self.cpu_parent = parent
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text("+pids")
            self.pids_parent = parent

    def create(self, env_id: str, memory_mb: int) -> EnvironmentCgroup | None:
        if self.memory_parent is None:
            return None
        try:
            mdir = self.memory_parent / env_id
            mdir.mkdir()
            limit = memory_mb * 1024 * 1024
            if self.v2:
                (mdir / "memory.max").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (mdir / "memory.swap.max").write_text("0")
                pdir = None
                if self.pids_parent is not None:
                    with contextlib.suppress(OSError):
                        (mdir / "pids.max").write_text(str(PROCESS_LIMIT))
                        pdir = mdir
                return EnvironmentCgroup(mdir, mdir, True, pdir, memory_mb)
            (mdir / "memory.limit_in_bytes").write_text(str(limit))
            with contextlib.suppress(OSError):
                (mdir / "memory.swappiness").write_text("0")
            cdir = None
            if self.cpu_parent is not None:
                cdir = self.cpu_parent / env_id
                try:
                    cdir.mkdir()
                    # the period now, the quota after init (set_cpu): one write less then
                    (cdir / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                except OSError:
                    with contextlib.suppress(OSError):
                        cdir.rmdir()
                    cdir = None
            pdir = None
            if self.pids_parent is not None:
                pdir = self.pids_parent / env_id
                try:
                    pdir.mkdir()
                    (pdir / "pids.max").write_text(str(PROCESS_LIMIT))
                except OSError:
                    with contextlib.suppress(OSError):
                        pdir.rmdir()
                    pdir = None
            return EnvironmentCgroup(mdir, cdir, False, pdir, memory_mb)
        except OSError:
            return None

    def close(self) -> None:
        """Kill every environment's processes still running and remove every cgroup."""
        parents = [p for p in (self.memory_parent, self.cpu_parent, self.pids_parent) if p]
        for parent in dict.fromkeys(parents):
            children = [c for c in parent.iterdir() if c.is_dir()] if parent.is_dir() else []
            for child in children:
                kill_members(child)
            for child in children:
                remove_dir(child)
            remove_dir(parent)
