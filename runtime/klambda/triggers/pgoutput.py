"""PostgreSQL's logical replication messages (the built-in `pgoutput` plugin, protocol
version 1), decoded into row changes.

Each message is one row of `pg_logical_slot_peek_binary_changes(...)`: Begin, Relation
(a table's columns, sent before its first change in a session), Insert, Update, Delete,
Commit; Type, Origin and Truncate are read and passed over. Values come in PostgreSQL's
text form, with the column's type OID from the Relation message.

Written here because the one Python decoder of pgoutput on PyPI (pypgoutput, 0.0.3, 2022)
is unmaintained and drives the replication protocol itself; the format is small and
documented ("Logical Replication Message Formats" in PostgreSQL's manual). pgoutput is
chosen over wal2json because it ships with PostgreSQL: nothing more to install on the
database server.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


Row = dict[str, str | None]  # column -> text value (None: SQL NULL); unchanged TOAST left out


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    committed_at: float  # seconds since the epoch
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    committed_at: float


@dataclass(frozen=True)
class Change:
    kind: str  # INSERT, MODIFY, REMOVE (DynamoDB Streams' names)
    relation: Relation
    new: Row | None
    old: Row | None  # the old row (REPLICA IDENTITY FULL) or its key columns only
    old_is_key_only: bool


Message = Begin | Commit | Change | Relation | None


class DecodeError(ValueError):
    pass


@dataclass
class _Reader:
    data: bytes
    pos: int = 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DecodeError("message truncated")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def byte(self) -> str:
        if self.pos >= len(self.data):
            raise DecodeError("message truncated")
        c = chr(self.data[self.pos])
        self.pos += 1
        return c

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError("unterminated string")
        s = self.data[self.pos : end].decode()
        self.pos = end + 1
        return s

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError("message truncated")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b


def _time(micros: int) -> float:
    return (PG_EPOCH + timedelta(microseconds=micros)).timestamp()


@dataclass
class Decoder:
    """Keeps the relations seen so far; `decode` turns one message into what it says."""

    relations: dict[int, Relation] = field(default_factory=dict)

    def decode(self, data: bytes) -> Message:
        r = _Reader(data)
        tag = r.byte()
        if tag == "B":
            return Begin(r.take(">Q"), _time(r.take(">q")), r.take(">I"))
        if tag == "C":
            r.take(">B")
            return Commit(r.take(">Q"), r.take(">Q"), _time(r.take(">q")))
        if tag == "R":
            oid = r.take(">I")
            schema, name = r.string(), r.string()
            r.take(">B")  # replica identity setting
            cols = []
            for _ in range(r.take(">H")):
                flags = r.take(">B")
                col = r.string()
                type_oid = r.take(">I")
                r.take(">i")  # type modifier
                cols.append(Column(col, type_oid, bool(flags & 1)))
            rel = Relation(oid, schema or "public", name, tuple(cols))
            self.relations[oid] = rel
            return rel
        if tag in "IUD":
            rel = self._relation(r.take(">I"))
            new = old = None
            key_only = False
            sub = r.byte()
            if tag in "UD" and sub in "KO":
                old = self._tuple(r, rel)
                key_only = sub == "K"
                if tag == "U":
                    sub = r.byte()
            if tag in "IU":
                if sub != "N":
                    raise DecodeError(f"expected a new tuple, got {sub!r}")
                new = self._tuple(r, rel)
            kind = {"I": "INSERT", "U": "MODIFY", "D": "REMOVE"}[tag]
            return Change(kind, rel, new, old, key_only)
        return None  # Type, Origin, Truncate, logical messages: nothing to deliver

    def _relation(self, oid: int) -> Relation:
        rel = self.relations.get(oid)
        if rel is None:
            raise DecodeError(f"a change of relation {oid} before its Relation message")
        return rel

    def _tuple(self, r: _Reader, rel: Relation) -> Row:
        row: Row = {}
        n = r.take(">H")
        for i in range(n):
            col = rel.columns[i].name if i < len(rel.columns) else f"column{i}"
            kind = r.byte()
            if kind == "n":
                row[col] = None
            elif kind == "t":
                row[col] = r.raw(r.take(">I")).decode()
            elif kind == "b":
                row[col] = r.raw(r.take(">I")).hex()
            # "u": an unchanged TOASTed value, not sent: left out
        return row
