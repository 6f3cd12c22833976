"""The zygote: a warm, single-threaded interpreter that forks execution environments.

Starting a Python interpreter costs ~10 ms before any user code runs; forking one that has
already imported the runtime costs ~1 ms. The worker starts one zygote per runtime and
asks it for environments over a SOCK_SEQPACKET control socket:

    worker -> zygote   {"id", ...spec}  with one fd attached: the environment's socket end
    worker -> zygote   {"spare": id, "cgroup_procs": [...], "isolate": bool}  with one fd: a spare
    zygote -> worker   {"spawned": id, "pid": N}
    zygote -> worker   {"exited": pid, "status": waitstatus}     (whenever a child ends)

A spare is forked ahead of need: it joins its cgroup (in cgroup v1 moving a process takes
~10 ms, an RCU grace period, more than the rest of a cold start) and waits for a SPEC frame
on its socket; then it becomes that environment. The worker keeps one spare per zygote.

The zygote never runs threads or an event loop, so forking it is safe. It exits when the
worker's end of the control socket closes.

With --mergeable the zygote marks its memory, and so every environment's, for the kernel's
same-page merging (`mark_mergeable`).

Run as: python -m klambda.environment.zygote FD [--mergeable] [PRELOAD_MODULE ...]
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys
from typing import Any

# What every environment needs, imported once here so forks inherit it. Entering a sandbox
# (klambda.environment.sandbox) is preloaded by the worker that sandboxes, as root.
from klambda.environment import bootstrap, context, protocol  # noqa: F401

MAX_SPEC_BYTES = 1 << 20
# Lambda's quota of file descriptors in an environment (the router raises its own limit)
OPEN_FILES = 1024
MERGEABLE = "--mergeable"
PR_SET_MEMORY_MERGE = 67  # linux/prctl.h, Linux 6.4+


def mark_mergeable() -> bool:
    """Let the kernel merge this process's anonymous pages, and those of every process it
    forks from now on, with identical pages elsewhere (KSM, PR_SET_MEMORY_MERGE).

    An idle environment's private pages are mostly copies of the zygote's that a write made
    (reference counts, warmed code), the same bytes in every environment of a function;
    ksmd merges them back into one page. It does so only where the host runs it
    (/sys/kernel/mm/ksm/run = 1, the operator's choice); otherwise the mark changes nothing.
    A kernel without it (before 6.4, or built without KSM) or a seccomp filter refuses:
    False, and nothing else happens."""
    import ctypes  # preloaded where environments are sandboxed; ~1.5 ms once otherwise

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        on, zero = ctypes.c_ulong(1), ctypes.c_ulong(0)
        return bool(libc.prctl(PR_SET_MEMORY_MERGE, on, zero, zero, zero) == 0)
    except (OSError, AttributeError):  # no libc to call, or no prctl in it
        return False


def _reap(ctl: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ctl.send(json.dumps({"exited": pid, "status": status}).encode())


def serve(ctl: socket.socket) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    while True:
        try:
            ready, _, _ = select.select([ctl.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(ctl)
        if ctl.fileno() in ready:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(ctl, MAX_SPEC_BYTES, 1)
            except ConnectionResetError:
                msg, fds = b"", []
            if not msg:
                return
            spec = json.loads(msg)
            pid = os.fork()
            if pid == 0:
                try:
                    signal.set_wakeup_fd(-1)
                    os.close(wake_r)
                    os.close(wake_w)
                    ctl.close()
                    sock = socket.socket(fileno=fds[0])
                    if "spare" in spec:
                        spec, channel = become(sock, spec)
                        bootstrap.run(sock, spec, channel)
                    bootstrap.run(sock, spec)
                finally:
                    os._exit(70)
            for fd in fds:
                os.close(fd)
            ctl.send(
                json.dumps({"spawned": spec.get("spare", spec.get("id")), "pid": pid}).encode()
            )


def become(sock: socket.socket, spare: dict[str, Any]) -> tuple[dict[str, Any], bootstrap.Channel]:
    """A spare: join the cgroup, do what does not depend on the function
    (bootstrap.prepare) and warm what every cold start uses (bootstrap.rehearse) now,
    then wait for the spec of the environment to be."""
    pid = str(os.getpid())
    for procs in spare.get("cgroup_procs") or ():
        with open(str(procs), "w") as f:
            f.write(pid)
    channel = bootstrap.prepare(sock, isolate=bool(spare.get("isolate")))
    with contextlib.suppress(Exception):  # only ever a little slower without it
        bootstrap.rehearse(channel)
    frame = protocol.recv_frame(sock)
    if frame is None or frame[0] != protocol.SPEC:
        os._exit(0)  # the worker closed the spare unused
    return frame[1], channel


def main() -> None:
    fd = int(sys.argv[1])
    preload = [a for a in sys.argv[2:] if a != MERGEABLE]
    for name in preload:
        importlib.import_module(name)
    if MERGEABLE in sys.argv[2:]:
        mark_mergeable()  # before the first fork: environments inherit the mark
    ctl = socket.socket(fileno=fd)
    ctl.setblocking(True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= OPEN_FILES:
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, hard))
    # Environments get their fds from the socketpair; stdin is never theirs.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    # Everything imported so far is shared with every environment until written. A full
    # collection in an environment writes the header of every object it visits, which
    # would copy nearly all of the heap the zygote shares (~3 MB an environment); frozen
    # objects are never visited. Nothing here is garbage that a collection would free.
    gc.freeze()
    try:
        serve(ctl)
    finally:
        # children notice their socket closing and exit on their own
        sys.exit(0)


if __name__ == "__main__":
    main()
