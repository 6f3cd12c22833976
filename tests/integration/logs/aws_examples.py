"""The record shapes AWS documents for Lambda's JSON log format, as data to compare with.

From the Lambda Developer Guide: "Using Lambda advanced logging controls with Python"
(application records written by the standard `logging` module, with and without an
exception) and the Telemetry API event schema reference (platform.initStart,
platform.start, platform.runtimeDone and platform.report). Keys marked optional there
(`tracing`, `spans`, `initDurationMs`, ...) are in OPTIONAL.
"""

from __future__ import annotations

from typing import Any

APPLICATION_INFO: dict[str, Any] = {
    "timestamp": "2023-10-27T19:17:45.586Z",
    "level": "INFO",
    "message": "Inside the handler function",
    "logger": "root",
    "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189",
}

APPLICATION_EXCEPTION: dict[str, Any] = {
    "timestamp": "2023-10-27T19:17:45.586Z",
    "level": "ERROR",
    "message": "Something went wrong",
    "logger": "root",
    "stackTrace": [
        '  File "/var/task/lambda_function.py", line 15, in lambda_handler\n'
        '    raise Exception("Exception raised")\n'
    ],
    "errorType": "Exception",
    "errorMessage": "Exception raised",
    "requestId": "3f9d155c-0f09-46b7-bdf1-e91dab220855",
    "location": "/var/task/lambda_function.py:lambda_handler:17",
}

PLATFORM_INIT_START: dict[str, Any] = {
    "time": "2022-10-12T00:00:15.064Z",
    "type": "platform.initStart",
    "record": {
        "initializationType": "on-demand",
        "phase": "init",
        "runtimeVersion": "nodejs-14.v3",
        "runtimeVersionArn": "arn",
        "functionName": "myFunction",
        "functionVersion": "$LATEST",
    },
}

PLATFORM_START: dict[str, Any] = {
    "time": "2022-10-12T00:00:15.064Z",
    "type": "platform.start",
    "record": {
        "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa",
        "version": "$LATEST",
        "tracing": {"spanId": "54565fb41ac79632", "type": "X-Amzn-Trace-Id", "value": "x"},
    },
}

PLATFORM_RUNTIME_DONE: dict[str, Any] = {
    "time": "2022-10-12T00:01:15.000Z",
    "type": "platform.runtimeDone",
    "record": {
        "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa",
        "status": "success",
        "metrics": {"durationMs": 140.0, "producedBytes": 16},
        "spans": [],
        "tracing": {"spanId": "54565fb41ac79632", "type": "X-Amzn-Trace-Id", "value": "x"},
    },
}

PLATFORM_REPORT: dict[str, Any] = {
    "time": "2022-10-12T00:01:15.000Z",
    "type": "platform.report",
    "record": {
        "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa",
        "metrics": {
            "durationMs": 693.92,
            "billedDurationMs": 694,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 84,
            "initDurationMs": 397.68,
        },
        "status": "success",
        "spans": [],
        "tracing": {"spanId": "54565fb41ac79632", "type": "X-Amzn-Trace-Id", "value": "x"},
    },
}

OPTIONAL = {"tracing", "spans", "initDurationMs", "producedBytes", "errorType"}


def same_shape(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Where `ours` differs from AWS's example in keys or value types ([] when alike)."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: an object in AWS's example, {type(ours).__name__} here"]
        problems = [f"{path}.{k}: missing" for k in theirs if k not in ours and k not in OPTIONAL]
        problems += [f"{path}.{k}: not in AWS's example" for k in ours if k not in theirs]
        for k in theirs.keys() & ours.keys():
            problems += same_shape(ours[k], theirs[k], f"{path}.{k}")
        return problems
    number = (int, float)
    if isinstance(theirs, number) and not isinstance(theirs, bool):
        return [] if isinstance(ours, number) else [f"{path}: a number in AWS's example"]
    if type(ours) is not type(theirs):
        return [f"{path}: {type(theirs).__name__} in AWS's example, {type(ours).__name__} here"]
    return []
