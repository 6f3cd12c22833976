"""The fields Logs Insights discovers in a Lambda log record.

Lambda's platform lines carry the invocation's numbers: in Text format in the START, END
and REPORT lines, in JSON format in `platform.*` records. Insights exposes them as
`@type`, `@requestId`, `@duration`, `@billedDuration`, `@memorySize`, `@maxMemoryUsed`
and `@initDuration`; application lines give their level (`[ERROR]\t...` in Text, the
"level" key in JSON) and request id. `discover` is the rule, and the SQL the log store
runs at ingest (klambda.logstore.schema) is checked against it record by record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

REPORT = re.compile(
    r"REPORT RequestId: (?P<rid>\S+)\tDuration: (?P<d>[0-9.]+) ms"
    r"(?:\tBilled Duration: (?P<b>[0-9.]+) ms)?(?:\tMemory Size: (?P<m>[0-9]+) MB)?"
    r"(?:\tMax Memory Used: (?P<u>[0-9]+) MB)?(?:\tInit Duration: (?P<i>[0-9.]+) ms)?"
)
START = re.compile(r"START RequestId: (?P<rid>\S+)")
END = re.compile(r"END RequestId: (?P<rid>\S+)")
APPLICATION = re.compile(r"\[(?P<level>[A-Z]+)\]\t[^\t]*\t(?P<rid>[^\t]*)\t")


@dataclass(frozen=True, slots=True)
class Discovered:
    type: str | None = None
    request_id: str | None = None
    level: str | None = None
    duration: float | None = None
    billed_duration: float | None = None
    memory_size: float | None = None
    max_memory_used: float | None = None
    init_duration: float | None = None


def json_object(message: str) -> dict[str, Any] | None:
    """The message as a JSON object, if it is one."""
    if not message.startswith("{"):
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def discover(message: str) -> Discovered:
    obj = json_object(message)
    if obj is not None:
        return _from_json(obj)
    if message.startswith("REPORT "):
        m = REPORT.match(message)
        if m:
            return Discovered(
                "REPORT",
                m["rid"],
                None,
                float(m["d"]),
                *(float(m[k]) if m[k] else None for k in "bmui"),
            )
    for kind, pattern in (("START", START), ("END", END)):
        if message.startswith(kind + " "):
            m = pattern.match(message)
            if m:
                return Discovered(kind, m["rid"])
    if message.startswith("INIT_START "):
        return Discovered("INIT_START")
    m = APPLICATION.match(message)
    if m:
        return Discovered(None, m["rid"] or None, m["level"])
    return Discovered()


def _from_json(obj: dict[str, Any]) -> Discovered:
    kind = obj.get("type")
    record = obj.get("record")
    if isinstance(kind, str) and kind.startswith("platform.") and isinstance(record, dict):
        metrics = record.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        rid = record.get("requestId")
        numbers = (
            {
                "duration": _number(metrics.get("durationMs")),
                "billed_duration": _number(metrics.get("billedDurationMs")),
                "memory_size": _number(metrics.get("memorySizeMB")),
                "max_memory_used": _number(metrics.get("maxMemoryUsedMB")),
                "init_duration": _number(metrics.get("initDurationMs")),
            }
            if kind == "platform.report"
            else {}
        )
        return Discovered(kind, rid if isinstance(rid, str) else None, None, **numbers)
    level = obj.get("level")
    rid = obj.get("requestId")
    return Discovered(
        None,
        rid if isinstance(rid, str) and rid else None,
        level.upper() if isinstance(level, str) else None,
    )
