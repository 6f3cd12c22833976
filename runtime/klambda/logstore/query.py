"""Running an Insights query on the store, and its results in Insights' shape.

GetQueryResults gives every value as a string and timestamps as `2026-11-27 11:43:33.844`;
`QueryResult.insights()` does the same, with the statistics Insights reports (records
scanned in the time range and log groups, records matched by the filters).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from klambda.logs import insights
from klambda.logs.insights import QueryError
from klambda.logstore.compile import Compiler
from klambda.logstore.store import LogStore, naive_utc


def text(value: Any) -> str | None:
    """A value as Insights prints it."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{round(value, 6):.15g}"
    return str(value)


@dataclass(frozen=True)
class QueryResult:
    fields: list[str]
    rows: list[tuple[Any, ...]]
    scanned: int
    matched: int
    seconds: float

    def insights(self) -> dict[str, Any]:
        return {
            "status": "Complete",
            "results": [
                [
                    {"field": f, "value": text(v)}
                    for f, v in zip(self.fields, row, strict=True)
                    if v is not None
                ]
                for row in self.rows
            ],
            "statistics": {
                "recordsScanned": float(self.scanned),
                "recordsMatched": float(self.matched),
                "seconds": round(self.seconds, 4),
            },
            "fields": self.fields,
        }


def run_query(
    store: LogStore,
    query: str,
    functions: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    account: str = "000000000000",
) -> QueryResult:
    """Parse, compile and run `query`; QueryError for a mistake in it (with its position)."""
    started = time.perf_counter()
    parsed = insights.parse(query)
    compiled = Compiler(account).compile(parsed, functions, naive_utc(start), naive_utc(end))
    try:
        _, rows = store.execute(compiled.sql, compiled.params)
        _, scanned = store.execute(compiled.count_sql, compiled.params)
        matched = scanned
        if compiled.matched_sql is not None:
            _, matched = store.execute(compiled.matched_sql, compiled.params)
    except duckdb.Error as err:  # what only the engine can tell: a regex RE2 refuses, ...
        raise QueryError(str(err).split("\n")[0]) from None
    return QueryResult(
        compiled.columns,
        rows,
        int(scanned[0][0]),
        int(matched[0][0]),
        time.perf_counter() - started,
    )
