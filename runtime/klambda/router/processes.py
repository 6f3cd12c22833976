"""The leader's follower processes (`klambda up --processes N`): started, watched, restarted.

Each follower (klambda.router.follower) is a fresh interpreter (`python -m
klambda.router.follower`), never a fork of the leader: the leader runs gRPC and asyncio
threads, which fork does not survive. It gets its row of the shared concurrency pools
(1 … N-1; the leader is 0) and says when it serves through a pipe. Followers run in a
session of their own, so a Ctrl-C at the terminal reaches the leader alone, which stops
them in order. A follower that dies is replaced; its row's slots are reclaimed first, so
a crash never leaves slots taken (klambda.router.sharedpools).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from klambda.router.follower import SPEC_VARIABLE, FollowerSpec
from klambda.router.sharedpools import SharedPools

log = logging.getLogger("klambda.router")

START_TIMEOUT_S = 120.0
RESTART_DELAY_S = 1.0


class Followers:
    def __init__(
        self,
        pools: SharedPools,
        count: int,
        spec: Callable[[int, int], FollowerSpec],
        restarted: Callable[[], None] = lambda: None,
    ) -> None:
        """`count` followers; `spec(row, ready_fd)` says what each is told; `restarted` is
        called when one was replaced."""
        self.pools = pools
        self.count = count
        self.spec = spec
        self.restarted = restarted
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    def pids(self) -> list[int]:
        return [p.pid for _row, p in sorted(self.procs.items())]

    async def start(self) -> None:
        """Start every follower and wait until each serves; RuntimeError if one cannot."""
        rows = range(1, self.count + 1)
        await asyncio.gather(*(self._spawn(row) for row in rows))
        for row in rows:
            self._watchers.append(asyncio.create_task(self._watch(row), name=f"router-{row}"))

    async def _spawn(self, row: int) -> None:
        read, write = os.pipe()
        try:
            env = dict(os.environ)
            env[SPEC_VARIABLE] = self.spec(row, write).to_json()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "klambda.router.follower",
                env=env,
                pass_fds=(write,),
                start_new_session=True,
            )
        finally:
            os.close(write)
        self.procs[row] = proc
        try:
            said = await asyncio.wait_for(
                asyncio.to_thread(os.read, read, 64), timeout=START_TIMEOUT_S
            )
        except TimeoutError:
            said = b""
        finally:
            os.close(read)
        if not said.startswith(b"ready"):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
            self.pools.reclaim(row)
            raise RuntimeError(f"router process {row} did not start (exit status {code})")

    async def _watch(self, row: int) -> None:
        while not self._stopping:
            code = await self.procs[row].wait()
            if self._stopping:
                return
            freed = self.pools.reclaim(row)
            log.warning(
                "router process %d (pid %d) exited with status %s; %d concurrency slot(s) it "
                "held given back; starting it again",
                row,
                self.procs[row].pid,
                code,
                freed,
            )
            self.restarts += 1
            await asyncio.sleep(RESTART_DELAY_S)
            try:
                await self._spawn(row)
            except (RuntimeError, OSError) as err:
                log.error("%s; trying again", err)
            else:
                self.restarted()

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for row, proc in self.procs.items():
            try:
                await asyncio.wait_for(proc.wait(), timeout=grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            self.pools.reclaim(row)
