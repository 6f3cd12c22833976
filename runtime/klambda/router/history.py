"""The router's recent history for the console: its own metrics sampled every few seconds.

A task reads the Prometheus registry (in a thread, never on the invoke path) into the
console's `History`; the console's pages read the history only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from klambda.console import History, snapshot
from klambda.metrics import Metrics


class Sampler:
    def __init__(self, metrics: Metrics, period_s: float, keep: int) -> None:
        self.metrics = metrics
        self.period_s = period_s
        self.history = History(keep=keep)
        self._task: asyncio.Task[None] | None = None

    @property
    def span_s(self) -> float:
        """How far back the history goes when full."""
        return self.period_s * self.history.keep

    def sample(self) -> None:
        self.history.add(snapshot(self.metrics.registry.collect(), time.time()))

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.period_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
