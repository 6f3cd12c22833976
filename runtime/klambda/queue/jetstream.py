"""The NATS JetStream queue: durable and shared, for cluster mode.

Three streams, all file-backed (`replicas` copies in a NATS cluster):

    <P>_EVENTS  <s>.events.<function>   work-queue retention: a message lives until acked
    <P>_DLQ     <s>.dlq.<function>      limits retention: dead letters, kept until redriven
    <P>_QUEUES  <s>.queues.<name>       limits retention: named-queue destinations

(`P` is `stream_prefix`, `s` is `subject_prefix`, so several installations or tests can
share one server.) Events are consumed through one durable pull consumer with explicit
acks: `ack_wait` is the visibility timeout. A dispatcher that dies holding messages never
acks them, and JetStream delivers them again once `ack_wait` has passed; the consumer
lives on the server, so a restarted dispatcher (or another replica) picks up where the
dead one was. `extend` sends a work-in-progress ack, so an invocation longer than the
visibility timeout is not delivered twice.

JetStream messages are immutable and a work queue has no scheduled delivery, so a retry
publishes the event again with its new counts and `not_before`, and only then acks the
old message; a receiver that gets an event before its `not_before` gives it back with a
delayed NAK (the server holds it for that long). Moving to the DLQ is likewise "publish
to the DLQ stream, then ack". A crash between the two steps leaves the event in both
places, which at-least-once allows; it never leaves it in neither. Publishes wait for the
stream's acknowledgement, which the server gives after the message is stored (and, with
replicas, after a quorum has it); acks wait for the server's confirmation too, so an event
counted as done is gone from the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RawStreamMsg,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from klambda import ids
from klambda.errors import ServiceUnavailable
from klambda.queue.backend import (
    DeadLetter,
    QueueMessage,
    check_function_name,
    check_queue_name,
    decode_dead_letter,
    encode_dead_letter,
    redriven,
)
from klambda.queue.event import AsyncEvent, decode, encode

log = logging.getLogger("klambda.queue")

ATTRIBUTES_HEADER = "Klambda-Attributes"
#: JetStream's de-duplication header: one id per message, the same on each of its attempts
MSG_ID_HEADER = "Nats-Msg-Id"
PUBLISH_ATTEMPTS = 3
SCAN_PAGE = 256


class JetStreamQueue:
    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        visibility_timeout: float = 30.0,
        stream_prefix: str = "KLAMBDA",
        subject_prefix: str = "klambda",
        replicas: int = 1,
        connect_timeout: float = 5.0,
        request_timeout: float = 5.0,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.visibility_timeout = visibility_timeout
        self.replicas = replicas
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.events_stream = f"{stream_prefix}_EVENTS"
        self.dlq_stream = f"{stream_prefix}_DLQ"
        self.queues_stream = f"{stream_prefix}_QUEUES"
        self.consumer = f"{stream_prefix}_DISPATCHER"
        self.subjects = subject_prefix
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._sub_lock = asyncio.Lock()

    async def __aenter__(self) -> JetStreamQueue:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the JetStream queue is not open")
        return self._js

    def event_subject(self, function: str) -> str:
        return f"{self.subjects}.events.{check_function_name(function)}"

    def dlq_subject(self, function: str | None) -> str:
        return f"{self.subjects}.dlq.{'>' if function is None else check_function_name(function)}"

    def queue_subject(self, name: str) -> str:
        return f"{self.subjects}.queues.{check_queue_name(name)}"

    async def open(self) -> None:
        if self._nc is not None:
            return
        nc = await nats.connect(
            self.servers,
            name="klambda-queue",
            connect_timeout=int(max(1, self.connect_timeout)),
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
        )
        self._nc = nc
        self._js = nc.jetstream(timeout=self.request_timeout)
        await self._ensure_stream(
            StreamConfig(
                name=self.events_stream,
                subjects=[f"{self.subjects}.events.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            )
        )
        for name, kind in ((self.dlq_stream, "dlq"), (self.queues_stream, "queues")):
            await self._ensure_stream(
                StreamConfig(
                    name=name,
                    subjects=[f"{self.subjects}.{kind}.>"],
                    retention=RetentionPolicy.LIMITS,
                    storage=StorageType.FILE,
                    num_replicas=self.replicas,
                )
            )

    async def _ensure_stream(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # It exists with another configuration (say, the replica count changed).
            await self.js.update_stream(config)

    async def close(self) -> None:
        nc, self._nc, self._js, self._sub = self._nc, None, None, None
        if nc is None:
            return
        try:
            await nc.flush(timeout=2)
        except Exception as err:  # closing anyway; unflushed acks mean redelivery only
            log.warning("JetStream queue: flush before close failed: %s", err)
        await nc.close()

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        async with self._sub_lock:
            if self._sub is None:
                config = ConsumerConfig(
                    durable_name=self.consumer,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=self.visibility_timeout,
                    max_deliver=-1,
                    # Delayed retries (NAK with a delay) stay pending on the server; the
                    # dispatcher bounds what it holds itself.
                    max_ack_pending=-1,
                    filter_subject=f"{self.subjects}.events.>",
                )
                try:
                    await self.js.add_consumer(self.events_stream, config)
                except nats.js.errors.BadRequestError as err:
                    log.warning(
                        "JetStream queue: keeping consumer %s as is: %s", self.consumer, err
                    )
                self._sub = await self.js.pull_subscribe_bind(
                    durable=self.consumer, stream=self.events_stream
                )
            return self._sub

    # -- events --------------------------------------------------------------------------

    async def enqueue(self, event: AsyncEvent) -> None:
        await self.publish(self.event_subject(event.function), encode(event), self.events_stream)

    async def publish(
        self, subject: str, data: bytes, stream: str, headers: dict[str, str] | None = None
    ) -> None:
        """Publish and wait for the stream's acknowledgement, trying again when it does not
        come in time (a server busy on a loaded node, a connection being re-established).
        Every attempt carries the same `Nats-Msg-Id`, so the stream's duplicate window drops
        the message again if the first attempt was stored and only its acknowledgement was
        late: a retried publish never becomes two events. After the last attempt the caller
        gets ServiceUnavailable (503, which clients retry), never a bare timeout."""
        headers = {**(headers or {}), MSG_ID_HEADER: ids.random_hex(16)}
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self.js.publish(
                    subject, data, timeout=self.request_timeout, stream=stream, headers=headers
                )
                return
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as err:
                if attempt == PUBLISH_ATTEMPTS:
                    raise ServiceUnavailable(
                        f"the queue's stream {stream} did not store the message within "
                        f"{PUBLISH_ATTEMPTS} attempts of {self.request_timeout:.0f}s: {err!r}"
                    ) from err
                log.warning("JetStream queue: publish to %s, attempt %d: %r", stream, attempt, err)
                if isinstance(err, nats.errors.NoRespondersError):
                    await asyncio.sleep(0.5 * attempt)  # the server is restarting its stream

    async def receive(self, max_events: int, wait: float) -> list[JetStreamDelivery]:
        sub = await self._subscription()
        try:
            msgs = await sub.fetch(max_events, timeout=max(wait, 0.01))
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        now = time.time()
        out = []
        for msg in msgs:
            try:
                event = decode(msg.data)
            except (ValueError, KeyError, TypeError) as err:
                log.error(
                    "JetStream queue: dropping an undecodable message on %s: %s", msg.subject, err
                )
                await msg.term()
                continue
            if event.not_before > now:
                await msg.nak(delay=event.not_before - now)
                continue
            out.append(JetStreamDelivery(self, msg, event))
        return out

    async def depth(self) -> int:
        info = await self.js.stream_info(self.events_stream)
        return int(info.state.messages)

    # -- dead letters --------------------------------------------------------------------

    async def _scan(self, stream: str, subject: str, start: int, limit: int) -> list[RawStreamMsg]:
        """Up to `limit` messages of `subject` from sequence `start` on, oldest first."""
        out: list[RawStreamMsg] = []
        seq = start
        while len(out) < limit:
            try:
                msg = await self.js.get_msg(stream, seq=seq, subject=subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            out.append(msg)
            seq = (msg.seq or seq) + 1
        return out

    async def dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        msgs = await self._scan(self.dlq_stream, self.dlq_subject(function), 1, limit)
        return [decode_dead_letter(m.data or b"") for m in msgs]

    async def dlq_depths(self) -> dict[str, int]:
        info = await self.js.stream_info(self.dlq_stream, subjects_filter=self.dlq_subject(None))
        cut = len(self.subjects) + len(".dlq.")
        return {subj[cut:]: int(n) for subj, n in (info.state.subjects or {}).items() if n}

    async def redrive(self, function: str | None = None, request_id: str | None = None) -> int:
        subject = self.dlq_subject(function)
        n = 0
        seq = 1
        while True:
            page = await self._scan(self.dlq_stream, subject, seq, SCAN_PAGE)
            if not page:
                return n
            now = time.time()
            for msg in page:
                dead = decode_dead_letter(msg.data or b"")
                if request_id is not None and dead.request_id != request_id:
                    continue
                await self.enqueue(redriven(dead.event, now))
                assert msg.seq is not None
                await self.js.delete_msg(self.dlq_stream, msg.seq)
                n += 1
            seq = (page[-1].seq or seq) + 1

    # -- named queues (destinations) ------------------------------------------------------

    async def send(self, queue: str, body: bytes, attributes: Mapping[str, str]) -> None:
        # One JSON header: NATS header values cannot hold the newlines of error messages.
        headers = {ATTRIBUTES_HEADER: json.dumps(dict(attributes))} if attributes else None
        await self.publish(self.queue_subject(queue), body, self.queues_stream, headers)

    async def messages(self, queue: str, limit: int = 100) -> list[QueueMessage]:
        msgs = await self._scan(self.queues_stream, self.queue_subject(queue), 1, limit)
        out = []
        for m in msgs:
            raw = (m.headers or {}).get(ATTRIBUTES_HEADER)
            attrs = json.loads(raw) if raw else {}
            sent = m.time.timestamp() if m.time else 0.0
            out.append(QueueMessage(m.seq or 0, queue, m.data or b"", attrs, sent))
        return out


class JetStreamDelivery:
    def __init__(self, queue: JetStreamQueue, msg: Msg, event: AsyncEvent) -> None:
        self._queue = queue
        self._msg = msg
        self._event = event

    @property
    def event(self) -> AsyncEvent:
        return self._event

    async def ack(self) -> None:
        await self._msg.ack_sync(timeout=self._queue.request_timeout)

    async def retry(self, event: AsyncEvent) -> None:
        await self._queue.enqueue(event)
        await self._msg.ack_sync(timeout=self._queue.request_timeout)

    async def dead_letter(self, dead: DeadLetter) -> None:
        q = self._queue
        await q.publish(q.dlq_subject(dead.function), encode_dead_letter(dead), q.dlq_stream)
        await self._msg.ack_sync(timeout=self._queue.request_timeout)

    async def extend(self) -> None:
        await self._msg.in_progress()

    async def release(self) -> None:
        await self._msg.nak()
