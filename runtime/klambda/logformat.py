"""Lambda's platform log lines: START, END, REPORT, INIT_START, EXTENSION and timeouts, in Lambda's
Text format and, with `loggingConfig.logFormat: JSON`, as its JSON records.

Pure formatting, shared by every place that writes a function's log stream, so the lines
are byte-for-byte what Lambda users grep for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

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
    if phases:
        for name, ms in sorted(phases.items(), key=lambda p: _phase_rank(p[0])):
            parts.append(f"{name.replace('_', ' ').title()}: {ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    if error_type is not None:
        parts.append(f"Error Type: {error_type}")
    return "\t".join(parts) + "\t"


# the order a pool pod's cold start goes through them
PHASES = ("code_download", "specialise", "environment_start", "init", "handler")


def _phase_rank(name: str) -> tuple[int, str]:
    return (PHASES.index(name) if name in PHASES else len(PHASES), name)


def timed_out(request_id: str, timeout_s: float) -> str:
    return f"{timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def timeout_message(timeout_s: float) -> str:
    return f"Task timed out after {timeout_s:.2f} seconds"


def crashed(request_id: str, detail: str, error_type: str) -> str:
    return f"{timestamp()} {request_id} Error: Runtime exited with error: {detail}\n{error_type}"


def extension(name: str, state: str, events: Sequence[str], error_type: str | None) -> str:
    """An extension's state at the end of init (or when it failed)."""
    line = f"EXTENSION\tName: {name}\tState: {state}\tEvents: [{','.join(events)}]"
    return line if error_type is None else f"{line}\tError Type: {error_type}"


class Platform:
    """The platform's records of one function in Lambda's Text format: START, END, REPORT,
    INIT_START and the timeout and crash lines. Every method returns the line to write, or
    None when the function's system log level drops it (never, in Text format)."""

    def init_start(
        self, runtime: str, arn: str, function: str, version: str, initialization: str
    ) -> str | None:
        return init_start(runtime, arn)

    def start(self, request_id: str, version: str) -> str | None:
        return start(request_id, version)

    def end(self, request_id: str, status: str, duration_ms: float) -> str | None:
        return end(request_id)

    def report(
        self,
        request_id: str,
        duration_ms: float,
        memory_mb: int,
        max_memory_used_mb: int,
        init_ms: float | None = None,
        status: str | None = None,
        error_type: str | None = None,
        phases: Mapping[str, float] | None = None,
    ) -> str | None:
        return report(
            request_id,
            duration_ms,
            memory_mb,
            max_memory_used_mb,
            init_ms,
            status,
            error_type,
            phases,
        )

    def timed_out(self, request_id: str, timeout_s: float) -> str | None:
        return timed_out(request_id, timeout_s)

    def crashed(self, request_id: str, detail: str, error_type: str) -> str | None:
        return crashed(request_id, detail, error_type)

    def extension(
        self, name: str, state: str, events: Sequence[str], error_type: str | None = None
    ) -> str | None:
        return extension(name, state, events, error_type)


# The level Lambda gives each platform record, for systemLogLevel (DEBUG < INFO < WARN).
SYSTEM_RANK = {"DEBUG": 10, "INFO": 20, "WARN": 30}
EVENT_LEVEL = {
    "platform.initStart": "INFO",
    "platform.start": "INFO",
    "platform.report": "INFO",
    "platform.runtimeDone": "DEBUG",
    "platform.extension": "INFO",
}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JsonPlatform(Platform):
    """The same records in Lambda's JSON format (`{"time", "type", "record"}`, the Telemetry
    API's event shapes), each dropped below the function's system log level. A timeout or a
    crash is the report's `status` and `errorType` here, not a line of its own."""

    def __init__(self, system_level: str | None) -> None:
        floor = SYSTEM_RANK[system_level or "INFO"]
        self._on = {t for t, level in EVENT_LEVEL.items() if SYSTEM_RANK[level] >= floor}

    def _event(self, kind: str, record: dict[str, Any]) -> str | None:
        if kind not in self._on:
            return None
        return _dumps({"time": timestamp(), "type": kind, "record": record})

    def init_start(
        self, runtime: str, arn: str, function: str, version: str, initialization: str
    ) -> str | None:
        return self._event(
            "platform.initStart",
            {
                "initializationType": initialization,
                "phase": "init",
                "runtimeVersion": runtime,
                "runtimeVersionArn": arn,
                "functionName": function,
                "functionVersion": version,
            },
        )

    def start(self, request_id: str, version: str) -> str | None:
        return self._event("platform.start", {"requestId": request_id, "version": version})

    def end(self, request_id: str, status: str, duration_ms: float) -> str | None:
        return self._event(
            "platform.runtimeDone",
            {
                "requestId": request_id,
                "status": status,
                "metrics": {"durationMs": round(duration_ms, 3)},
            },
        )

    def report(
        self,
        request_id: str,
        duration_ms: float,
        memory_mb: int,
        max_memory_used_mb: int,
        init_ms: float | None = None,
        status: str | None = None,
        error_type: str | None = None,
        phases: Mapping[str, float] | None = None,
    ) -> str | None:
        metrics: dict[str, float] = {
            "durationMs": round(duration_ms, 3),
            "billedDurationMs": billed_ms(duration_ms),
            "memorySizeMB": memory_mb,
            "maxMemoryUsedMB": max_memory_used_mb,
        }
        if init_ms is not None:
            metrics["initDurationMs"] = round(init_ms, 3)
        for name, ms in sorted((phases or {}).items(), key=lambda p: _phase_rank(p[0])):
            # as the Telemetry API names SnapStart's restoreDurationMs
            camel = "".join(w.title() if i else w for i, w in enumerate(name.split("_")))
            metrics[f"{camel}DurationMs"] = round(ms, 3)
        record: dict[str, Any] = {
            "requestId": request_id,
            "metrics": metrics,
            "status": status or "success",
        }
        if error_type is not None:
            record["errorType"] = error_type
        return self._event("platform.report", record)

    def timed_out(self, request_id: str, timeout_s: float) -> str | None:
        return None

    def crashed(self, request_id: str, detail: str, error_type: str) -> str | None:
        return None

    def extension(
        self, name: str, state: str, events: Sequence[str], error_type: str | None = None
    ) -> str | None:
        record: dict[str, Any] = {"name": name, "state": state, "events": list(events)}
        if error_type is not None:
            record["errorType"] = error_type
        return self._event("platform.extension", record)


TEXT = Platform()


def platform(log_format: str, system_level: str | None) -> Platform:
    """The platform's records for a function's loggingConfig."""
    return JsonPlatform(system_level) if log_format == "JSON" else TEXT
