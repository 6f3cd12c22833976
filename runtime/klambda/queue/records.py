"""Lambda's destination record and dead-letter message, pure formatting.

An on-success or on-failure destination receives a JSON record in Lambda's format:

    {"version": "1.0", "timestamp": "2026-01-01T00:00:00.000Z",
     "requestContext": {"requestId": ..., "functionArn": ...:function:NAME:QUALIFIER,
                        "condition": "Success" | "RetriesExhausted" | "EventAgeExceeded",
                        "approximateInvokeCount": N},
     "requestPayload": <the event>,
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                         "functionError": "Unhandled"},
     "responsePayload": <what the function returned, or its error>}

An event that never ran (too old before its first attempt, or refused by every try) has no
response: `approximateInvokeCount` is 0 and the two response keys are left out.

A dead-letter queue receives what Lambda sends to an SQS/SNS DLQ: the original event as the
body, with the attributes `RequestID`, `ErrorCode` and `ErrorMessage`.
"""

from __future__ import annotations

import json
from typing import Any

from klambda import logformat
from klambda.api import limits
from klambda.queue.event import AsyncEvent

RECORD_VERSION = "1.0"
ERROR_MESSAGE_MAX = 1024


def function_arn(function: str, qualifier: str | None, *, region: str, account_id: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{function}:{qualifier or limits.LATEST}"


def json_or_text(data: bytes) -> Any:
    """A payload as the record carries it: parsed JSON, else the text, else None if empty."""
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return data.decode("utf-8", "replace")


def destination_record(
    event: AsyncEvent, condition: str, timestamp: float, arn: str
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "timestamp": logformat.timestamp(timestamp),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": arn,
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": json_or_text(event.payload),
    }
    r = event.last_response
    if r is not None:
        context: dict[str, Any] = {"statusCode": r.status_code}
        if r.executed_version is not None:
            context["executedVersion"] = r.executed_version
        if r.function_error is not None:
            context["functionError"] = r.function_error
        record["responseContext"] = context
        record["responsePayload"] = json_or_text(r.payload)
    return record


def record_bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def dead_letter_attributes(event: AsyncEvent) -> dict[str, str]:
    r = event.last_response
    message = event.last_error or ""
    if event.last_error_type and event.last_error_type not in message:
        message = f"{event.last_error_type}: {message}" if message else event.last_error_type
    return {
        "RequestID": event.request_id,
        "ErrorCode": str(r.status_code if r is not None else 200),
        "ErrorMessage": message[:ERROR_MESSAGE_MAX],
    }


def error_of(payload: bytes, function_error: str | None) -> tuple[str, str]:
    """The (errorType, errorMessage) of a failed invocation's response, as the handler's
    runtime reported them; the function error ("Unhandled") when the body says nothing."""
    body = json_or_text(payload)
    if isinstance(body, dict):
        etype = body.get("errorType")
        emsg = body.get("errorMessage")
        return (
            str(etype) if etype else (function_error or "Unhandled"),
            str(emsg) if emsg is not None else "",
        )
    return function_error or "Unhandled", "" if body is None else str(body)[:ERROR_MESSAGE_MAX]
