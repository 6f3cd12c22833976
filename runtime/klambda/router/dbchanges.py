"""Event source mappings on PostgreSQL tables (DynamoDB Streams' role): row changes read
through logical decoding and delivered in commit order, in DynamoDB Streams' shape.

Each mapping owns a publication of its tables and a logical replication slot with the
built-in `pgoutput` plugin, both created on first start. The poller peeks the slot's
changes with `pg_logical_slot_peek_binary_changes` over an ordinary connection (no
replication connection needed), decodes them (klambda.triggers.pgoutput) and hands them
to the same shard loop as streams (klambda.router.streams: batches, retries, bisect,
on-failure, iterator age). A change's sequence number is its LSN. Once every change of a
transaction is done, the slot is advanced past the transaction's commit
(`pg_replication_slot_advance`): the slot is the position, kept by PostgreSQL, so a
restarted router or database goes on from the first transaction not done: nothing is
missed or skipped; a transaction cut by a crash is delivered again (at-least-once).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from klambda.api.eventsourcemapping import EventSourceMapping, PostgresSource
from klambda.queue.workqueue import WorkQueues
from klambda.router.invoke import Invoker
from klambda.router.pollers import MappingState, standby
from klambda.router.streams import StreamMapping
from klambda.source_metrics import SourceMetrics
from klambda.triggers import dynamodb, kinesis
from klambda.triggers.kinesis import StreamRecord
from klambda.triggers.pgoutput import Begin, Change, Commit, Decoder, Relation

log = logging.getLogger("klambda.router.dbchanges")

PEEK_CHANGES = 5000  # per peek; whole transactions are always returned


def pg_name(mapping: str) -> str:
    """A slot or publication name from a mapping's name."""
    return "klambda_" + re.sub(r"[^a-z0-9_]", "_", mapping.lower())[:54]


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class _Commit:
    last_sequence: int
    end_lsn: int


class PostgresChanges:
    """The StreamStore of one mapping's tables: one shard, positions kept by the slot."""

    def __init__(self, source: PostgresSource, mapping: str) -> None:
        self.source = source
        self.slot = source.slot or pg_name(mapping)
        self.publication = source.publication or pg_name(mapping)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._cache: list[StreamRecord] = []
        self._commits: list[_Commit] = []
        self._done = 0  # the last sequence handed to set_checkpoint in this process
        self._advanced = 0
        self._keys: dict[int, list[str]] = {}

    async def open(self) -> None:
        await self._connection()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        conn = await psycopg.AsyncConnection.connect(self.source.dsn, autocommit=True)
        tables = ", ".join(_quoted(t) for t in self.source.tables)
        cur = await conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", [self.publication]
        )
        if await cur.fetchone() is None:
            await conn.execute(f'CREATE PUBLICATION "{self.publication}" FOR TABLE {tables}')
        else:
            await conn.execute(f'ALTER PUBLICATION "{self.publication}" SET TABLE {tables}')
        cur = await conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [self.slot]
        )
        if await cur.fetchone() is None:
            await conn.execute(
                "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [self.slot]
            )
        self._conn = conn
        return conn

    async def declare(self, stream: str, shards: int, retention_hours: int) -> None:
        return None

    async def put(self, stream: str, shards: int, partition_key: str, data: bytes) -> StreamRecord:
        raise NotImplementedError("a table's changes come from the database")

    async def read(self, stream: str, shard: int, after: int, limit: int) -> Sequence[StreamRecord]:
        if not any(r.sequence > after for r in self._cache):
            await self._peek()
        return [r for r in self._cache if r.sequence > after][:limit]

    async def _peek(self) -> None:
        try:
            conn = await self._connection()
            cur = await conn.execute(
                "SELECT (lsn - '0/0')::bigint, data FROM pg_logical_slot_peek_binary_changes("
                "%s, NULL, %s, 'proto_version', '1', 'publication_names', %s)",
                [self.slot, PEEK_CHANGES, self.publication],
            )
            rows = await cur.fetchall()
        except psycopg.Error:
            await self.close()  # reconnected on the next read
            raise
        decoder = Decoder()
        cache: list[StreamRecord] = []
        commits: list[_Commit] = []
        committed_at = 0.0
        for lsn, data in rows:
            msg = decoder.decode(bytes(data))
            if isinstance(msg, Begin):
                committed_at = msg.committed_at
            elif isinstance(msg, Relation):
                await self._primary_key(msg)
            elif isinstance(msg, Change):
                cache.append(self._record(int(lsn), msg, committed_at))
            elif isinstance(msg, Commit) and cache:
                commits.append(_Commit(cache[-1].sequence, msg.end_lsn))
        self._cache, self._commits = cache, commits

    async def _primary_key(self, rel: Relation) -> None:
        if rel.oid in self._keys:
            return
        conn = await self._connection()
        cur = await conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisprimary",
            [rel.oid],
        )
        names = [str(r[0]) for r in await cur.fetchall()]
        self._keys[rel.oid] = names or [c.name for c in rel.columns if c.key]

    def _record(self, lsn: int, change: Change, committed_at: float) -> StreamRecord:
        rel = change.relation
        body = {
            "kind": change.kind,
            "table": rel.qualified,
            "keys": self._keys.get(rel.oid, [c.name for c in rel.columns if c.key]),
            "types": {c.name: c.type_oid for c in rel.columns},
            "new": change.new,
            "old": change.old,
        }
        return StreamRecord(0, lsn, rel.qualified, json.dumps(body).encode(), committed_at)

    async def last_sequence(self, stream: str, shard: int) -> int:
        return 0

    async def sequence_before(self, stream: str, shard: int, timestamp: float) -> int:
        return 0

    async def checkpoint(self, mapping: str, shard: int) -> int | None:
        # the slot is the position; within a process, what was done is not read again
        return self._done

    async def set_checkpoint(self, mapping: str, shard: int, sequence: int) -> None:
        self._done = max(self._done, sequence)
        done = [c for c in self._commits if c.last_sequence <= self._done]
        if done and done[-1].end_lsn > self._advanced:
            conn = await self._connection()
            await conn.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                [self.slot, lsn_text(done[-1].end_lsn)],
            )
            self._advanced = done[-1].end_lsn


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


class PostgresMapping(StreamMapping):
    """A mapping on a table's changes: the stream loop, DynamoDB Streams' records."""

    def __init__(self, esm: EventSourceMapping, store: PostgresChanges, **kw: Any) -> None:
        super().__init__(esm, store.slot, 1, store, **kw)
        assert esm.spec.source.postgres is not None
        self.view_type = esm.spec.source.postgres.stream_view_type
        self.slot = store.slot

    def _arn(self, table: str) -> str:
        return dynamodb.table_arn(self.region, self.account, table, self.slot)

    def _record(self, r: StreamRecord) -> dict[str, Any]:
        body = json.loads(r.data)
        return dynamodb.record(
            kind=body["kind"],
            keys=body["keys"],
            new=body["new"],
            old=body["old"],
            types=body["types"],
            view_type=self.view_type,
            sequence=r.sequence,
            created_at=r.arrived_at,
            arn=self._arn(body["table"]),
            region=self.region,
        )

    def _filter_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def _failure_record(self, records: Sequence[StreamRecord], **kw: Any) -> dict[str, Any]:
        out = kinesis.on_failure_record(
            records, **{**kw, "arn": self._arn(records[0].partition_key)}
        )
        info = out.pop("KinesisBatchInfo")
        info["startSequenceNumber"] = f"{records[0].sequence:028d}"
        info["endSequenceNumber"] = f"{records[-1].sequence:028d}"
        out["DDBStreamBatchInfo"] = info
        return out


class PostgresPollers:
    """The router's mappings on PostgreSQL tables."""

    def __init__(
        self,
        invoker: Invoker,
        queues: WorkQueues | None,
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
        self.mappings: dict[str, EventSourceMapping] = {}
        self.running: dict[str, PostgresMapping] = {}
        self.active = True

    async def configure(
        self, mappings: Mapping[str, EventSourceMapping], *, active: bool = True
    ) -> None:
        """Take the mappings on tables; read them only when `active`."""
        self.mappings = {n: m for n, m in mappings.items() if m.spec.source.postgres is not None}
        self.active = active
        polled = self.mappings if active else {}
        for name in list(self.running):
            if polled.get(name) != self.running[name].esm:
                await self._stop(name)
        for name, esm in sorted(polled.items()):
            if name in self.running or not esm.spec.enabled:
                continue
            assert esm.spec.source.postgres is not None
            store = PostgresChanges(esm.spec.source.postgres, name)
            m = PostgresMapping(
                esm, store, queues=self.queues, invoker=self.invoker, metrics=self.metrics,
                region=self.region, account=self.account,
            )  # fmt: skip
            self.running[name] = m
            m.start()

    def state(self, name: str) -> MappingState:
        if name in self.running:
            return self.running[name].state
        if self.active or not self.mappings[name].spec.enabled:
            return MappingState(name, state="Disabled")
        return standby(name)

    async def _stop(self, name: str) -> None:
        m = self.running.pop(name)
        await m.stop()
        assert isinstance(m.store, PostgresChanges)
        await m.store.close()

    async def stop(self) -> None:
        for name in list(self.running):
            await self._stop(name)
