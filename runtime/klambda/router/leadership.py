"""Who holds a coordination.k8s.io Lease, and whether another router may take it. Pure.

The routers of a cluster share one Lease for the schedules (`contract.SCHEDULE_LEASE`):
the one named in `holderIdentity` fires every tick, the others wait. As client-go's leader
election does, expiry is judged by the observer's own clock: a record (holder, renewTime,
duration) that has not changed for `leaseDurationSeconds` since this router first saw it
is stale, whatever the other machine's clock says. A holder that stops releases the
Lease (an empty holder), so another router takes it at once.

The last fired tick of every schedule rides in the same Lease, as one annotation holding
a JSON map (`contract.ANNOTATION_SCHEDULE_TICKS`): the router that takes the Lease over
continues after the ticks its predecessor fired, and a restarted router fires no tick
twice.

Written here rather than taken from a library: lightkube (the router's client) has no
leader election, and kubernetes' own Python election is synchronous and thread-based.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from klambda import contract


@dataclass(frozen=True)
class Record:
    """The part of a Lease's spec that decides who holds it."""

    holder: str
    duration_s: int
    renewed: str  # renewTime as written (compared for change, never against our clock)
    acquired: str
    transitions: int


def record_of(lease: dict[str, Any]) -> Record:
    spec = lease.get("spec") or {}
    return Record(
        holder=str(spec.get("holderIdentity") or ""),
        duration_s=int(spec.get("leaseDurationSeconds") or 0),
        renewed=str(spec.get("renewTime") or ""),
        acquired=str(spec.get("acquireTime") or ""),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def may_take(record: Record, me: str, unchanged_for_s: float) -> bool:
    """Whether `me` may write itself as the holder: nobody holds it, `me` does, or the
    record has not changed for its whole duration (by this router's clock)."""
    if not record.holder or record.holder == me:
        return True
    return unchanged_for_s >= record.duration_s


def micro_time(t: datetime) -> str:
    """metav1.MicroTime's form, e.g. 2024-01-01T12:00:00.000000Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def held_spec(record: Record, me: str, now: datetime, duration_s: int) -> dict[str, Any]:
    """The Lease's spec with `me` holding it from `now` (a renewal when it already did)."""
    mine = record.holder == me
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": duration_s,
        "acquireTime": record.acquired if mine and record.acquired else micro_time(now),
        "renewTime": micro_time(now),
        "leaseTransitions": record.transitions + (0 if mine or not record.holder else 1),
    }


def released_spec(record: Record, now: datetime) -> dict[str, Any]:
    """The spec a stopping holder leaves: nobody holds it (client-go's release)."""
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": record.acquired or micro_time(now),
        "renewTime": micro_time(now),
        "leaseTransitions": record.transitions,
    }


def ticks_of(lease: dict[str, Any]) -> dict[str, float]:
    """The last fired tick of each schedule (epoch seconds) kept in the Lease; a malformed
    annotation counts as none."""
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    try:
        raw = json.loads(annotations.get(contract.ANNOTATION_SCHEDULE_TICKS, "{}"))
        return {str(k): float(v) for k, v in raw.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def ticks_annotation(ticks: dict[str, float]) -> dict[str, str]:
    return {contract.ANNOTATION_SCHEDULE_TICKS: json.dumps(ticks, sort_keys=True)}
