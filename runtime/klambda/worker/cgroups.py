"""Memory and CPU limits of execution environments through Linux cgroups.

Lambda enforces an environment's memory size and gives it CPU in proportion (1,769 MB =
one vCPU). Where this process may create cgroups (v1 `memory`/`cpu` hierarchies, or a v2
subtree with those controllers delegated) each environment gets its own cgroup under
`klambda-<pid>` below ours. Elsewhere `available()` is False and the worker falls back to
RLIMIT_AS for memory and no CPU limit: the docs say so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from klambda.api.limits import MB_PER_VCPU

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


@dataclass
class EnvironmentCgroup:
    """The cgroup directories of one environment (one per v1 hierarchy, or one in v2)."""

    memory_dir: Path
    cpu_dir: Path | None
    v2: bool

    @property
    def procs_files(self) -> list[str]:
        dirs = {self.memory_dir} | ({self.cpu_dir} if self.cpu_dir else set())
        return [str(d / "cgroup.procs") for d in dirs]

    def set_memory(self, memory_mb: int) -> None:
        limit = str(memory_mb * 1024 * 1024)
        name = "memory.max" if self.v2 else "memory.limit_in_bytes"
        (self.memory_dir / name).write_text(limit)

    def set_cpu(self, memory_mb: int) -> None:
        """CPU in proportion to memory: quota/period = memory / 1,769 MB."""
        if self.cpu_dir is None:
            return
        quota = max(1000, CPU_PERIOD_US * memory_mb // MB_PER_VCPU)
        if self.v2:
            (self.cpu_dir / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        else:
            (self.cpu_dir / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
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

    def remove(self) -> None:
        for d in {self.memory_dir, self.cpu_dir}:
            if d is not None:
                with contextlib.suppress(OSError):
                    d.rmdir()


class Cgroups:
    """Creates and removes environment cgroups; `available` says whether it can."""

    def __init__(self, enabled: bool = True) -> None:
        self.v2 = False
        self.memory_parent: Path | None = None
        self.cpu_parent: Path | None = None
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
                return EnvironmentCgroup(mdir, mdir, True)
            (mdir / "memory.limit_in_bytes").write_text(str(limit))
            with contextlib.suppress(OSError):
                (mdir / "memory.swappiness").write_text("0")
            cdir = None
            if self.cpu_parent is not None:
                cdir = self.cpu_parent / env_id
                try:
                    cdir.mkdir()
                except OSError:
                    cdir = None
            return EnvironmentCgroup(mdir, cdir, False)
        except OSError:
            return None

    def close(self) -> None:
        for parent in {self.memory_parent, self.cpu_parent}:
            if parent is None:
                continue
            for child in parent.iterdir() if parent.is_dir() else ():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()
