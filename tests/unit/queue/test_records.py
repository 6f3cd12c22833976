"""Lambda's destination record and DLQ message attributes, from an event's history."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from klambda.queue import AsyncEvent
from klambda.queue.event import Response
from klambda.queue.records import (
    dead_letter_attributes,
    destination_record,
    error_of,
    function_arn,
    json_or_text,
)

T = 1_767_225_600.5  # 2026-01-01T00:00:00.500Z
ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders:$LATEST"


def test_function_arn_names_the_qualifier_or_latest() -> None:
    assert function_arn("orders", None, region="eu-west-1", account_id="1") == (
        "arn:aws:lambda:eu-west-1:1:function:orders:$LATEST"
    )
    assert function_arn("orders", "prod", region="us-east-1", account_id="2").endswith(
        ":function:orders:prod"
    )


def test_a_failure_record_has_lambdas_fields() -> None:
    e = replace(
        AsyncEvent.new("orders", b'{"id": 7}', request_id="r-1"),
        attempts=3,
        last_response=Response(200, "4", "Unhandled", b'{"errorMessage": "no", "errorType": "E"}'),
    )
    assert destination_record(e, "RetriesExhausted", T, ARN) == {
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:00.500Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": ARN,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"id": 7},
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "4",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": "no", "errorType": "E"},
    }


def test_an_event_that_never_ran_has_no_response() -> None:
    e = AsyncEvent.new("orders", b"[1, 2]", request_id="r-2")
    record = destination_record(e, "EventAgeExceeded", T, ARN)
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == [1, 2]
    assert "responseContext" not in record
    assert "responsePayload" not in record


@pytest.mark.parametrize(
    ("data", "value"),
    [(b"", None), (b"null", None), (b'{"a": 1}', {"a": 1}), (b"not json", "not json"), (b"3", 3)],
)
def test_payloads_are_carried_as_json_when_they_are_json(data: bytes, value: object) -> None:
    assert json_or_text(data) == value


def test_dead_letter_attributes_are_lambdas() -> None:
    e = replace(
        AsyncEvent.new("orders", b"{}", request_id="r-3"),
        last_error_type="ValueError",
        last_error="x" * 5000,
        last_response=Response(200, "$LATEST", "Unhandled", b"{}"),
    )
    attrs = dead_letter_attributes(e)
    assert attrs["RequestID"] == "r-3"
    assert attrs["ErrorCode"] == "200"
    assert attrs["ErrorMessage"].startswith("ValueError: xxx")
    assert len(attrs["ErrorMessage"]) == 1024


@pytest.mark.parametrize(
    ("body", "function_error", "expected"),
    [
        ({"errorType": "KeyError", "errorMessage": "'k'"}, "Unhandled", ("KeyError", "'k'")),
        (
            {"errorMessage": "Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"},
            "Unhandled",
            ("Sandbox.Timedout", "Task timed out after 3.00 seconds"),
        ),
        ("plain text", "Unhandled", ("Unhandled", "plain text")),
        ("", None, ("Unhandled", "")),
    ],
)
def test_the_error_of_a_failed_invocation(
    body: object, function_error: str | None, expected: tuple[str, str]
) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert error_of(data, function_error) == expected
