"""SQS's side of event source mappings: partial batch responses by Lambda's rules, the
scaling rule, the event's record."""

from __future__ import annotations

import hashlib
import json

import pytest
from klambda.triggers import filterpolicy, sqs

IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("function_error", "reply", "report", "succeeded", "failed", "reason"),
    [
        (
            False,
            b'{"batchItemFailures": [{"itemIdentifier": "b"}]}',
            True,
            "ac",
            "b",
            "PartialFailure",
        ),
        (False, b'{"batchItemFailures": []}', True, "abc", "", "OK"),
        (False, b'{"batchItemFailures": null}', True, "abc", "", "OK"),
        (False, b"{}", True, "abc", "", "OK"),
        (False, b"null", True, "abc", "", "OK"),
        (False, b"", True, "abc", "", "OK"),
        (False, b'"done"', True, "abc", "", "OK"),
        # an id not in the batch, an empty or missing one: the whole batch failed
        (
            False,
            b'{"batchItemFailures": [{"itemIdentifier": "z"}]}',
            True,
            "",
            "abc",
            "InvalidResponse",
        ),
        (
            False,
            b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
            True,
            "",
            "abc",
            "InvalidResponse",
        ),
        (False, b'{"batchItemFailures": [{}]}', True, "", "abc", "InvalidResponse"),
        (False, b'{"batchItemFailures": "b"}', True, "", "abc", "InvalidResponse"),
        (False, b"not json", True, "", "abc", "InvalidResponse"),
        # without ReportBatchItemFailures the reply is not read
        (False, b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', False, "abc", "", "OK"),
        (True, b'{"errorMessage": "boom"}', True, "", "abc", "FunctionError"),
        (True, b"", False, "", "abc", "FunctionError"),
    ],
)
def test_batch_result(
    function_error: bool, reply: bytes, report: bool, succeeded: str, failed: str, reason: str
) -> None:
    got = sqs.batch_result(
        IDS, function_error=function_error, reply=reply, report_item_failures=report
    )
    assert got == sqs.BatchResult(tuple(succeeded), tuple(failed), reason)


@pytest.mark.parametrize(
    ("maximum", "reserved", "cap"),
    [(None, None, 1000), (5, None, 5), (None, 2, 2), (10, 3, 3), (2, 50, 2), (None, 0, 0)],
)
def test_cap(maximum: int | None, reserved: int | None, cap: int) -> None:
    assert sqs.concurrency_cap(maximum, reserved) == cap


def test_scaling_starts_at_five_grows_while_busy_halves_on_throttles() -> None:
    s = sqs.Scaling(cap=1000)
    assert s.batches == 5
    assert s.tick(busy=True, throttled=False, cap=1000) == 10  # 300 a minute: 5 a second
    assert s.tick(busy=True, throttled=False, cap=1000) == 15
    assert s.tick(busy=False, throttled=False, cap=1000) == 15  # not busy: hold
    assert s.tick(busy=True, throttled=True, cap=1000) == 7  # throttled: halve
    assert s.tick(busy=True, throttled=False, cap=9) == 9  # never past the cap
    assert s.tick(busy=False, throttled=False, cap=2) == 2  # a cap lowered: obeyed at once


def test_scaling_starts_under_a_small_cap() -> None:
    assert sqs.Scaling(cap=2).batches == 2


MESSAGE = sqs.Message(
    message_id="m-1",
    receipt_handle="7:abc",
    body='{"kind": "paid", "amount": 12}',
    attributes={"source": "web"},
    sent_at=1523232000.0,
    first_received_at=1523232000.001,
    receive_count=1,
)
ARN = "arn:aws:sqs:us-east-1:123456789012:orders"


def test_record() -> None:
    r = sqs.record(MESSAGE, arn=ARN, region="us-east-1")
    assert r["attributes"] == {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1523232000000",
        "SenderId": "123456789012",
        "ApproximateFirstReceiveTimestamp": "1523232000001",
    }
    assert r["messageAttributes"] == {
        "source": {
            "stringValue": "web",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert r["md5OfBody"] == hashlib.md5(MESSAGE.body.encode()).hexdigest()
    assert (r["eventSource"], r["eventSourceARN"], r["awsRegion"]) == ("aws:sqs", ARN, "us-east-1")


@pytest.mark.parametrize(
    ("pattern", "body", "kept"),
    [
        ({"body": {"kind": ["paid"]}}, '{"kind": "paid"}', True),
        ({"body": {"kind": ["paid"]}}, '{"kind": "refund"}', False),
        ({"body": {"amount": [{"numeric": [">", 10]}]}}, '{"amount": 12}', True),
        ({"body": ["plain text"]}, "plain text", True),  # a body that is not JSON
        ({"attributes": {"ApproximateReceiveCount": ["1"]}}, "x", True),
        ({"messageAttributes": {"source": {"stringValue": [{"prefix": "w"}]}}}, "x", True),
    ],
)
def test_filter_patterns_match_lambdas_fields(
    pattern: dict[str, object], body: str, kept: bool
) -> None:
    filterpolicy.check(pattern, "MessageBody")
    m = sqs.Message("m", "1:t", body, {"source": "web"}, 0.0, 0.0, 1)
    view = json.dumps(sqs.filter_view(sqs.record(m, arn=ARN, region="us-east-1")))
    assert filterpolicy.matches(pattern, "MessageBody", {}, view) is kept
