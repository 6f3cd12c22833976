"""metav1.Conditions on klambda resources: set one, keep the others, keep transition times.

`lastTransitionTime` changes only when a condition's status changes, so a resync that
finds nothing new writes nothing (the status patch is skipped when the result equals
what is stored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from klambda.api import Condition

READY = "Ready"  # the resource is realised as written (its summary)
CODE_READY = "CodeReady"  # Functions and Versions: the code snapshot exists
WORKLOAD_READY = "WorkloadReady"  # Deployment and Service (and a proxy's ConfigMap) as built
SCALED = "Scaled"  # Functions and Versions: environments follow demand (see scaling)
ORDER = (READY, CODE_READY, WORKLOAD_READY, SCALED)


def timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, ok: bool, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    """A condition without its transition time (see `merge`)."""
    return Condition(
        type=type_,
        status="True" if ok else "False",
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time="",
    ).wire()


def merge(
    old: Iterable[Mapping[str, Any]], new: Iterable[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """`new` conditions over `old` ones of the same type; transition times kept when the
    status did not change. Types not in `new` are kept as they were."""
    by_type = {str(c.get("type")): dict(c) for c in old if c.get("type")}
    for c in new:
        before = by_type.get(c["type"])
        same = before is not None and before.get("status") == c["status"]
        stamp = before.get("lastTransitionTime") if same and before else None
        by_type[c["type"]] = {**c, "lastTransitionTime": stamp or timestamp(now)}

    def rank(type_: str) -> tuple[int, str]:
        return (ORDER.index(type_) if type_ in ORDER else len(ORDER), type_)

    return [by_type[t] for t in sorted(by_type, key=rank)]


def get(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    for c in conditions:
        if c.get("type") == type_:
            return c
    return None
