"""The event an EventBridge schedule delivers to its target: a Scheduled Event.

    {"version": "0", "id": "…", "detail-type": "Scheduled Event", "source": "aws.events",
     "account": "…", "time": "2024-01-01T03:00:00Z", "region": "…",
     "resources": ["arn:aws:events:REGION:ACCOUNT:rule/NAME"], "detail": {}}

`time` is the tick the event is for (not when it was sent), `id` is the same for every
delivery of one tick (see `event_id`), so a handler can recognise a repeat.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

# the namespace of klambda's tick ids (uuid5 of it and "<schedule>@<tick>")
TICKS = uuid.UUID("5c0a3d9e-0b7f-4d51-9a43-0f1c6c1e7a2b")
RULE_NAME_MAX = 64


def rule_name(function: str, qualifier: str | None, trigger: str) -> str:
    """The name of the rule a schedule stands for: function[-alias]-trigger (64 at most)."""
    name = "-".join(p for p in (function, qualifier, trigger) if p)
    return name[:RULE_NAME_MAX]


def rule_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def event_id(schedule: str, tick: datetime) -> str:
    """One id per schedule and tick, the same wherever and however often it is computed."""
    return str(uuid.uuid5(TICKS, f"{schedule}@{int(tick.timestamp())}"))


def iso_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(
    *, event_id: str, tick: datetime, region: str, account: str, rule: str
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": iso_time(tick),
        "region": region,
        "resources": [rule],
        "detail": {},
    }
