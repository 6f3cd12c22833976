"""Stream stores on NATS JetStream (see streamstore.py), for cluster mode and for NATS
clients as producers.

Each Stream is a file-backed JetStream stream `<P>_KS_<name>` with limits retention
(`max_age` = the retention period) on `<s>.records.<name>.<shard>`: one subject per shard,
so a shard's records are in order and read by sequence (`get_msg` with `next`). The
partition key rides in the `Klambda-Partition-Key` header. A NATS client that publishes
itself picks the shard with the partition key's hash (klambda.triggers.kinesis.shard_of).
Mappings' checkpoints are keys `<mapping>.<shard>` of the key-value bucket
`<P>_CHECKPOINTS`, replicated like the streams: a router restarted, or another replica,
goes on from the last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

import nats
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.kv import KeyValue

from klambda.queue.backend import check_queue_name
from klambda.triggers.kinesis import StreamRecord, shard_of

PARTITION_KEY_HEADER = "Klambda-Partition-Key"


class JetStreamStreamStore:
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
        self.prefix = stream_prefix
        self.subjects = subject_prefix
        self.replicas = replicas
        self.request_timeout = request_timeout
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the JetStream stream store is not open")
        return self._js

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the JetStream stream store is not open")
        return self._kv

    def stream_name(self, stream: str) -> str:
        return f"{self.prefix}_KS_{check_queue_name(stream)}"

    def subject(self, stream: str, shard: int) -> str:
        return f"{self.subjects}.records.{check_queue_name(stream)}.{shard}"

    async def open(self) -> None:
        if self._nc is not None:
            return
        self._nc = await nats.connect(
            self.servers, name="klambda-streams", max_reconnect_attempts=-1
        )
        self._js = self._nc.jetstream(timeout=self.request_timeout)
        self._kv = await self._js.create_key_value(
            bucket=f"{self.prefix}_CHECKPOINTS", replicas=self.replicas
        )

    async def close(self) -> None:
        nc, self._nc, self._js, self._kv = self._nc, None, None, None
        if nc is not None:
            await nc.close()

    async def declare(self, stream: str, shards: int, retention_hours: int) -> None:
        config = StreamConfig(
            name=self.stream_name(stream),
            subjects=[f"{self.subjects}.records.{stream}.*"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=retention_hours * 3600.0,
            num_replicas=self.replicas,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await self.js.update_stream(config)

    async def put(self, stream: str, shards: int, partition_key: str, data: bytes) -> StreamRecord:
        shard = shard_of(partition_key, shards)
        now = time.time()
        ack = await self.js.publish(
            self.subject(stream, shard),
            data,
            stream=self.stream_name(stream),
            headers={PARTITION_KEY_HEADER: partition_key},
        )
        return StreamRecord(shard, int(ack.seq), partition_key, data, now)

    async def read(self, stream: str, shard: int, after: int, limit: int) -> Sequence[StreamRecord]:
        out: list[StreamRecord] = []
        seq = after + 1
        subject = self.subject(stream, shard)
        while len(out) < limit:
            try:
                m = await self.js.get_msg(
                    self.stream_name(stream), seq=seq, subject=subject, next=True
                )
            except nats.js.errors.NotFoundError:
                break
            key = (m.headers or {}).get(PARTITION_KEY_HEADER, "")
            at = m.time.timestamp() if m.time else time.time()
            out.append(StreamRecord(shard, int(m.seq or seq), key, m.data or b"", at))
            seq = int(m.seq or seq) + 1
        return out

    async def last_sequence(self, stream: str, shard: int) -> int:
        try:
            m = await self.js.get_last_msg(self.stream_name(stream), self.subject(stream, shard))
        except nats.js.errors.NotFoundError:
            return 0
        return int(m.seq or 0)

    async def sequence_before(self, stream: str, shard: int, timestamp: float) -> int:
        # get_msg has no start time: the shard is scanned from its oldest record
        last = 0
        while True:
            page = await self.read(stream, shard, last, 256)
            for r in page:
                if r.arrived_at >= timestamp:
                    return last
                last = r.sequence
            if not page:
                return last

    async def checkpoint(self, mapping: str, shard: int) -> int | None:
        try:
            entry = await self.kv.get(f"{mapping}.{shard}")
        except nats.js.errors.KeyNotFoundError:
            return None
        return int((entry.value or b"0").decode())

    async def set_checkpoint(self, mapping: str, shard: int, sequence: int) -> None:
        await self.kv.put(f"{mapping}.{shard}", str(sequence).encode())


def open_stream_store(url: str) -> JetStreamStreamStore | None:
    """JetStream when the router's queue URL is a NATS one, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        return None
    params = dict(parse_qsl(parts.query))
    servers = [f"{parts.scheme}://{h}" for h in parts.netloc.split(",") if h]
    return JetStreamStreamStore(
        servers or ["nats://127.0.0.1:4222"],
        stream_prefix=params.get("stream_prefix", "KLAMBDA"),
        subject_prefix=params.get("subject_prefix", "klambda"),
        replicas=int(params.get("replicas", "1")),
    )
