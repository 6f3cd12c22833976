"""Lambda's platform log lines: START, END, REPORT, INIT_START and timeouts.

Pure formatting, shared by every place that writes a function's log stream, so the lines
are byte-for-byte what Lambda users grep for.
"""

from __future__ import annotations

import time

from klambda.pricing import billed_ms


def timestamp(t: float | None = None) -> str:
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def start(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def init_start(runtime: str, function_arn: str) -> str:
    return f"INIT_START Runtime Version: {runtime}\tRuntime Version ARN: {function_arn}"


def report(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    if error_type is not None:
        parts.append(f"Error Type: {error_type}")
    return "\t".join(parts) + "\t"


def timed_out(request_id: str, timeout_s: float) -> str:
    return f"{timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def timeout_message(timeout_s: float) -> str:
    return f"Task timed out after {timeout_s:.2f} seconds"
