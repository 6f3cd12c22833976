"""pgoutput's messages decoded into changes, and DynamoDB Streams' record built from them.
The messages are written here byte by byte from PostgreSQL's documented format."""

from __future__ import annotations

import struct

import pytest
from klambda.triggers import dynamodb
from klambda.triggers.pgoutput import Begin, Change, Commit, DecodeError, Decoder, Relation


def s(text: str) -> bytes:
    return text.encode() + b"\0"


RELATION = (
    b"R" + struct.pack(">I", 16384) + s("public") + s("orders") + b"f" + struct.pack(">H", 3)
    + b"\x01" + s("id") + struct.pack(">Ii", 23, -1)
    + b"\x00" + s("item") + struct.pack(">Ii", 25, -1)
    + b"\x00" + s("paid") + struct.pack(">Ii", 16, -1)
)  # fmt: skip


def tup(*values: str | None) -> bytes:
    out = struct.pack(">H", len(values))
    for v in values:
        out += b"n" if v is None else b"t" + struct.pack(">I", len(v.encode())) + v.encode()
    return out


OID = struct.pack(">I", 16384)
BOOK = {"id": "1", "item": "book", "paid": "f"}


def decoded() -> Decoder:
    d = Decoder()
    assert isinstance(d.decode(RELATION), Relation)
    return d


def test_relation() -> None:
    rel = decoded().relations[16384]
    assert rel.qualified == "public.orders"
    assert [(c.name, c.type_oid, c.key) for c in rel.columns] == [
        ("id", 23, True), ("item", 25, False), ("paid", 16, False),
    ]  # fmt: skip


def test_begin_and_commit() -> None:
    d = Decoder()
    b = d.decode(b"B" + struct.pack(">QqI", 0x1000, 1_000_000, 7))
    assert b == Begin(0x1000, 946684801.0, 7)  # 1 s after PostgreSQL's epoch, 2000-01-01
    c = d.decode(b"C" + struct.pack(">BQQq", 0, 0x1000, 0x1010, 0))
    assert c == Commit(0x1000, 0x1010, 946684800.0)


@pytest.mark.parametrize(
    ("message", "kind", "new", "old", "key_only"),
    [
        (b"I" + struct.pack(">I", 16384) + b"N" + tup("1", "book", "f"),
         "INSERT", {"id": "1", "item": "book", "paid": "f"}, None, False),
        (b"U" + OID + b"O" + tup("1", "book", "f") + b"N" + tup("1", None, "t"),
         "MODIFY", {"id": "1", "item": None, "paid": "t"}, BOOK, False),
        (b"U" + struct.pack(">I", 16384) + b"N" + tup("1", "b", "t"),
         "MODIFY", {"id": "1", "item": "b", "paid": "t"}, None, False),
        (b"D" + struct.pack(">I", 16384) + b"K" + tup("1", None, None),
         "REMOVE", None, {"id": "1", "item": None, "paid": None}, True),
    ],
)  # fmt: skip
def test_changes(
    message: bytes,
    kind: str,
    new: dict[str, str | None] | None,
    old: dict[str, str | None] | None,
    key_only: bool,
) -> None:
    got = decoded().decode(message)
    assert isinstance(got, Change)
    assert (got.kind, got.new, got.old, got.old_is_key_only) == (kind, new, old, key_only)


def test_unchanged_toast_values_are_left_out() -> None:
    msg = b"I" + struct.pack(">I", 16384) + b"N" + struct.pack(">H", 2) + tup("1")[2:] + b"u"
    got = decoded().decode(msg)
    assert isinstance(got, Change)
    assert got.new == {"id": "1"}


@pytest.mark.parametrize(
    "message",
    [
        b"I" + struct.pack(">I", 999) + b"N" + tup("1"),  # a relation never described
        b"I" + struct.pack(">I", 16384) + b"N" + struct.pack(">H", 1) + b"t\x00\x00\x00\x09ab",
        b"R\x00\x00",
    ],
)
def test_bad_messages(message: bytes) -> None:
    with pytest.raises(DecodeError):
        decoded().decode(message)


def test_other_messages_pass() -> None:
    assert Decoder().decode(b"Y" + struct.pack(">I", 1) + s("public") + s("t")) is None


@pytest.mark.parametrize(
    ("oid", "text", "want"),
    [
        (23, "101", {"N": "101"}),
        (1700, "12.50", {"N": "12.50"}),
        (701, "NaN", {"S": "NaN"}),
        (16, "t", {"BOOL": True}),
        (16, "f", {"BOOL": False}),
        (25, None, {"NULL": True}),
        (17, "\\x0102", {"B": "AQI="}),
        (3802, '{"a": 1}', {"S": '{"a": 1}'}),
        (1184, "2024-01-01 00:00:00+00", {"S": "2024-01-01 00:00:00+00"}),
    ],
)
def test_attribute_values(oid: int, text: str | None, want: dict[str, object]) -> None:
    assert dynamodb.attribute(oid, text) == want


@pytest.mark.parametrize(
    ("view", "parts"),
    [
        ("KEYS_ONLY", {"Keys"}),
        ("NEW_IMAGE", {"Keys", "NewImage"}),
        ("OLD_IMAGE", {"Keys", "OldImage"}),
        ("NEW_AND_OLD_IMAGES", {"Keys", "NewImage", "OldImage"}),
    ],
)
def test_view_types(view: str, parts: set[str]) -> None:
    r = dynamodb.record(
        kind="MODIFY", keys=["id"], new={"id": "1", "q": "2"}, old={"id": "1", "q": "1"},
        types={"id": 23, "q": 23}, view_type=view, sequence=42, created_at=1.5, arn="arn",
        region="us-east-1",
    )  # fmt: skip
    body = r["dynamodb"]
    assert parts == {k for k in body if k in ("Keys", "NewImage", "OldImage")}
    assert body["SequenceNumber"] == "0" * 26 + "42"
    assert body["ApproximateCreationDateTime"] == 1
