"""Kinesis's side of an event source mapping: which shard a record goes to, the event a
batch becomes, what to do after an invocation, and the on-failure record.

Shards: the MD5 of the partition key, as a 128-bit number, falls in one of `shards` equal
hash-key ranges (how Kinesis splits a new stream's key space evenly).

The event is Lambda's for Kinesis (`Records[].kinesis` with partitionKey, data base64,
sequenceNumber, approximateArrivalTimestamp; eventID `shardId-...:seq`), as the SAM CLI's
`sam local generate-event kinesis get-records` prints it.

After an invocation (`next_step`), by Lambda's rules for streams: success checkpoints the
batch; with ReportBatchItemFailures a reply naming sequence numbers checkpoints before the
lowest one and retries from there (an invalid reply fails the whole batch); a function
error with `bisectBatchOnFunctionError` splits the batch in two and retries each half on
its own, which does not count as a retry; otherwise the batch is retried until
`maximumRetryAttempts` (-1: until the records expire), then its description goes to the
on-failure destination and the shard moves past it. Records older than
`maximumRecordAgeInSeconds` are not invoked: they go to the on-failure destination.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HASH_SPACE = 2**128


@dataclass(frozen=True)
class StreamRecord:
    shard: int
    sequence: int
    partition_key: str
    data: bytes
    arrived_at: float  # seconds since the epoch


def shard_of(partition_key: str, shards: int) -> int:
    h = int.from_bytes(hashlib.md5(partition_key.encode(), usedforsecurity=False).digest())
    return h * shards // HASH_SPACE


def shard_id(shard: int) -> str:
    return f"shardId-{shard:012d}"


def stream_arn(region: str, account: str, stream: str) -> str:
    return f"arn:aws:kinesis:{region}:{account}:stream/{stream}"


def record(r: StreamRecord, *, arn: str, region: str, account: str) -> dict[str, Any]:
    seq = str(r.sequence)
    return {
        "kinesis": {
            "partitionKey": r.partition_key,
            "kinesisSchemaVersion": "1.0",
            "data": base64.b64encode(r.data).decode(),
            "sequenceNumber": seq,
            "approximateArrivalTimestamp": round(r.arrived_at, 3),
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{shard_id(r.shard)}:{seq}",
        "invokeIdentityArn": f"arn:aws:iam::{account}:role/klambda-event-source",
        "eventVersion": "1.0",
        "eventName": "aws:kinesis:record",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def filter_view(r: Mapping[str, Any]) -> dict[str, Any]:
    """What a filter pattern is matched against: the record, and `data` decoded and parsed
    when it is JSON (Lambda's Kinesis filtering: `{"data": {...}}`)."""
    view = dict(r)
    try:
        view["data"] = json.loads(base64.b64decode(r["kinesis"]["data"]))
    except ValueError:
        view["data"] = r["kinesis"]["data"]
    return view


@dataclass(frozen=True)
class Step:
    """What a shard's poller does next with the batch it invoked.

    `checkpoint`: records [0, checkpoint) are done (the position moves past them);
    `retry`: the rest are invoked again (as one batch, or as `halves` when bisecting);
    `give_up`: the rest go to the on-failure destination and the position moves past them.
    """

    checkpoint: int
    retry: bool = False
    halves: bool = False
    give_up: bool = False
    counted: bool = False  # the retry counts against maximumRetryAttempts
    reason: str = "OK"


def next_step(
    sequences: Sequence[int],
    *,
    function_error: bool,
    reply: bytes,
    report_item_failures: bool,
    bisect: bool,
    attempts: int,
    max_retry_attempts: int,
) -> Step:
    """`attempts`: the counted retries this batch (or the one it was split from) has had."""
    n = len(sequences)
    if not function_error and not report_item_failures:
        return Step(n)
    failed_at = 0
    reason = "FunctionError"
    if not function_error:
        failed_at, reason = _first_failure(sequences, reply)
        if failed_at == n:
            return Step(n)
    if function_error and bisect and n - failed_at > 1:
        return Step(failed_at, retry=True, halves=True, reason=reason)
    if max_retry_attempts != -1 and attempts >= max_retry_attempts:
        return Step(failed_at, give_up=True, reason="RetryAttemptsExhausted")
    return Step(failed_at, retry=True, counted=True, reason=reason)


def _first_failure(sequences: Sequence[int], reply: bytes) -> tuple[int, str]:
    """The index of the lowest failed record, or len(sequences) when none failed."""
    n = len(sequences)
    try:
        answer = json.loads(reply) if reply.strip() else None
    except ValueError:
        return 0, "InvalidResponse"
    if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
        return n, "OK"
    items = answer["batchItemFailures"]
    if not isinstance(items, list):
        return 0, "InvalidResponse"
    index = {str(s): i for i, s in enumerate(sequences)}
    lowest = n
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in index:
            return 0, "InvalidResponse"
        lowest = min(lowest, index[ident])
    return lowest, "PartialFailure"


def on_failure_record(
    records: Sequence[StreamRecord],
    *,
    condition: str,
    arn: str,
    function_arn: str,
    mapping: str,
    now: str,
    attempts: int,
) -> dict[str, Any]:
    """What the on-failure destination receives: Lambda's invocation record for a stream,
    with the batch described (`KinesisBatchInfo`), not its data."""
    first, last = records[0], records[-1]
    return {
        "requestContext": {
            "requestId": f"{mapping}:{shard_id(first.shard)}:{first.sequence}",
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts + 1,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": ""},
        "version": "1.0",
        "timestamp": now,
        "KinesisBatchInfo": {
            "shardId": shard_id(first.shard),
            "startSequenceNumber": str(first.sequence),
            "endSequenceNumber": str(last.sequence),
            "approximateArrivalOfFirstRecord": _iso(first.arrived_at),
            "approximateArrivalOfLastRecord": _iso(last.arrived_at),
            "batchSize": len(records),
            "streamArn": arn,
        },
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
