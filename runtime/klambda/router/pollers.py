"""Event source mappings' pollers: each enabled mapping drains its queue in batches and
invokes its function synchronously through `Invoker.invoke`, the one invoke path, so the
function's reserved concurrency, the account's limit and throttles apply to it as to any
caller.

Per mapping, `Scaling` (klambda.triggers.sqs) says how many batches run at once; each
batch slot receives up to `batchSize` messages (waiting up to
`maximumBatchingWindowInSeconds` to fill the batch), drops and deletes the ones no filter
pattern matches, invokes, and deletes what succeeded by Lambda's rules (`batch_result`).
What failed is left alone: it comes back after the queue's visibility timeout, and after
`maxReceiveCount` receives the queue moves it to its DLQ. A throttled invocation leaves
the whole batch for redelivery and halves the mapping's concurrency.

`configure` is called with every manifest load; it starts, restarts and stops pollers so
that exactly the enabled mappings run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from klambda.api.eventsourcemapping import EventSourceMapping
from klambda.api.queue import Queue
from klambda.errors import KlambdaError, TooManyRequests
from klambda.queue.workqueue import Redrive, WorkQueues
from klambda.router.invoke import Invoker
from klambda.source_metrics import SourceMetrics
from klambda.triggers import filterpolicy, sqs

log = logging.getLogger("klambda.router.pollers")

IDLE_WAIT_S = 0.2  # an empty receive: wait this long before the next (local mode polls)
TICK_S = 1.0
DRAIN_S = 10.0  # a stopping router waits this long for batches being invoked


@dataclass
class MappingState:
    """What `klambda get mappings` shows of one mapping."""

    name: str
    state: str = "Enabled"
    reason: str | None = None
    last_processing_result: str | None = None
    concurrency: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    iterator_age: float | None = None  # streams: the age of the last record invoked
    counts: dict[str, int] = field(default_factory=dict)


STANDBY = "polled by the router that holds the Lease, not this one"


def standby(name: str) -> MappingState:
    """An enabled mapping as a router that does not poll it sees it."""
    return MappingState(name, state="Enabled", reason=STANDBY)


class MappingPoller:
    def __init__(
        self,
        esm: EventSourceMapping,
        queue: Queue,
        queues: WorkQueues,
        invoker: Invoker,
        metrics: SourceMetrics,
        *,
        region: str,
        account: str,
    ) -> None:
        self.esm = esm
        self.queue = queue
        self.queues = queues
        self.invoker = invoker
        self.metrics = metrics
        self.region = region
        self.arn = sqs.queue_arn(region, account, queue.metadata.name)
        rp = queue.spec.redrive_policy
        self.redrive = Redrive(rp.dead_letter_queue, rp.max_receive_count) if rp else None
        self.patterns = esm.spec.patterns()
        self.scaling = sqs.Scaling(self._cap())
        self.state = MappingState(esm.metadata.name, concurrency=self.scaling.batches)
        self._labels = (esm.metadata.name, esm.spec.function_name)
        self._slots: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._busy = False
        self._throttled = False
        self._closing = False

    def _cap(self) -> int:
        reserved = self.invoker.pools.reserved.get(self.esm.spec.function_name)
        return sqs.concurrency_cap(self.esm.spec.maximum_concurrency, reserved)

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"esm {self.state.name}")

    async def stop(self) -> None:
        """Let batches being invoked finish and be deleted (for up to DRAIN_S), so a clean
        restart hands none of them to the function again; then cancel what is left."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._slots:
            await asyncio.wait(self._slots, timeout=DRAIN_S)
        tasks = [t for t in (self._supervisor, *self._slots) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._slots.clear()

    async def _supervise(self) -> None:
        """Keep `scaling.batches` slots running; re-decide once a tick."""
        while True:
            want = self.scaling.tick(busy=self._busy, throttled=self._throttled, cap=self._cap())
            self._busy = self._throttled = False
            self.state.concurrency = want
            self.metrics.concurrent.labels(*self._labels).set(want)
            self._slots = [t for t in self._slots if not t.done()]
            while len(self._slots) < want:
                self._slots.append(asyncio.create_task(self._slot()))
            for t in self._slots[want:]:
                t.cancel()  # a slot cancelled mid-batch leaves it to the visibility timeout
            self._slots = self._slots[:want]
            await asyncio.sleep(TICK_S)

    async def _slot(self) -> None:
        while not self._closing:
            try:
                got = await self._batch()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the queue failed: say so, retry after a pause
                log.warning("mapping %s: %s", self.state.name, err)
                self.state.last_processing_result = f"PROBLEM: {err}"
                got = 0
            if got == 0:
                await asyncio.sleep(IDLE_WAIT_S)

    async def _receive(self) -> list[sqs.Message]:
        spec = self.esm.spec
        size = spec.effective_batch_size
        timeout = float(self.queue.spec.visibility_timeout_seconds)
        batch = list(
            await self.queues.receive(self.queue.metadata.name, size, timeout, self.redrive)
        )
        window = spec.maximum_batching_window_in_seconds
        if batch and window and len(batch) < size:
            deadline = time.monotonic() + window
            while len(batch) < size and time.monotonic() < deadline:
                await asyncio.sleep(min(IDLE_WAIT_S, max(0.0, deadline - time.monotonic())))
                batch += await self.queues.receive(
                    self.queue.metadata.name, size - len(batch), timeout, self.redrive
                )
        return batch

    async def _batch(self) -> int:
        batch = await self._receive()
        if not batch:
            return 0
        spec = self.esm.spec
        if len(batch) >= spec.effective_batch_size:
            self._busy = True
        records = [sqs.record(m, arn=self.arn, region=self.region) for m in batch]
        if self.patterns:
            kept, dropped = [], []
            for m, r in zip(batch, records, strict=True):
                view = json.dumps(sqs.filter_view(r))
                if any(filterpolicy.matches(p, "MessageBody", {}, view) for p in self.patterns):
                    kept.append((m, r))
                else:
                    dropped.append(m)
            if dropped:
                await self._delete(dropped)
                self._count("filtered", len(dropped))
            if not kept:
                return len(batch)
            batch = [m for m, _ in kept]
            records = [r for _, r in kept]
        payload = json.dumps({"Records": records}).encode()
        self.state.in_flight += 1
        self.state.peak_in_flight = max(self.state.peak_in_flight, self.state.in_flight)
        try:
            result = await self.invoker.invoke(
                spec.function_name, payload, qualifier=spec.qualifier
            )
        except TooManyRequests:
            self._throttled = True
            self._outcome("Throttled", 0, len(batch))
            return len(batch)
        except KlambdaError as err:  # the function is gone or refuses: leave the batch
            self._outcome(type(err).__name__, 0, len(batch))
            self.state.last_processing_result = f"PROBLEM: {err}"
            return len(batch)
        finally:
            self.state.in_flight -= 1
        decided = sqs.batch_result(
            [m.message_id for m in batch],
            function_error=result.function_error is not None,
            reply=result.payload,
            report_item_failures=spec.reports_item_failures,
        )
        ok = set(decided.succeeded)
        await self._delete([m for m in batch if m.message_id in ok])
        self._outcome(decided.reason, len(decided.succeeded), len(decided.failed))
        return len(batch)

    async def _delete(self, messages: Sequence[sqs.Message]) -> None:
        if messages:
            await self.queues.delete(self.queue.metadata.name, [m.receipt_handle for m in messages])

    def _count(self, outcome: str, n: int) -> None:
        if n:
            self.metrics.records.labels(*self._labels, outcome).inc(n)
            self.state.counts[outcome] = self.state.counts.get(outcome, 0) + n

    def _outcome(self, reason: str, succeeded: int, failed: int) -> None:
        self.metrics.batches.labels(*self._labels, reason).inc()
        self._count("succeeded", succeeded)
        self._count("failed", failed)
        self.state.last_processing_result = (
            "OK" if reason in ("OK", "PartialFailure") else (f"PROBLEM: {reason}")
        )


class Pollers:
    """The router's event source mappings: one `MappingPoller` per enabled mapping."""

    def __init__(
        self,
        invoker: Invoker,
        queues: WorkQueues,
        metrics: SourceMetrics,
        *,
        region: str,
        account: str,
    ) -> None:
        self.invoker = invoker
        self.queues = queues
        self.metrics = metrics
        self.region = region
        self.account = account
        self.declared: dict[str, Queue] = {}
        self.mappings: dict[str, EventSourceMapping] = {}
        self.running: dict[str, MappingPoller] = {}
        self.active = True

    async def configure(
        self,
        queues: Mapping[str, Queue],
        mappings: Mapping[str, EventSourceMapping],
        *,
        active: bool = True,
    ) -> None:
        """Take the declared queues and mappings; poll them only when `active` (in a
        cluster, on the one router that holds the Lease)."""
        self.declared = dict(queues)
        self.mappings = {n: m for n, m in mappings.items() if m.spec.source.queue is not None}
        self.active = active
        mappings = self.mappings if active else {}
        for name in list(self.running):
            poller = self.running[name]
            esm = mappings.get(name)
            if (
                esm is None
                or esm != poller.esm
                or queues.get(esm.spec.source.queue or "") != poller.queue
            ):
                await self.running.pop(name).stop()
        for name, esm in sorted(mappings.items()):
            if name in self.running or not esm.spec.enabled:
                continue
            queue = queues.get(esm.spec.source.queue or "")
            if queue is None:
                continue
            poller = MappingPoller(
                esm,
                queue,
                self.queues,
                self.invoker,
                self.metrics,
                region=self.region,
                account=self.account,
            )
            self.running[name] = poller
            poller.start()

    def state(self, name: str) -> MappingState:
        if name in self.running:
            return self.running[name].state
        esm = self.mappings[name]
        if not esm.spec.enabled:
            return MappingState(name, state="Disabled")
        if not self.active:
            return standby(name)
        return MappingState(
            name, state="Failed", reason=f"no Queue {esm.spec.source.queue!r} is declared"
        )

    async def stop(self) -> None:
        for name in list(self.running):
            await self.running.pop(name).stop()
