"""SQS's side of an event source mapping: the event a batch becomes, what the function's
answer says failed, which records a filter keeps, and how many batches run at once.

The event is Lambda's for SQS (`Records[]` with messageId, receiptHandle, body,
attributes, messageAttributes, md5OfBody, eventSource, eventSourceARN, awsRegion), as the
SAM CLI's `sam local generate-event sqs receive-message` prints it.

Partial batch responses follow Lambda's rules: with ReportBatchItemFailures, a reply of
`{"batchItemFailures": [{"itemIdentifier": id}, ...]}` fails those messages only; an empty
list, a null, an empty object or a reply without the key is a success; a reply that names
an id not in the batch, or an empty or missing identifier, or is not JSON, fails the whole
batch. A function error fails the whole batch either way.

The scaling rule is Lambda's for standard queues: start with 5 concurrent batches, add
more while the queue keeps them busy (Lambda adds up to 300 a minute), back off when the
invocations are throttled, and never go past the cap (`maximumConcurrency`, the
function's reserved concurrency, 1,000).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

START_BATCHES = 5
MAX_BATCHES = 1000
GROWTH_PER_MINUTE = 300


@dataclass(frozen=True)
class Message:
    """A received message, as the queue hands it to a poller."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, str]  # message attributes: name -> string value
    sent_at: float  # seconds since the epoch
    first_received_at: float
    receive_count: int
    sender_id: str = ""


def queue_arn(region: str, account: str, queue: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{queue}"


def record(m: Message, *, arn: str, region: str) -> dict[str, Any]:
    """One element of `Records` in Lambda's SQS event."""
    return {
        "messageId": m.message_id,
        "receiptHandle": m.receipt_handle,
        "body": m.body,
        "attributes": {
            "ApproximateReceiveCount": str(m.receive_count),
            "SentTimestamp": str(int(m.sent_at * 1000)),
            "SenderId": m.sender_id or arn.split(":")[4],
            "ApproximateFirstReceiveTimestamp": str(int(m.first_received_at * 1000)),
        },
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in sorted(m.attributes.items())
        },
        "md5OfBody": hashlib.md5(m.body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def event(messages: Sequence[Message], *, arn: str, region: str) -> dict[str, Any]:
    return {"Records": [record(m, arn=arn, region=region) for m in messages]}


def filter_view(r: Mapping[str, Any]) -> dict[str, Any]:
    """What a filter pattern is matched against: the record, with a JSON body parsed (as
    Lambda does; a body that is not JSON is matched as the string it is)."""
    view = dict(r)
    with contextlib.suppress(ValueError):
        view["body"] = json.loads(r["body"])
    return view


@dataclass(frozen=True)
class BatchResult:
    """What to do with a batch after the invocation: delete `succeeded`, leave `failed` to
    come back after its visibility timeout."""

    succeeded: tuple[str, ...]
    failed: tuple[str, ...]
    reason: str  # "OK", "PartialFailure", "FunctionError", "InvalidResponse"


def batch_result(
    ids: Sequence[str], *, function_error: bool, reply: bytes, report_item_failures: bool
) -> BatchResult:
    """Which messages of a batch succeeded, by Lambda's rules (module docstring)."""
    all_failed = BatchResult((), tuple(ids), "FunctionError")
    if function_error:
        return all_failed
    if not report_item_failures:
        return BatchResult(tuple(ids), (), "OK")
    try:
        answer = json.loads(reply) if reply.strip() else None
    except ValueError:
        return BatchResult((), tuple(ids), "InvalidResponse")
    if not isinstance(answer, dict):
        return BatchResult(tuple(ids), (), "OK")
    items = answer.get("batchItemFailures")
    if not items:
        return BatchResult(tuple(ids), (), "OK")
    if not isinstance(items, list):
        return BatchResult((), tuple(ids), "InvalidResponse")
    known = set(ids)
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not ident or ident not in known:
            return BatchResult((), tuple(ids), "InvalidResponse")
        failed.add(ident)
    return BatchResult(
        tuple(i for i in ids if i not in failed),
        tuple(i for i in ids if i in failed),
        "PartialFailure",
    )


def concurrency_cap(maximum_concurrency: int | None, reserved: int | None) -> int:
    """The most batches a mapping may run at once."""
    cap = MAX_BATCHES
    for limit in (maximum_concurrency, reserved):
        if limit is not None:
            cap = min(cap, limit)
    return max(cap, 0)


@dataclass
class Scaling:
    """How many batches a mapping runs at once, adjusted once a second by `tick`."""

    cap: int
    batches: int = 0

    def __post_init__(self) -> None:
        self.batches = min(START_BATCHES, self.cap)

    def tick(self, *, busy: bool, throttled: bool, cap: int, seconds: float = 1.0) -> int:
        """`busy`: every batch came back full (the queue has more); `throttled`: an
        invocation was refused for concurrency since the last tick."""
        self.cap = cap
        if throttled:
            self.batches = max(1, self.batches // 2)
        elif busy:
            self.batches += max(1, int(GROWTH_PER_MINUTE * seconds / 60))
        self.batches = max(0, min(self.batches, cap))
        return self.batches
