"""The Insights query table of test_insights.py, run by the cluster's log engine: a real
VictoriaLogs on loopback, fed the fixed log set as the worker pods ship it (records shaped
by klambda.logengine.records, sent to /insert/jsonline), queried through the LogsQL
compiler. The same rows are expected, except for the queries named in NOT_IN_LOGSQL
(refused with the position: LogsQL has no such thing); pct() is the engine's own estimate
(test_pct_is_the_engines_estimate). The mistakes of the table name the same positions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.logengine.client import LogEngine
from klambda.logengine.records import engine_record
from klambda.logs.insights import QueryError

from tests.logengine import victoria_logs

from . import fixed_logs
from .test_insights import CASES, END, ERRORS, START

# Insights' stddev() has no LogsQL aggregate
NOT_IN_LOGSQL = {
    "stats pct(@duration, 50) as p50, pct(@duration, 90) as p90, stddev(@duration) as sd": (
        "line 1, column 61: stddev(): not something the cluster's log engine (LogsQL) can answer"
    ),
}


async def _ingest(url: str) -> int:
    engine = LogEngine(url)
    try:
        batch = [
            engine_record(function, t, stream, rid, text)
            for function, recs in fixed_logs.records().items()
            for t, stream, rid, text in recs
        ]
        sent = await engine.insert(batch)
        await engine.flush()
        return sent
    finally:
        await engine.close()


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("victorialogs") / "data"
    with victoria_logs(data) as vl:
        assert asyncio.run(_ingest(vl.url)) == 40
        yield vl.url


async def _rows(url: str, query: str, functions: tuple[str, ...]) -> list[dict[str, str]]:
    engine = LogEngine(url)
    try:
        result = await engine.run_query(query, functions, START, END)
    finally:
        await engine.close()
    return [{c["field"]: c["value"] for c in row} for row in result.insights()["results"]]


@pytest.mark.parametrize(("query", "functions", "expected"), CASES, ids=[c[0][:60] for c in CASES])
async def test_query(
    engine_url: str, query: str, functions: tuple[str, ...], expected: list[dict[str, str]]
) -> None:
    if query in NOT_IN_LOGSQL:
        with pytest.raises(QueryError) as err:
            await _rows(engine_url, query, functions)
        assert NOT_IN_LOGSQL[query] in str(err.value)
        return
    assert await _rows(engine_url, query, functions) == expected


async def test_pct_is_the_engines_estimate(engine_url: str) -> None:
    rows = await _rows(
        engine_url, "stats pct(@duration, 50) as p50, max(@duration) as hi", ("hello",)
    )
    # hello's durations are 10, 20, ..., 60: Insights interpolates 35, the engine
    # gives one of the two around it
    assert rows[0]["hi"] == "60"
    assert rows[0]["p50"] in ("30", "40")


@pytest.mark.parametrize(("query", "message"), ERRORS, ids=[e[0] or "empty" for e in ERRORS])
async def test_mistakes_name_the_position(engine_url: str, query: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        await _rows(engine_url, query, ())
    assert message in str(err.value)
