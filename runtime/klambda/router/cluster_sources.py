"""Cluster mode's event source mappings: the Queues, Streams and EventSourceMappings the
router follows in the API server (klambda.router.cluster), polled by one router of the
replicas at a time, the one that holds the routers' Lease (the schedules' holder,
klambda.router.schedule_lease), so a batch is never taken by two routers at once. The
others keep the declared queues and streams, so any replica accepts messages and records
for them, and answer for a mapping that it is polled elsewhere. The holder writes each
mapping's state and last processing result into the EventSourceMapping's status, which
`kubectl get esm` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError
from lightkube.types import PatchType

from klambda import kinds
from klambda.api.manifest import Manifests
from klambda.router.cluster import ClusterSource
from klambda.router.dbchanges import PostgresPollers
from klambda.router.pollers import MappingState, Pollers
from klambda.router.schedule_lease import ScheduleLease
from klambda.router.streams import StreamPollers

log = logging.getLogger("klambda.router.cluster_sources")

CHECK_S = 1.0  # how often the Lease's holding is looked at
STATUS_EVERY_S = 5.0  # how often the holder writes the mappings' status (when changed)


def status_of(state: MappingState) -> dict[str, Any]:
    """What the EventSourceMapping's status says of a mapping's state. Pure."""
    status: dict[str, Any] = {"state": state.state, "reason": state.reason or ""}
    if state.last_processing_result is not None:
        status["lastProcessingResult"] = state.last_processing_result
    return status


class ClusterMappings:
    def __init__(
        self,
        queues: Pollers,
        streams: StreamPollers,
        tables: PostgresPollers,
        source: ClusterSource,
    ) -> None:
        self.queues = queues
        self.streams = streams
        self.tables = tables
        self.source = source
        self.lease: ScheduleLease | None = None  # set once the schedules' Lease is made
        self.sources = Manifests()
        self.active: bool | None = None
        self._changed = asyncio.Event()
        self._written: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def sources_changed(self, sources: Manifests) -> None:
        """ClusterSource's callback: what the API server now declares."""
        self.sources = sources
        self._changed.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cluster event source mappings")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def holding(self) -> bool:
        return self.lease is None or self.lease.holding()

    async def configure(self, active: bool) -> None:
        s = self.sources
        await self.queues.configure(s.queues, s.mappings, active=active)
        await self.streams.configure(s.streams, s.mappings, active=active)
        await self.tables.configure(s.mappings, active=active)
        if active != self.active:
            log.info("event source mappings: %s", "polled here" if active else "standing by")
            self._written.clear()  # the previous holder may have written since
        self.active = active

    def states(self) -> dict[str, MappingState]:
        out: dict[str, MappingState] = {}
        for pollers in (self.queues, self.streams, self.tables):
            for name in pollers.mappings:
                out[name] = pollers.state(name)
        return out

    async def _run(self) -> None:
        written_at = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), CHECK_S)
            changed = self._changed.is_set()
            self._changed.clear()
            active = self.holding()
            try:
                if changed or active != self.active:
                    await self.configure(active)
                if active and time.monotonic() - written_at >= STATUS_EVERY_S:
                    written_at = time.monotonic()
                    await self._write_statuses()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store or the API server failed: the next round tries again
                log.exception("event source mappings: configuring or reporting failed")
                self._changed.set()
                await asyncio.sleep(CHECK_S)

    async def _write_statuses(self) -> None:
        for name, state in self.states().items():
            status = status_of(state)
            if self._written.get(name) == status:
                continue
            body = {"status": {**status, "lastModified": datetime.now(UTC).isoformat()}}
            assert self.source.client is not None
            try:
                await self.source.client.patch(
                    kinds.EventSourceMappingResource.Status,
                    name,
                    body,
                    namespace=self.source.namespace,
                    patch_type=PatchType.MERGE,
                )
            except ApiError as err:
                log.warning("EventSourceMapping %s: status not written: %s", name, err)
                continue
            self._written[name] = status
