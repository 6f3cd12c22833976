"""Event source mappings on streams: one poller per mapping and shard reads the shard in
order from the mapping's checkpoint, invokes the function synchronously through
`Invoker.invoke` with Kinesis's event, and moves the checkpoint as klambda.triggers.kinesis
decides (retry, bisect, partial failures, give up to the on-failure destination).

A shard is never worked on by two batches at once, so records with one partition key are
handled in the order they were put. A throttled invocation is retried with a backoff and
does not count as a retry; while it lasts the iterator age (the age of the last record
invoked, Lambda's IteratorAge, `klambda_iterator_age_seconds`) grows. The checkpoint is
kept in the stream store, so a restarted router goes on from the last record done. A
router that stops lets a batch being invoked finish and its checkpoint be written (for up
to DRAIN_S) before it cancels the poller, so a clean restart reads no record twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from klambda.api.eventsourcemapping import EventSourceMapping
from klambda.api.stream import Stream
from klambda.errors import KlambdaError, TooManyRequests
from klambda.queue.streamstore import StreamStore
from klambda.queue.workqueue import WorkQueues
from klambda.router.invoke import EVENT, Invoker
from klambda.router.pollers import DRAIN_S, MappingState, standby
from klambda.source_metrics import SourceMetrics
from klambda.triggers import filterpolicy, kinesis
from klambda.triggers.kinesis import StreamRecord

log = logging.getLogger("klambda.router.streams")

IDLE_WAIT_S = 0.2
RETRY_BASE_S = 0.05
RETRY_MAX_S = 5.0


class ShardPoller:
    def __init__(self, owner: StreamMapping, shard: int) -> None:
        self.owner = owner
        self.shard = shard
        self.task: asyncio.Task[None] | None = None

    async def _start_position(self) -> int:
        o = self.owner
        spec = o.esm.spec
        name = o.source_name
        if spec.starting_position == "LATEST":
            return await o.store.last_sequence(name, self.shard)
        if spec.starting_position == "AT_TIMESTAMP":
            assert spec.starting_position_timestamp is not None
            return await o.store.sequence_before(name, self.shard, spec.starting_position_timestamp)
        return 0

    async def run(self) -> None:
        o = self.owner
        spec = o.esm.spec
        mapping, stream = o.esm.metadata.name, o.source_name
        pos = await o.store.checkpoint(mapping, self.shard)
        if pos is None:
            pos = await self._start_position()
            await o.store.set_checkpoint(mapping, self.shard, pos)
        pending: deque[tuple[list[StreamRecord], int]] = deque()  # batches, counted retries
        throttled = 0
        while not o.closing.is_set():
            if not pending:
                batch = list(await o.store.read(stream, self.shard, pos, spec.effective_batch_size))
                window = spec.maximum_batching_window_in_seconds
                if batch and window and len(batch) < spec.effective_batch_size:
                    if await o.pause(window):
                        return
                    batch += await o.store.read(
                        stream, self.shard, batch[-1].sequence,
                        spec.effective_batch_size - len(batch),
                    )  # fmt: skip
                if not batch:
                    o.iterator_age(self.shard, 0.0)
                    await o.pause(IDLE_WAIT_S)
                    continue
                pending.append((batch, 0))
            batch, attempts = pending[0]
            batch = await o.expire(batch)
            if not batch:
                pending.popleft()
                continue
            kept = [r for r in batch if o.passes(r)]
            o.count("filtered", len(batch) - len(kept))
            if not kept:
                pos = batch[-1].sequence
                await o.store.set_checkpoint(mapping, self.shard, pos)
                pending.popleft()
                continue
            o.iterator_age(self.shard, time.time() - kept[-1].arrived_at)
            try:
                result = await o.invoker.invoke(
                    spec.function_name, o.payload(kept), qualifier=spec.qualifier
                )
            except TooManyRequests:
                throttled += 1
                o.outcome("Throttled", 0, 0)
                await o.pause(min(RETRY_MAX_S, RETRY_BASE_S * 2**throttled))
                continue
            except KlambdaError as err:
                o.outcome(type(err).__name__, 0, 0)
                o.state.last_processing_result = f"PROBLEM: {err}"
                await o.pause(RETRY_MAX_S)
                continue
            throttled = 0
            step = kinesis.next_step(
                [r.sequence for r in kept],
                function_error=result.function_error is not None,
                reply=result.payload,
                report_item_failures=spec.reports_item_failures,
                bisect=bool(spec.bisect_batch_on_function_error),
                attempts=attempts,
                max_retry_attempts=spec.retry_attempts,
            )
            # the checkpoint is an index in `kept`; filtered records before it are done too
            cut = len(batch) if step.checkpoint == len(kept) else batch.index(kept[step.checkpoint])
            done, rest = batch[:cut], batch[cut:]
            o.outcome(step.reason, len(kept[: step.checkpoint]), len(kept) - step.checkpoint)
            if done:
                pos = done[-1].sequence
                await o.store.set_checkpoint(mapping, self.shard, pos)
            pending.popleft()
            if step.give_up:
                await o.on_failure(rest, "RetryAttemptsExhausted", attempts)
                pos = rest[-1].sequence
                await o.store.set_checkpoint(mapping, self.shard, pos)
            elif step.retry and step.halves:
                mid = len(rest) // 2
                pending.appendleft((rest[mid:], attempts))
                pending.appendleft((rest[:mid], attempts))
            elif step.retry:
                pending.appendleft((rest, attempts + (1 if step.counted else 0)))
                await o.pause(min(RETRY_MAX_S, RETRY_BASE_S * 2**attempts))


class StreamMapping:
    """One enabled mapping on a stream (or on anything read like one: a table's changes):
    a `ShardPoller` per shard."""

    def __init__(
        self,
        esm: EventSourceMapping,
        source_name: str,
        shard_count: int,
        store: StreamStore,
        queues: WorkQueues | None,
        invoker: Invoker,
        metrics: SourceMetrics,
        *,
        region: str,
        account: str,
    ) -> None:
        self.esm = esm
        self.source_name = source_name
        self.store = store
        self.queues = queues
        self.invoker = invoker
        self.metrics = metrics
        self.region = region
        self.account = account
        self.arn = kinesis.stream_arn(region, account, source_name)
        self.patterns = esm.spec.patterns()
        self.state = MappingState(esm.metadata.name, concurrency=shard_count)
        self._labels = (esm.metadata.name, esm.spec.function_name)
        self._ages: dict[int, float] = {}
        self.shards = [ShardPoller(self, n) for n in range(shard_count)]
        self.closing = asyncio.Event()

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the mapping stops meanwhile; True if it stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)
        return self.closing.is_set()

    def start(self) -> None:
        for s in self.shards:
            s.task = asyncio.create_task(self._guard(s), name=f"esm {self.state.name}/{s.shard}")

    async def _guard(self, shard: ShardPoller) -> None:
        while not self.closing.is_set():
            try:
                await shard.run()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the store failed: say so, go on from the checkpoint
                log.warning("mapping %s shard %d: %s", self.state.name, shard.shard, err)
                self.state.last_processing_result = f"PROBLEM: {err}"
                await self.pause(RETRY_MAX_S)

    async def stop(self) -> None:
        """Let batches being invoked finish and be checkpointed, then cancel what is left."""
        self.closing.set()
        tasks = [s.task for s in self.shards if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=DRAIN_S)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def payload(self, records: Sequence[StreamRecord]) -> bytes:
        return json.dumps({"Records": [self._record(r) for r in records]}).encode()

    def _record(self, r: StreamRecord) -> dict[str, Any]:
        return kinesis.record(r, arn=self.arn, region=self.region, account=self.account)

    def _filter_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return kinesis.filter_view(record)

    def passes(self, r: StreamRecord) -> bool:
        if not self.patterns:
            return True
        view = json.dumps(self._filter_view(self._record(r)))
        return any(filterpolicy.matches(p, "MessageBody", {}, view) for p in self.patterns)

    async def expire(self, batch: list[StreamRecord]) -> list[StreamRecord]:
        """The batch without its records older than maximumRecordAgeInSeconds, which go to
        the on-failure destination."""
        limit = self.esm.spec.record_age_limit
        if limit == -1:
            return batch
        now = time.time()
        old = [r for r in batch if now - r.arrived_at > limit]
        if old:
            await self.on_failure(old, "RecordAgeExceeded", 0)
            last = old[-1].sequence
            await self.store.set_checkpoint(self.esm.metadata.name, old[0].shard, last)
        return [r for r in batch if now - r.arrived_at <= limit]

    async def on_failure(
        self, records: Sequence[StreamRecord], condition: str, attempts: int
    ) -> None:
        self.count("dropped", len(records))
        spec = self.esm.spec
        dest = spec.destination_config.on_failure if spec.destination_config else None
        if dest is None:
            return
        body = self._failure_record(
            records,
            condition=condition,
            arn=self.arn,
            function_arn=f"arn:aws:lambda:{self.region}:{self.account}:function:{spec.function}",
            mapping=self.esm.metadata.name,
            now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            attempts=attempts,
        )
        if dest.queue is not None and self.queues is not None:
            await self.queues.send(dest.queue, json.dumps(body), {})
        elif dest.function is not None:
            name, _, qualifier = dest.function.partition(":")
            await self.invoker.invoke(
                name, json.dumps(body).encode(), qualifier=qualifier or None, invocation_type=EVENT
            )

    def _failure_record(self, records: Sequence[StreamRecord], **kw: Any) -> dict[str, Any]:
        return kinesis.on_failure_record(records, **kw)

    def iterator_age(self, shard: int, age: float) -> None:
        self._ages[shard] = age
        self.metrics.iterator_age.labels(*self._labels).set(max(self._ages.values()))
        self.state.iterator_age = max(self._ages.values())

    def count(self, outcome: str, n: int) -> None:
        if n:
            self.metrics.records.labels(*self._labels, outcome).inc(n)
            self.state.counts[outcome] = self.state.counts.get(outcome, 0) + n

    def outcome(self, reason: str, succeeded: int, failed: int) -> None:
        self.metrics.batches.labels(*self._labels, reason).inc()
        self.count("succeeded", succeeded)
        self.count("failed", failed)
        self.state.last_processing_result = (
            "OK" if reason in ("OK", "PartialFailure") else f"PROBLEM: {reason}"
        )


class StreamPollers:
    """The router's mappings on streams."""

    def __init__(
        self,
        invoker: Invoker,
        store: StreamStore,
        queues: WorkQueues | None,
        metrics: SourceMetrics,
        *,
        region: str,
        account: str,
    ) -> None:
        self.invoker = invoker
        self.store = store
        self.queues = queues
        self.metrics = metrics
        self.region = region
        self.account = account
        self.declared: dict[str, Stream] = {}
        self.mappings: dict[str, EventSourceMapping] = {}
        self.running: dict[str, StreamMapping] = {}
        self.active = True
        self._streams: dict[str, Stream] = {}  # what each running mapping was started on

    async def configure(
        self,
        streams: Mapping[str, Stream],
        mappings: Mapping[str, EventSourceMapping],
        *,
        active: bool = True,
    ) -> None:
        """Declare the streams, take the mappings; poll them only when `active`."""
        self.declared = dict(streams)
        for s in streams.values():
            await self.store.declare(
                s.metadata.name, s.spec.shard_count, s.spec.retention_period_hours
            )
        self.mappings = {n: m for n, m in mappings.items() if m.spec.source.stream is not None}
        self.active = active
        polled = self.mappings if active else {}
        for name in list(self.running):
            running = self.running[name]
            esm = polled.get(name)
            if (
                esm is None
                or esm != running.esm
                or streams.get(running.source_name) != self._streams.get(name)
            ):
                await self.running.pop(name).stop()
                self._streams.pop(name, None)
        for name, esm in sorted(polled.items()):
            stream = streams.get(esm.spec.source.stream or "")
            if name in self.running or not esm.spec.enabled or stream is None:
                continue
            m = StreamMapping(
                esm, stream.metadata.name, stream.spec.shard_count, self.store, self.queues,
                self.invoker, self.metrics, region=self.region, account=self.account,
            )  # fmt: skip
            self.running[name] = m
            self._streams[name] = stream
            m.start()

    def state(self, name: str) -> MappingState:
        if name in self.running:
            return self.running[name].state
        esm = self.mappings[name]
        if not esm.spec.enabled:
            return MappingState(name, state="Disabled")
        if not self.active:
            return standby(name)
        return MappingState(name, state="Failed", reason=f"no Stream {esm.spec.source.stream!r}")

    async def put(self, stream: str, partition_key: str, data: bytes) -> StreamRecord:
        s = self.declared[stream]
        return await self.store.put(stream, s.spec.shard_count, partition_key, data)

    async def stop(self) -> None:
        for name in list(self.running):
            await self.running.pop(name).stop()
