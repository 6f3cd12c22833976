"""Entering an environment's sandbox: the last thing done as root, before any user code.

When the worker runs as root it gives each function its own unprivileged uid, and each
environment, in the forked child, before its init:

- a private mount namespace, in which the function's code (a snapshot in the router's
  state folder, which no one else may read) is bind-mounted read-only at /var/task, as on
  Lambda, and /tmp is a fresh tmpfs of the function's `ephemeralStorageMB`: writing past
  it fails with ENOSPC, and no other environment sees it;
- the interpreter's own folders (`sys.path`) stay readable when they live below a folder
  that others may not enter (a Python under /root, a venv in a 0750 home): that folder is
  covered by an empty tmpfs and only those folders are bind-mounted back into it,
  read-only, so the rest of it (root's home, say) is out of sight;
- RLIMIT_NPROC of 1,024 when no pids cgroup limits its processes and threads (the count
  is the uid's, so it is shared by the function's environments);
- no new privileges (setuid binaries do not raise them), no supplementary groups, then
  the function's gid and uid. Changing uid also makes the process non-dumpable, so even
  another environment of the same function cannot ptrace it or read its /proc files.

/tmp is a tmpfs rather than a loop device or a quota because it is the only one of the
three that is private, bounded by ENOSPC and cheap at every cold start: mounting it takes
~0.05 ms, where formatting and mounting a loop device takes ~30-60 ms (and needs
/dev/loop*, which containers rarely have), and quotas need a filesystem mounted with
them, which the state folder's rarely is. The price: tmpfs pages are memory, charged to
the environment's memory cgroup, so what a handler keeps in /tmp counts towards its
`memoryMB` (README: Isolation).

The standard library has no mount(2) or unshare(2) before Python 3.12: libc is called
through ctypes, which is standard library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import stat
import sys
from typing import Any

TASK_ROOT = "/var/task"
OPT = "/opt"  # where Lambda puts a function's layers
TMP = "/tmp"

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

# loaded in the zygote, once, so that forked environments pay nothing for it
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _call(name: str, *args: Any) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str) -> None:
    _call(
        "mount",
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )


def _closed_ancestor(path: str) -> str | None:
    """The outermost folder on `path` (itself included) that others may not enter."""
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return None
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
    return None


def reveal_plan(paths: list[str], tmp: str = TMP) -> tuple[list[str], list[str]]:
    """The folders to cover with an empty tmpfs, and the paths below them to bind back:
    each of `paths` that another uid could not reach, and each below `tmp`, which the
    environment's own empty tmpfs hides (a clone or a venv under /tmp)."""
    covers: list[str] = []
    reveals: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths if p and os.path.exists(p)}):
        closed = _closed_ancestor(path)
        if closed is None or closed == "/":
            if path.startswith(tmp + "/") and not any(
                path == r or path.startswith(r + "/") for r in reveals
            ):
                reveals.append(path)
            continue
        if not any(closed == c or closed.startswith(c + "/") for c in covers):
            covers.append(closed)
        if not any(path == r or path.startswith(r + "/") for r in reveals):
            reveals.append(path)
    return covers, reveals


# klambda's own source root: an editable install reaches it through an import hook, not
# through sys.path
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# what the zygote's interpreter reads from; computed once, in the zygote
PLAN = reveal_plan([*sys.path, SOURCE_ROOT])


def _reveal(covers: list[str], reveals: list[str], fds: list[int]) -> None:
    """Cover `covers`, bind `reveals` (opened as `fds` before anything was mounted) back."""
    try:
        for folder in covers:
            if os.path.isdir(folder):
                _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
            # else it was below /tmp, which is new and empty: the binds below make it
        for path, fd in zip(reveals, fds, strict=True):
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                open(path, "ab").close()
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, "")
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "")
    finally:
        for fd in fds:
            os.close(fd)


_isolated = False  # this process has its own mount namespace already (isolate)


def isolate() -> None:
    """A private mount namespace, the part of `enter` that is the same for every function:
    a spare environment does it while it waits for its spec (~0.3 ms off a cold start)."""
    global _isolated
    if _isolated:
        return
    _call("unshare", CLONE_NEWNS)
    # nothing mounted here reaches the host, nor the host's later mounts us
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "")
    _isolated = True


def enter(sandbox: dict[str, Any]) -> None:
    """Become the function's sandboxed uid; raises OSError naming the step that failed.

    `sandbox`: {"uid", "gid", "code": the code root to mount at /var/task, "opt": the
    merged layers to mount at /opt (or none), "tmp_mb",
    "nproc": a process limit, or None when a pids cgroup already limits them}."""
    isolate()
    # opened in the new namespace (a bind's source must be of it), before any covering
    reveal_fds = [os.open(path, os.O_PATH) for path in PLAN[1]]
    # the code first: it may itself live under /tmp, which is covered next
    _mount(sandbox["code"], TASK_ROOT, None, MS_BIND | MS_REC, "")
    _mount(None, TASK_ROOT, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "")
    if sandbox.get("opt"):  # the layers, merged in the router's state like the code
        _mount(sandbox["opt"], OPT, None, MS_BIND | MS_REC, "")
        _mount(None, OPT, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "")
    _mount("tmpfs", TMP, "tmpfs", MS_NOSUID | MS_NODEV, f"size={sandbox['tmp_mb']}m,mode=1777")
    _reveal(PLAN[0], PLAN[1], reveal_fds)
    if sandbox.get("nproc"):
        resource.setrlimit(resource.RLIMIT_NPROC, (sandbox["nproc"], sandbox["nproc"]))
    _call("prctl", PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), 0, 0, 0)
    os.setgroups([])
    os.setgid(sandbox["gid"])
    os.setuid(sandbox["uid"])
