"""Kinesis's side of event source mappings: shards by hash-key range, the record, and the
step after an invocation (retry, bisect, partial failures, give up)."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter

import pytest
from klambda.triggers import kinesis
from klambda.triggers.kinesis import Step


def test_shards_split_the_hash_key_space_evenly() -> None:
    for shards in (1, 2, 3, 7):
        got = Counter(kinesis.shard_of(f"key-{i}", shards) for i in range(7000))
        assert set(got) == set(range(shards))
        assert min(got.values()) > 7000 / shards * 0.85
    # the top of the range: the largest MD5 lands in the last shard
    top = int.from_bytes(hashlib.md5(b"key-1").digest())
    assert kinesis.shard_of("key-1", 4) == top * 4 // 2**128
    assert kinesis.shard_id(3) == "shardId-000000000003"


def test_record() -> None:
    r = kinesis.StreamRecord(1, 42, "user-7", b'{"a": 1}', 1428537600.123)
    arn = kinesis.stream_arn("us-east-1", "123456789012", "clicks")
    got = kinesis.record(r, arn=arn, region="us-east-1", account="123456789012")
    assert got["kinesis"] == {
        "partitionKey": "user-7",
        "kinesisSchemaVersion": "1.0",
        "data": base64.b64encode(b'{"a": 1}').decode(),
        "sequenceNumber": "42",
        "approximateArrivalTimestamp": 1428537600.123,
    }
    assert got["eventID"] == "shardId-000000000001:42"
    assert got["eventSourceARN"] == "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
    assert kinesis.filter_view(got)["data"] == {"a": 1}


SEQS = [10, 11, 12, 13]


def step(
    *,
    error: bool = False,
    reply: bytes = b"",
    report: bool = False,
    bisect: bool = False,
    attempts: int = 0,
    max_retry: int = -1,
) -> Step:
    return kinesis.next_step(
        SEQS, function_error=error, reply=reply, report_item_failures=report, bisect=bisect,
        attempts=attempts, max_retry_attempts=max_retry,
    )  # fmt: skip


def failing(*ids: str) -> bytes:
    items = ", ".join(f'{{"itemIdentifier": "{i}"}}' for i in ids)
    return f'{{"batchItemFailures": [{items}]}}'.encode()


def again(at: int, reason: str) -> Step:
    return Step(at, retry=True, counted=True, reason=reason)


def exhausted(at: int) -> Step:
    return Step(at, give_up=True, reason="RetryAttemptsExhausted")


ERR = {"error": True}
REPORT = {"report": True}


@pytest.mark.parametrize(
    ("kwargs", "want"),
    [
        ({}, Step(4)),
        (ERR, again(0, "FunctionError")),
        ({**ERR, "max_retry": 2, "attempts": 1}, again(0, "FunctionError")),
        ({**ERR, "max_retry": 2, "attempts": 2}, exhausted(0)),
        ({**ERR, "max_retry": 0}, exhausted(0)),
        # bisect splits without counting, whatever the attempts so far
        ({**ERR, "bisect": True, "max_retry": 0}, Step(0, True, True, reason="FunctionError")),
        # a reply naming sequence numbers: checkpoint before the lowest, retry the rest
        ({**REPORT, "reply": failing("13", "12")}, again(2, "PartialFailure")),
        ({**REPORT, "reply": failing()}, Step(4)),
        ({**REPORT, "reply": failing("99")}, again(0, "InvalidResponse")),
        ({**REPORT, "reply": b"nope"}, again(0, "InvalidResponse")),
        ({**REPORT, "reply": failing("11"), "max_retry": 0}, exhausted(1)),
    ],
)  # fmt: skip
def test_next_step(kwargs: dict[str, object], want: Step) -> None:
    assert step(**kwargs) == want  # type: ignore[arg-type]


def test_a_single_poison_record_is_not_split() -> None:
    got = kinesis.next_step(
        [7], function_error=True, reply=b"", report_item_failures=False, bisect=True,
        attempts=1, max_retry_attempts=1,
    )  # fmt: skip
    assert got == Step(0, give_up=True, reason="RetryAttemptsExhausted")


def test_on_failure_record_describes_the_batch() -> None:
    rs = [kinesis.StreamRecord(2, s, "k", b"x", 1700000000.0 + s) for s in (5, 6)]
    got = kinesis.on_failure_record(
        rs, condition="RetryAttemptsExhausted", arn="arn:s", function_arn="arn:f",
        mapping="m", now="2024-01-01T00:00:00.000Z", attempts=2,
    )  # fmt: skip
    assert got["KinesisBatchInfo"] == {
        "shardId": "shardId-000000000002",
        "startSequenceNumber": "5",
        "endSequenceNumber": "6",
        "approximateArrivalOfFirstRecord": "2023-11-14T22:13:25.000Z",
        "approximateArrivalOfLastRecord": "2023-11-14T22:13:26.000Z",
        "batchSize": 2,
        "streamArn": "arn:s",
    }
    assert got["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert got["requestContext"]["approximateInvokeCount"] == 3
