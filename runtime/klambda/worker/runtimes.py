"""Which interpreter runs a runtime (`python3.12` -> an executable), in local mode; the
custom runtimes (`provided*`) need none: their code brings its `bootstrap`.

The router's own interpreter serves its own version; other versions are looked up on
PATH and checked once. A runtime with no interpreter leaves its functions Failed with
that reason, rather than running them on the wrong Python.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

# runtimes whose environments speak Lambda's Runtime API (klambda.worker.custom): a
# `bootstrap` in the code, run as it is; every other runtime is a forked Python
RUNTIME_API = ("provided", "provided.al2", "provided.al2023")


def uses_runtime_api(runtime: str) -> bool:
    return runtime in RUNTIME_API


def missing(runtime: str) -> str | None:
    """Why functions of `runtime` cannot run here, or None when they can."""
    if uses_runtime_api(runtime) or interpreter(runtime) is not None:
        return None
    return f"runtime {runtime} is not installed here (no {runtime} on PATH)"


def cannot_mount(runtime: str, file_systems: bool) -> str | None:
    """Why a function's file systems cannot be mounted here, or None: they are mounted in
    a mount namespace of the environment's own, which the Runtime API path makes (as root)
    and the fork path does not yet."""
    if not file_systems:
        return None
    if not uses_runtime_api(runtime):
        return (
            "spec.fileSystemConfigs: in local mode file systems are mounted for provided "
            "runtimes only (a python handler runs there under awslambdaric)"
        )
    from klambda.worker.custom import can_mount_opt

    if not can_mount_opt():
        return "spec.fileSystemConfigs: mounting needs root and util-linux's unshare here"
    return None


@functools.cache
def interpreter(runtime: str) -> str | None:
    version = runtime.removeprefix("python")
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    exe = shutil.which(f"python{version}")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if out.stdout.strip() == version else None
