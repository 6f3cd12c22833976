"""Log levels as Lambda's advanced logging controls order them.

Application records go from TRACE (most detail) to FATAL; platform records from DEBUG to
WARN. A record is kept when its level is at or above the configured one. Python's
`logging` names WARNING and CRITICAL are Lambda's WARN and FATAL; a level Lambda cannot
read counts as INFO, as it does in Lambda.
"""

from __future__ import annotations

# rank of each level name; Python's own names rank with Lambda's
RANK = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "WARN": 30,
    "WARNING": 30,
    "ERROR": 40,
    "FATAL": 50,
    "CRITICAL": 50,
}
INFO = RANK["INFO"]


def rank(level: object) -> int:
    """The rank of a record's level; INFO when it is missing or not a level."""
    if isinstance(level, str):
        return RANK.get(level.upper(), INFO)
    return INFO


def kept(level: object, threshold: str | None) -> bool:
    """Whether a record at `level` passes a configured `threshold` (None keeps all)."""
    return threshold is None or rank(level) >= RANK[threshold]
