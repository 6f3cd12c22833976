"""The seam where SAM's event sources become klambda's triggers.

A SAM function's `Events` map names each trigger and its `Type` (Schedule, HttpApi, SNS,
Api, SQS, S3, ...). klambda's Function spec takes triggers in its own `events` map where a
release supports them; `MAPPERS` holds, per SAM event type, how one event's Properties
become one entry of that map. This release's Function spec has no `events`, so every type is
named as unsupported (`klambda deploy --ignore-unsupported` deploys the rest). Supporting
one is adding its mapper here, e.g. Schedule's `{"type": "Schedule", "schedule": ...}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# SAM event type -> (logical id, Properties) -> one entry of the Function's `events`
MAPPERS: dict[str, Callable[[str, Mapping[str, Any]], dict[str, Any]]] = {}


def events_of(where: str, events: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the Function's `events` entries, the problems naming each unsupported event)."""
    mapped: dict[str, Any] = {}
    problems: list[str] = []
    for name, event in events.items():
        kind = str((event or {}).get("Type", "?"))
        mapper = MAPPERS.get(kind)
        if mapper is None:
            problems.append(
                f"{where}.Events.{name}: event type {kind} is not supported by this klambda "
                f"(supported: {', '.join(sorted(MAPPERS)) or 'none yet'})"
            )
            continue
        try:
            mapped[name] = mapper(name, (event or {}).get("Properties") or {})
        except ValueError as err:
            problems.append(f"{where}.Events.{name}: {err}")
    return mapped, problems
