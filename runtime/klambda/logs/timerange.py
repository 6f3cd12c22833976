"""The time range of a logs command: `--since 1h`, or `--start` and `--end`.

Durations are a number and a unit (ms, s, m, h, d, w: the units Insights' `bin()` takes
too); times are ISO 8601 (a time without a zone is UTC) or seconds since the epoch.
"""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.UTC
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)\s*")


def seconds(text: str, what: str = "duration") -> float:
    """`90s`, `15m`, `1h`, `7d` as seconds; ValueError naming `what` otherwise."""
    m = DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"{what}: {text!r} is not a duration like 30s, 15m, 1h or 7d")
    return float(m.group(1)) * UNIT_SECONDS[m.group(2)]


def instant(text: str, what: str = "time") -> dt.datetime:
    """An ISO 8601 time (UTC when it has no zone) or seconds since the epoch."""
    try:
        return dt.datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{what}: {text!r} is not a time (ISO 8601 like 2026-01-31T12:00:00Z, "
            "or seconds since the epoch)"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def time_range(
    now: dt.datetime,
    since: str | None = None,
    start: str | None = None,
    end: str | None = None,
    default_since: str = "1h",
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) from the flags: `since` counts back from `end` (default now)."""
    if since is not None and start is not None:
        raise ValueError("give --since or --start, not both")
    stop = instant(end, "end") if end is not None else now
    if start is not None:
        begin = instant(start, "start")
    else:
        begin = stop - dt.timedelta(seconds=seconds(since or default_since, "since"))
    if begin >= stop:
        raise ValueError(f"start {begin.isoformat()} is not before end {stop.isoformat()}")
    return begin, stop
