"""Each function's environments as their own unprivileged uid, when the worker is root.

Lambda runs every function in its own microVM; klambda's environments are processes, so
when the worker runs as root (local mode as root, a worker pod allowed to) it keeps
functions apart with Linux's own means (klambda.environment.sandbox does the entering):

- a stable uid per function, from FIRST_UID up, kept in a file of the host
  (/var/lib/klambda/uids.json, under a lock) by state folder and function, so that a
  restart gives a function the same uid and two routers on one host never share one; a
  function cannot signal, ptrace or read the files of another function's environments,
  nor the router's state (mode 0700);
- its code, from a snapshot in that state, bind-mounted read-only at /var/task (Lambda's
  LAMBDA_TASK_ROOT) in the environment's private mount namespace, the only way to it;
- a private tmpfs /tmp of `ephemeralStorageMB`; a limit of 1,024 processes and threads.

Before using it with an interpreter, `probe()` enters a sandbox once in a throwaway
process and reads the interpreter's and klambda's files as that uid: where that fails
(an interpreter under a folder only root may read, no mount namespaces), environments run
unsandboxed and the reason is reported rather than failing every cold start.

As any other user, the worker cannot change uid: environments then run as its own user,
with the process group, the cgroups it may create and RLIMIT_AS as their only limits
(README: Isolation says what is and is not isolated then).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from klambda.api.limits import PROCESS_LIMIT
from klambda.execution import FunctionConfig

FIRST_UID = 20000
UID_COUNT = 40000
# the uids given out on this host: {"STATE_FOLDER:FUNCTION": uid}
HOST_UIDS = Path("/var/lib/klambda/uids.json")
TASK_ROOT = "/var/task"  # klambda.environment.sandbox.TASK_ROOT (a test checks they agree)
OPT = "/opt"  # klambda.environment.sandbox.OPT

# Run by `probe()` as root in a throwaway process: enter a sandbox, then read what every
# environment must read as its uid. Exit 0 and no output when it all works.
PROBE = """
import importlib.util, json, os, sys
from klambda.environment import sandbox
sandbox.enter(json.loads(sys.argv[1]))
for name in ("json", "klambda.environment.bootstrap"):
    with open(importlib.util.find_spec(name).origin, "rb") as f:
        f.read(1)
os.listdir(sandbox.TASK_ROOT)
with open(os.path.join(sandbox.TMP, "probe"), "w") as f:
    f.write("x")
"""


def _task_root_mount_point() -> None:
    """/var/task, where every environment's code is mounted: an empty folder on the host;
    /opt, where its layers are."""
    for folder in (TASK_ROOT, OPT):
        with contextlib.suppress(OSError):
            Path(folder).mkdir(mode=0o755, parents=True, exist_ok=True)


def prune(assigned: Mapping[str, int], scope_exists: Callable[[str], bool]) -> dict[str, int]:
    """The uids still in use: those of state folders that still exist."""
    return {k: v for k, v in assigned.items() if scope_exists(k.rpartition(":")[0])}


def allocate(assigned: Mapping[str, int], key: str) -> int:
    """The uid of `key`: the one it has, else the lowest one of the range not taken."""
    if key in assigned:
        return assigned[key]
    taken = set(assigned.values())
    for uid in range(FIRST_UID, FIRST_UID + UID_COUNT):
        if uid not in taken:
            return uid
    raise RuntimeError(f"all {UID_COUNT} function uids from {FIRST_UID} are taken")


class Sandbox:
    """The sandboxing of one worker's environments: on when it runs as root.

    `state` (local mode's state folder) keys the functions' uids in `uids_file`, so they
    last across restarts and differ from other routers'; without it, uids are allocated
    in memory (a worker pod serves one function)."""

    def __init__(
        self,
        state: Path | None = None,
        enabled: bool | None = None,
        uids_file: Path = HOST_UIDS,
    ) -> None:
        self.enabled = os.geteuid() == 0 if enabled is None else enabled
        self.reason = "" if self.enabled else "the worker does not run as root"
        self._scope = str(state.resolve()) if state is not None else None
        self._file = uids_file
        self._uids: dict[str, int] = {}
        self._probed: dict[str, str | None] = {}

    @property
    def uids(self) -> dict[str, int]:
        """The uid of each function given one so far."""
        return dict(self._uids)

    def uid_for(self, function: str) -> int:
        uid = self._uids.get(function)
        if uid is None:
            uid = self.assign([function])[function]
        return uid

    def assign(self, functions: Iterable[str]) -> dict[str, int]:
        """Give these functions their uids now, in one go (at start, off the cold-start
        path: taking the host's lock and file costs ~2 ms)."""
        new = [f for f in dict.fromkeys(functions) if f not in self._uids]
        if new and self._scope is None:
            for function in new:
                self._uids[function] = allocate(self._uids, function)
        elif new:
            self._uids.update(self._allocate_on_host(new))
        return self.uids

    def _allocate_on_host(self, functions: list[str]) -> dict[str, int]:
        self._file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self._file.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                assigned = json.loads(self._file.read_text())
            except (OSError, ValueError):
                assigned = {}
            assigned = prune(assigned, os.path.isdir)
            out = {}
            for function in functions:
                key = f"{self._scope}:{function}"
                out[function] = assigned[key] = allocate(assigned, key)
            tmp = self._file.with_suffix(".tmp")
            tmp.write_text(json.dumps(assigned, sort_keys=True))
            os.chmod(tmp, 0o600)
            tmp.replace(self._file)
        return out

    def problem(self, python: str) -> str | None:
        """Why environments of `python` are not sandboxed; None when they are."""
        if not self.enabled:
            return self.reason
        return self._probed.get(python, "not probed")

    def usable(self, python: str) -> bool:
        """Whether environments of `python` are sandboxed (after `probe(python)`)."""
        return self.enabled and python in self._probed and self._probed[python] is None

    async def probe(self, python: str, env: Mapping[str, str]) -> str | None:
        """Try a sandbox with `python` once; None when it works, else why not."""
        if not self.enabled:
            return self.reason
        if python in self._probed:
            return self._probed[python]
        _task_root_mount_point()
        with tempfile.TemporaryDirectory(prefix="klambda-probe-") as code:
            os.chmod(code, 0o755)  # as a code snapshot is
            spec = {"uid": FIRST_UID + UID_COUNT - 1, "code": code, "tmp_mb": 1, "nproc": None}
            spec["gid"] = spec["uid"]
            proc = await asyncio.create_subprocess_exec(
                python,
                "-c",
                PROBE,
                json.dumps(spec),
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
        problem = None
        if proc.returncode != 0:
            lines = out.decode(errors="replace").strip().splitlines()
            problem = f"a sandboxed {python} failed: {lines[-1] if lines else proc.returncode}"
        self._probed[python] = problem
        return problem

    def spec(self, cfg: FunctionConfig, pids_limited: bool) -> dict[str, Any]:
        """What the environment enters (klambda.environment.sandbox.enter)."""
        uid = self.uid_for(cfg.function)
        return {
            "uid": uid,
            "gid": uid,
            "code": cfg.code_root,
            "opt": cfg.opt_root or None,
            "tmp_mb": cfg.ephemeral_storage_mb,
            "nproc": None if pids_limited else PROCESS_LIMIT,
        }

    def kill_all(self) -> int:
        """SIGKILL every process running as one of the functions' uids (where no cgroup
        holds them: the router stops); how many."""
        uids = {str(u) for u in self._uids.values()}
        if not self.enabled or not uids:
            return 0
        total = 0
        for _ in range(100):  # again, for what forked while we looked
            killed = self._kill_round(uids)
            total += killed
            if not killed:
                break
        return total

    @staticmethod
    def _kill_round(uids: set[str]) -> int:
        killed = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status") as f:
                    status = f.read()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("Uid:"):
                    if line.split()[1] in uids:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(entry.name), signal.SIGKILL)
                            killed += 1
                    break
        return killed
