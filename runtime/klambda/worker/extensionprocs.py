"""The processes of an environment's external extensions: found in its /opt/extensions,
started before its runtime as Lambda starts them (the runtime's environment variables, the
environment's cgroup and mounts, a process group each), their output read as the
function's log lines, their exits told to the Extensions API, and killed with the
environment.

How an extension is launched (the cgroup, the mounts) is `klambda.worker.custom`'s: it
hands `start` the command to run a file and the launcher around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from klambda.worker.extensions import LAUNCH_ERROR, Extension, Failure

if TYPE_CHECKING:  # its server (aiohttp) is imported with the Runtime API's, where used
    from klambda.worker.extensionsapi import ExtensionsApi

# a log line longer than this is cut into several (Lambda's limit on one event is 256 KB)
LINE_LIMIT = 256 * 1024


def extension_paths(opt_root: str) -> list[Path]:
    """The external extensions of layers merged at `opt_root`: every file (not folder) in
    its `extensions/`, by name, as Lambda lists /opt/extensions."""
    try:
        entries = sorted(Path(opt_root, "extensions").iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    return [p for p in entries if not p.is_dir()]


async def read_lines(pipe: asyncio.StreamReader, write: Callable[[str], None]) -> None:
    """Each line of `pipe` to `write`, until it closes."""
    while True:
        try:
            raw = await pipe.readline()
        except ValueError:  # a line over the reader's limit: take what is there
            raw = await pipe.read(LINE_LIMIT)
        if not raw:
            return
        write(raw.rstrip(b"\r\n").decode("utf-8", "replace"))


class Relay:
    """Where the lines of an environment's processes go: a writer that can be changed
    once the environment exists (extensions write before the runtime is started)."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self.write = write

    def __call__(self, text: str) -> None:
        self.write(text)


@dataclass(eq=False)
class ExtensionProcess:
    ext: Extension
    proc: asyncio.subprocess.Process
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    exited: asyncio.Task[int] | None = None

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def kill(self) -> None:
        """SIGKILL its process group (it was started in a session of its own)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


async def start(
    paths: list[Path],
    api: ExtensionsApi,
    *,
    command_of: Callable[[Path], list[str] | None],
    launch: Callable[[list[str]], list[str]],
    cwd: str | None,
    env: Mapping[str, str],
    write: Callable[[str], None],
) -> list[ExtensionProcess]:
    """Start the extensions at `paths`, in order. One that cannot be started fails the
    environment (`api.fail`, Lambda's Extension.LaunchError); the ones before it run."""
    started: list[ExtensionProcess] = []
    for path in paths:
        ext = api.expect(path.name)
        command = command_of(path)
        if command is None:
            api.fail(Failure(LAUNCH_ERROR, f"Extension {ext.name} is not executable", ext.name))
            break
        try:
            proc = await asyncio.create_subprocess_exec(
                *launch(command),
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=LINE_LIMIT,
            )
        except OSError as err:
            api.fail(Failure(LAUNCH_ERROR, f"Extension {ext.name}: {err}", ext.name))
            break
        started.append(watch(ExtensionProcess(ext, proc), api, write))
    return started


def watch(
    p: ExtensionProcess, api: ExtensionsApi, write: Callable[[str], None]
) -> ExtensionProcess:
    """Read its output as log lines and tell the API when it exits."""
    assert p.proc.stdout is not None
    assert p.proc.stderr is not None
    p.readers = [
        asyncio.ensure_future(read_lines(p.proc.stdout, write)),
        asyncio.ensure_future(read_lines(p.proc.stderr, write)),
    ]
    p.exited = asyncio.ensure_future(p.proc.wait())

    def gone(task: asyncio.Task[int]) -> None:
        if not task.cancelled():
            api.exited(p.ext, task.result())

    p.exited.add_done_callback(gone)
    return p


async def stop(procs: list[ExtensionProcess]) -> None:
    """Kill every extension still running and wait (a little) for their last lines."""
    for p in procs:
        if p.running:
            p.kill()
    exits = [p.exited for p in procs if p.exited is not None and not p.exited.done()]
    if exits:
        await asyncio.wait(exits, timeout=5)
    readers = [t for p in procs for t in p.readers]
    if readers:
        await asyncio.wait(readers, timeout=1.0)
    for t in readers:
        t.cancel()
