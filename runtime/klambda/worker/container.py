"""Container-image functions in local mode: the image runs through the Docker engine, its
entry point (a runtime interface client, as in Lambda's base images) talking to the
environment's Runtime API listener over the host's network.

One container per environment, named after it and removed with it; the engine enforces
the memory size (`--memory`, no swap) and a container killed at it exits 137, which the
environment reports as `Runtime.OutOfMemory`. The peak memory is read from the
container's own cgroup when the engine uses cgroupfs v1 (as here), else left at 0.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
from pathlib import Path

from klambda.execution import IMAGE_OWN_VARIABLES, FunctionConfig

DOCKER = "docker"


@functools.cache
def engine_problem() -> str | None:
    """Why images cannot run here (no docker CLI, no engine answering), or None."""
    if shutil.which(DOCKER) is None:
        return "the docker command is not installed"
    try:
        out = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"docker info failed: {err}"
    if out.returncode != 0 or not out.stdout.strip():
        return "no Docker engine answers (docker info: " + out.stderr.strip()[:200] + ")"
    return None


def run_argv(
    cfg: FunctionConfig,
    name: str,
    cidfile: str,
    env: dict[str, str],
    mounts: list[tuple[str, str]],
) -> list[str]:
    """`docker run` of one environment; the values of `env` reach the container through
    the CLI's own environment (`-e NAME`), not its command line."""
    argv = [DOCKER, "run", "--rm", "--name", name, "--cidfile", cidfile, "--network", "host"]
    argv += ["--memory", f"{cfg.memory_mb}m", "--memory-swap", f"{cfg.memory_mb}m"]
    argv += ["--label", f"klambda.io/function={cfg.function}"]
    for key in sorted(env):
        if key not in IMAGE_OWN_VARIABLES:
            argv += ["-e", key]
    for host, path in mounts:
        argv += ["-v", f"{host}:{path}" + (":ro" if path == "/opt" else "")]
    if cfg.image_workdir:
        argv += ["--workdir", cfg.image_workdir]
    if cfg.image_entry_point is not None:
        argv += ["--entrypoint", cfg.image_entry_point[0] if cfg.image_entry_point else ""]
    argv.append(cfg.image)
    if cfg.image_entry_point:
        argv += list(cfg.image_entry_point[1:])
    if cfg.image_command is not None:
        argv += list(cfg.image_command)
    return argv


def peak_kb(cidfile: str) -> int:
    """The container's peak memory (cgroup v1, cgroupfs driver), or 0."""
    with contextlib.suppress(OSError, ValueError):
        cid = Path(cidfile).read_text().strip()
        if cid:
            path = Path("/sys/fs/cgroup/memory/docker") / cid / "memory.max_usage_in_bytes"
            return int(path.read_text()) // 1024
    return 0


async def remove(name: str) -> None:
    import asyncio

    with contextlib.suppress(OSError):
        proc = await asyncio.create_subprocess_exec(
            DOCKER,
            "rm",
            "-f",
            name,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()
