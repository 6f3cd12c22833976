"""Lambda's platform log lines: START, END, REPORT, INIT_START and timeouts.

Pure formatting, shared by every place that writes a function's log stream, so the lines
are byte-for-byte what Lambda users grep for.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

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
    phases: Mapping[str, float] | None = None,
) -> str:
    """Lambda's REPORT line. `phases` are the cold start's steps before init, in ms (a
    pool pod's code download and specialisation): written after Init Duration, each as
    `Title Case Name: 1.23 ms`, as Lambda writes SnapStart's Restore Duration there."""
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    for name, ms in sorted((phases or {}).items(), key=lambda p: _phase_rank(p[0])):
        parts.append(f"{name.replace('_', ' ').title()}: {ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    if error_type is not None:
        parts.append(f"Error Type: {error_type}")
    return "\t".join(parts) + "\t"


# the order a pool pod's cold start goes through them
PHASES = ("code_download", "specialise", "init", "handler")


def _phase_rank(name: str) -> tuple[int, str]:
    return (PHASES.index(name) if name in PHASES else len(PHASES), name)


def timed_out(request_id: str, timeout_s: float) -> str:
    return f"{timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def timeout_message(timeout_s: float) -> str:
    return f"Task timed out after {timeout_s:.2f} seconds"
