"""Cluster mode's schedule state: the routers' Lease (klambda.router.leadership decides).

`ScheduleLease` is the scheduler's `ScheduleState` and its `Holder`: a loop takes or
renews the Lease every `renew_s` seconds, writing with the resourceVersion it read, so of
two routers writing at once one gets a conflict and stays a follower. This router holds
the Lease until `duration_s` after the write that renewed it began, less a margin; the
scheduler fires only while `holding()`. Each fired tick is written into the Lease's
annotation (with a renewal) before the scheduler goes on; when this router takes the
Lease over it reads the ticks its predecessor left and asks the scheduler to plan again
from them (`on_taken`). Stopping releases the Lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from lightkube import ApiError, AsyncClient
from lightkube.resources.coordination_v1 import Lease

from klambda import contract
from klambda.router import leadership

log = logging.getLogger("klambda.router.schedule_lease")


def _lease(body: dict[str, Any]) -> Lease:
    return cast(Lease, Lease.from_dict(body))


# the holder stops firing this long before its Lease could be taken from it
MARGIN_S = 2.0


class ScheduleLease:
    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        identity: str,
        *,
        name: str = contract.SCHEDULE_LEASE,
        duration_s: int = 15,
        renew_s: float = 5.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.duration_s = duration_s
        self.renew_s = renew_s
        self.on_taken: Callable[[], None] = lambda: None
        self._ticks: dict[str, float] = {}
        self._held_until = 0.0  # time.monotonic()
        self._seen: tuple[leadership.Record, float] | None = None  # a record, first seen at
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- the scheduler's view ------------------------------------------------------------

    def holding(self) -> bool:
        return time.monotonic() < self._held_until - MARGIN_S

    def last(self, key: str) -> float | None:
        return self._ticks.get(key)

    async def fired(self, key: str, tick: float) -> None:
        self._ticks[key] = tick
        if not await self._write():
            log.warning("schedule %s: tick recorded here but not in the Lease", key)

    # -- the loop ------------------------------------------------------------------------

    async def start(self) -> None:
        await self._write()
        self._task = asyncio.create_task(self._run(), name="klambda-schedule-lease")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self._write()
            except Exception:
                log.exception("schedule lease: renewal failed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.holding():
            self._held_until = 0.0
            with contextlib.suppress(ApiError, OSError):
                await self._release()

    async def _get(self) -> dict[str, Any] | None:
        try:
            lease = await self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise
        raw: dict[str, Any] = lease.to_dict()
        return raw

    def _observe(self, record: leadership.Record, now: float) -> float:
        """How long this record has been as it is, by our clock."""
        if self._seen is None or self._seen[0] != record:
            self._seen = (record, now)
        return now - self._seen[1]

    async def _write(self) -> bool:
        """Take or renew the Lease with the current ticks; whether this router holds it."""
        async with self._lock:
            began = time.monotonic()
            try:
                current = await self._get()
            except (ApiError, OSError) as err:
                log.warning("schedule lease: cannot read it: %s", err)
                return self.holding()
            now = datetime.now(UTC)
            if current is None:
                record = leadership.Record("", self.duration_s, "", "", 0)
                meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
            else:
                record = leadership.record_of(current)
                meta = dict(current.get("metadata") or {})
            if not leadership.may_take(record, self.identity, self._observe(record, began)):
                if self._held_until:
                    log.info("schedule lease: now held by %s", record.holder)
                self._held_until = 0.0
                return False
            taking = record.holder != self.identity or not self._held_until
            if taking and current is not None:
                # continue after the ticks the Lease records (a predecessor, a past life)
                self._ticks = {**self._ticks, **leadership.ticks_of(current)}
            meta["annotations"] = {
                **(meta.get("annotations") or {}),
                **leadership.ticks_annotation(self._ticks),
            }
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta,
                "spec": leadership.held_spec(record, self.identity, now, self.duration_s),
            }
            try:
                if current is None:
                    await self.client.create(_lease(body))
                else:
                    await self.client.replace(_lease(body))
            except ApiError as err:
                if err.status.code in (404, 409):  # another router wrote first
                    self._held_until = 0.0
                    return False
                log.warning("schedule lease: cannot write it: %s", err)
                return self.holding()
            self._held_until = began + self.duration_s
            if taking:
                log.info("schedule lease: held by %s", self.identity)
                self.on_taken()
            return True

    async def _release(self) -> None:
        async with self._lock:
            current = await self._get()
            if current is None:
                return
            record = leadership.record_of(current)
            if record.holder != self.identity:
                return
            meta = dict(current.get("metadata") or {})
            meta["annotations"] = {
                **(meta.get("annotations") or {}),
                **leadership.ticks_annotation(self._ticks),
            }
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta,
                "spec": leadership.released_spec(record, datetime.now(UTC)),
            }
            await self.client.replace(_lease(body))
