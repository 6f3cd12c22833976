"""Work queues on NATS JetStream (see workqueue.py for the semantics), for cluster mode
and for any NATS client as a producer.

One file-backed stream with work-queue retention, `<P>_WORK` on `<s>.work.<queue>`: a
message lives until it is acknowledged. Each queue has a durable pull consumer filtered on
its subject, with explicit acks and `ack_wait` = the queue's visibility timeout, so a
received message that is not deleted comes back when the timeout runs out, to whichever
router polls next. The receive count is JetStream's own delivery count
(`num_delivered`); a message delivered more than `maxReceiveCount` times is published to
the DLQ's subject and then acked (SQS's redrive; a crash between the two leaves it in
both, never in neither). Deleting is acking the delivery the receipt handle names.

Any NATS client can send: publish the body to `<s>.work.<queue>` (`klambda.work.orders`
by default), with message attributes as a JSON object in the `Klambda-Attributes` header
and, optionally, a `Klambda-Message-Id` header (else the stream sequence is the id).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

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
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from klambda.queue.backend import check_queue_name
from klambda.queue.workqueue import Redrive
from klambda.triggers.sqs import Message

ATTRIBUTES_HEADER = "Klambda-Attributes"
MESSAGE_ID_HEADER = "Klambda-Message-Id"


class JetStreamWorkQueues:
    def __init__(
        self,
        servers: Sequence[str],
        *,
        stream_prefix: str = "KLAMBDA",
        subject_prefix: str = "klambda",
        replicas: int = 1,
        request_timeout: float = 5.0,
    ) -> None:
        self.servers = list(servers)
        self.stream = f"{stream_prefix}_WORK"
        self.consumer_prefix = f"{stream_prefix}_WORK_"
        self.subjects = subject_prefix
        self.replicas = replicas
        self.request_timeout = request_timeout
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._sub_lock = asyncio.Lock()
        self._held: dict[str, tuple[Msg, float]] = {}  # receipt handle -> delivery, deadline

    def subject(self, queue: str) -> str:
        return f"{self.subjects}.work.{check_queue_name(queue)}"

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the JetStream work queues are not open")
        return self._js

    async def open(self) -> None:
        if self._nc is not None:
            return
        self._nc = await nats.connect(
            self.servers, name="klambda-work-queues", max_reconnect_attempts=-1
        )
        self._js = self._nc.jetstream(timeout=self.request_timeout)
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.subjects}.work.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await self.js.update_stream(config)

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        self._subs.clear()
        self._held.clear()
        if nc is not None:
            await nc.close()

    async def send(self, queue: str, body: str, attributes: Mapping[str, str]) -> str:
        message_id = str(uuid.uuid4())
        await self.js.publish(
            self.subject(queue),
            body.encode(),
            stream=self.stream,
            headers={
                ATTRIBUTES_HEADER: json.dumps(dict(attributes)),
                MESSAGE_ID_HEADER: message_id,
            },
        )
        return message_id

    async def _subscription(
        self, queue: str, visibility_timeout: float
    ) -> JetStreamContext.PullSubscription:
        async with self._sub_lock:
            sub = self._subs.get(queue)
            if sub is None:
                durable = self.consumer_prefix + queue.replace("-", "_")
                config = ConsumerConfig(
                    durable_name=durable,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=max(visibility_timeout, 0.001),
                    max_deliver=-1,
                    max_ack_pending=-1,
                    filter_subject=self.subject(queue),
                )
                try:
                    await self.js.add_consumer(self.stream, config)
                except nats.js.errors.BadRequestError:
                    # declared with another visibility timeout: replaced (what it held is
                    # delivered again, which at-least-once allows)
                    await self.js.delete_consumer(self.stream, durable)
                    await self.js.add_consumer(self.stream, config)
                sub = await self.js.pull_subscribe_bind(durable=durable, stream=self.stream)
                self._subs[queue] = sub
            return sub

    async def receive(
        self, queue: str, max_messages: int, visibility_timeout: float, redrive: Redrive | None
    ) -> Sequence[Message]:
        sub = await self._subscription(queue, visibility_timeout)
        now = time.time()
        self._held = {h: v for h, v in self._held.items() if v[1] > now}
        try:
            msgs = await sub.fetch(max_messages, timeout=0.2)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        out = []
        for msg in msgs:
            meta = msg.metadata
            count = meta.num_delivered or 1
            headers = msg.headers or {}
            if redrive is not None and count > redrive.max_receive_count:
                await self.js.publish(
                    self.subject(redrive.dead_letter_queue), msg.data, stream=self.stream,
                    headers=headers or None,
                )  # fmt: skip
                await msg.ack_sync(timeout=self.request_timeout)
                continue
            sent = meta.timestamp.timestamp() if meta.timestamp else now
            handle = f"{meta.sequence.stream}:{uuid.uuid4().hex}"
            self._held[handle] = (msg, now + visibility_timeout)
            raw = headers.get(ATTRIBUTES_HEADER)
            out.append(
                Message(
                    message_id=headers.get(MESSAGE_ID_HEADER) or str(meta.sequence.stream),
                    receipt_handle=handle,
                    body=msg.data.decode(errors="replace"),
                    attributes=json.loads(raw) if raw else {},
                    sent_at=sent,
                    # JetStream keeps no first-delivery time: the first receive is now,
                    # later ones report the send time
                    first_received_at=now if count == 1 else sent,
                    receive_count=count,
                )
            )
        return out

    async def delete(self, queue: str, receipt_handles: Sequence[str]) -> int:
        n = 0
        for handle in receipt_handles:
            held = self._held.pop(handle, None)
            if held is None:
                continue
            try:
                await held[0].ack_sync(timeout=self.request_timeout)
                n += 1
            except (nats.errors.TimeoutError, nats.js.errors.Error):
                pass  # the lease ran out: the message will come again
        return n

    async def depth(self, queue: str) -> int:
        info = await self.js.stream_info(self.stream, subjects_filter=self.subject(queue))
        return int((info.state.subjects or {}).get(self.subject(queue), 0))

    async def peek(self, queue: str, limit: int = 100) -> Sequence[Message]:
        out: list[Message] = []
        seq = 1
        while len(out) < limit:
            try:
                m = await self.js.get_msg(
                    self.stream, seq=seq, subject=self.subject(queue), next=True
                )
            except nats.js.errors.NotFoundError:
                break
            headers = m.headers or {}
            raw = headers.get(ATTRIBUTES_HEADER)
            sent = m.time.timestamp() if m.time else 0.0
            out.append(
                Message(
                    headers.get(MESSAGE_ID_HEADER) or str(m.seq), "", (m.data or b"").decode(
                        errors="replace"), json.loads(raw) if raw else {}, sent, sent, 0,
                )
            )  # fmt: skip
            seq = (m.seq or seq) + 1
        return out


def open_work_queues(url: str) -> JetStreamWorkQueues | None:
    """JetStream work queues when the router's queue URL is a NATS one (the same server and
    prefixes as the async queue), else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        return None
    params = dict(parse_qsl(parts.query))
    servers = [f"{parts.scheme}://{h}" for h in parts.netloc.split(",") if h]
    return JetStreamWorkQueues(
        servers or ["nats://127.0.0.1:4222"],
        stream_prefix=params.get("stream_prefix", "KLAMBDA"),
        subject_prefix=params.get("subject_prefix", "klambda"),
        replicas=int(params.get("replicas", "1")),
    )
