"""Shipping a worker pod's log records to the cluster's log engine, off the invoke path.

The log hub hands each record to `Shipper.add`, which only appends it to a bounded deque
(no I/O, no await: the invoke path pays one append). A task of the worker's event loop
sends what has gathered every `period` seconds, or as soon as `batch` records wait, as one
POST of JSON Lines to VictoriaLogs (klambda.logengine), group = function, stream =
environment. When the engine is away the records wait, the oldest dropped past `keep`
and counted (`dropped`), so a pod never grows without bound; a batch that failed is tried
again with the next one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from klambda.logengine.client import LogEngine, LogEngineError
from klambda.logengine.records import engine_record
from klambda.worker.logs import LogRecord

log = logging.getLogger("klambda.worker.logship")


class Shipper:
    def __init__(
        self,
        engine: LogEngine,
        *,
        period: float = 0.5,
        batch: int = 5000,
        keep: int = 100_000,
        account: str = "000000000000",
    ) -> None:
        self.engine = engine
        self.period = period
        self.batch = batch
        self.account = account
        self._waiting: collections.deque[LogRecord] = collections.deque(maxlen=keep)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.shipped = 0
        self.dropped = 0

    def add(self, rec: LogRecord) -> None:
        """The log hub's hook: keep the record for the next batch."""
        if len(self._waiting) == self._waiting.maxlen:
            self.dropped += 1
        self._waiting.append(rec)
        if len(self._waiting) >= self.batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="log-ship")

    async def close(self) -> None:
        """Stop, after one last attempt to send what waits."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(LogEngineError):
            await self.ship_once()
        await self.engine.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.period)
            self._wake.clear()
            try:
                await self.ship_once()
            except LogEngineError as err:
                log.warning("log records not shipped yet (%d waiting): %s", self.waiting, err)

    @property
    def waiting(self) -> int:
        """Records not sent yet."""
        return len(self._waiting)

    async def ship_once(self) -> int:
        """Send what waits, a batch at a time; the records sent. A batch the engine did not
        take goes back to the front (LogEngineError), what no longer fits counted dropped."""
        sent = 0
        while self._waiting:
            recs = [self._waiting.popleft() for _ in range(min(self.batch, len(self._waiting)))]
            try:
                await self.engine.insert(
                    engine_record(r.function, r.time, r.stream, r.request_id, r.text, self.account)
                    for r in recs
                )
            except LogEngineError:
                room = (self._waiting.maxlen or 0) - len(self._waiting)
                self.dropped += max(0, len(recs) - room)
                self._waiting.extendleft(reversed(recs[: max(0, room)]))
                raise
            sent += len(recs)
            self.shipped += len(recs)
        return sent
