"""A usage ledger: requests and billed GB-seconds per function, version and alias, by minute.

`klambda cost report --since 1h` asks the router for this; the Prometheus counters carry
the same totals for dashboards, but a ledger answers "over the last hour" without one.
Minute buckets for a day: a few thousand small entries at most.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

KEEP_MINUTES = 24 * 60


@dataclass
class Usage:
    requests: int = 0
    gb_seconds: float = 0.0
    errors: int = 0


Key = tuple[str, str, str]  # function, version, alias


class UsageLedger:
    def __init__(self) -> None:
        self._minutes: collections.OrderedDict[int, dict[Key, Usage]] = collections.OrderedDict()

    def record(self, now: float, key: Key, gb_seconds: float, error: bool) -> None:
        minute = int(now // 60)
        bucket = self._minutes.get(minute)
        if bucket is None:
            bucket = self._minutes[minute] = {}
            while self._minutes and next(iter(self._minutes)) <= minute - KEEP_MINUTES:
                self._minutes.popitem(last=False)
        u = bucket.get(key)
        if u is None:
            u = bucket[key] = Usage()
        u.requests += 1
        u.gb_seconds += gb_seconds
        u.errors += error

    def totals(self, now: float, since_s: float) -> dict[Key, Usage]:
        first = int((now - since_s) // 60)
        out: dict[Key, Usage] = {}
        for minute, bucket in self._minutes.items():
            if minute < first:
                continue
            for key, u in bucket.items():
                t = out.setdefault(key, Usage())
                t.requests += u.requests
                t.gb_seconds += u.gb_seconds
                t.errors += u.errors
        return out
