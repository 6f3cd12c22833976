"""Which interpreter runs a runtime (`python3.12` -> an executable), in local mode.

The router's own interpreter serves its own version; other versions are looked up on
PATH and checked once. A runtime with no interpreter leaves its functions Failed with
that reason, rather than running them on the wrong Python.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys


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
