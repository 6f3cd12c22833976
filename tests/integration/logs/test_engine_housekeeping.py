"""Metric filters and retention in cluster mode, over a real VictoriaLogs: the router counts
the records the engine received with the local mode's filters, and archives then deletes a
function's records past its logRetentionInDays (the engine keeping the others)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from klambda.api.logconfig import MetricFilter
from klambda.logengine.client import LogEngine
from klambda.logengine.housekeeping import EngineMetricFilters, EngineRetention
from klambda.logengine.records import engine_record
from klambda.logstore.metricfilters import MetricFilters
from prometheus_client import CollectorRegistry

from tests.logengine import VictoriaLogs, victoria_logs

from . import fixed_logs
from .fixed_logs import T0

UTC = dt.UTC


@pytest.fixture
def vl(tmp_path: Path) -> Iterator[VictoriaLogs]:
    with victoria_logs(tmp_path / "vl") as engine:
        yield engine


@pytest.fixture
async def engine(vl: VictoriaLogs) -> AsyncIterator[LogEngine]:
    e = LogEngine(vl.url)
    yield e
    await e.close()


async def _count(engine: LogEngine, function: str) -> int:
    await engine.flush()
    rows = await engine.select(f'function:="{function}" | stats count() as n')
    return int(rows[0]["n"])


FILTERS = {
    "web": [
        MetricFilter.model_validate(
            {"name": "slow", "filterPattern": "{ $.latency > 500 }", "metricName": "Slow",
             "metricValue": "$.latency"}
        ),
        MetricFilter.model_validate(
            {"name": "errors", "filterPattern": "ERROR -Retrying", "metricName": "Errors"}
        ),
    ]
}  # fmt: skip


async def test_metric_filters_count_what_the_engine_received(engine: LogEngine) -> None:
    registry = CollectorRegistry()
    filters = MetricFilters(registry, lambda f: FILTERS.get(f, []))
    now = [dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)]
    counting = EngineMetricFilters(
        engine, filters, lambda: ["web", "quiet"], lag=5, clock=lambda: now[0]
    )
    base = now[0].timestamp()
    lines = [
        '{"level": "INFO", "latency": 900}',
        '{"level": "INFO", "latency": 100}',
        "ERROR payment failed",
        "ERROR Retrying payment",
        '{"level": "INFO", "latency": 600}',
    ]
    await engine.insert(
        engine_record("web", base + 1 + i, "s", f"r{i}", m) for i, m in enumerate(lines)
    )
    await engine.flush()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"function": "web", **labels})

    now[0] += dt.timedelta(seconds=8.5)  # the window ends at base+3.5: the first 3 records
    assert await counting.once() == 3
    assert value("klambda_log_metric_filter_total", filter="slow", metric="Slow") == 900
    assert value("klambda_log_metric_filter_total", filter="errors", metric="Errors") == 1
    now[0] += dt.timedelta(seconds=60)  # the rest, each record counted once
    assert await counting.once() == 2
    assert value("klambda_log_metric_filter_total", filter="slow", metric="Slow") == 1500
    assert value("klambda_log_metric_filter_matches_total", filter="slow") == 2
    assert value("klambda_log_metric_filter_total", filter="errors", metric="Errors") == 1
    assert await counting.once() == 0


async def test_retention_archives_then_deletes_from_the_engine(
    engine: LogEngine, tmp_path: Path
) -> None:
    await engine.insert(
        engine_record(function, t, stream, rid, text)
        for function, recs in fixed_logs.records().items()
        for t, stream, rid, text in recs
    )
    assert (await _count(engine, "hello"), await _count(engine, "orders")) == (27, 13)
    clock = T0 + dt.timedelta(days=1, minutes=3)  # hello's first three minutes expire
    retention = EngineRetention(
        engine,
        tmp_path / "archive",
        lambda: ["hello", "orders"],
        lambda f: 1 if f == "hello" else None,  # orders keeps its records
        clock=lambda: clock,
    )
    [archived] = await retention.run()
    assert (archived.function, archived.records) == ("hello", 14)
    assert archived.path.parent == tmp_path / "archive" / "hello"
    assert archived.path.name.startswith("hello-20260101T000000000Z-")
    with gzip.open(archived.path, "rt") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 14
    assert records[0]["timestamp"] == int(T0.timestamp() * 1000)
    assert records[0]["message"].startswith("INIT_START")
    assert records[1] == {
        "timestamp": int(T0.timestamp() * 1000) + 1,
        "logStream": fixed_logs.HELLO_STREAM,
        "requestId": "h0",
        "message": "START RequestId: h0 Version: $LATEST",
    }
    assert all(r["timestamp"] < int((T0 + dt.timedelta(minutes=3)).timestamp() * 1000)
               for r in records)  # fmt: skip
    assert (await _count(engine, "hello"), await _count(engine, "orders")) == (13, 13)
    assert await retention.run() == []  # nothing older left
    assert not list((tmp_path / "archive" / "hello").glob(".*partial"))
