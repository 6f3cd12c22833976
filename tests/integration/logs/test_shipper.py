"""A worker pod's shipper: the log hub's records reach a real VictoriaLogs in batches, as
the cluster's queries see them (group = function, stream = environment); records written
while the engine is away wait and arrive once it is back, none twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from klambda import logformat
from klambda.logengine.client import LogEngine
from klambda.testing import eventually_async, free_port
from klambda.worker.logs import LogHub
from klambda.worker.logship import Shipper

from tests.logengine import victoria_logs

UTC = dt.UTC


async def _count(engine: LogEngine, query: str) -> list[dict[str, str]]:
    await engine.flush()
    now = dt.datetime.now(UTC)
    result = await engine.run_query(query, (), now - dt.timedelta(hours=1), now)
    return [{c["field"]: c["value"] for c in row} for row in result.insights()["results"]]


async def test_records_reach_the_engine_by_function_and_stream(tmp_path: Path) -> None:
    with victoria_logs(tmp_path / "vl") as vl:
        shipper = Shipper(LogEngine(vl.url), period=0.05)
        hub = LogHub(None, None, ship=shipper.add)
        shipper.start()
        try:
            for i in range(3):
                rid = f"r{i}"
                hub.write("hello", "2026/12/01/[$LATEST]a", logformat.start(rid, "$LATEST"), rid)
                hub.write("hello", "2026/12/01/[$LATEST]a", f"working on {i}", rid)
            hub.write("orders", "2026/12/01/[1]b", "REPORT RequestId: o1\tDuration: 7.00 ms\t")
            engine = LogEngine(vl.url)
            try:

                async def shipped() -> bool:
                    rows = await _count(
                        engine, "stats count(*) as n by @log, @logStream | sort @log"
                    )
                    assert rows == [
                        {
                            "@log": "000000000000:/aws/lambda/hello",
                            "@logStream": "2026/12/01/[$LATEST]a",
                            "n": "6",
                        },
                        {
                            "@log": "000000000000:/aws/lambda/orders",
                            "@logStream": "2026/12/01/[1]b",
                            "n": "1",
                        },
                    ]
                    return True

                await eventually_async(shipped, "the hub's 7 records in the engine", timeout=20)
                rows = await _count(engine, 'filter @type = "START" | stats count(*) as n')
                assert rows == [{"n": "3"}]
                rows = await _count(engine, "filter @duration > 5 | fields @requestId")
                assert rows == [{"@requestId": "o1"}]
            finally:
                await engine.close()
        finally:
            await shipper.close()
        assert (shipper.shipped, shipper.dropped, shipper.waiting) == (7, 0, 0)


async def test_records_wait_while_the_engine_is_away(tmp_path: Path) -> None:
    port = free_port()
    shipper = Shipper(LogEngine(f"http://127.0.0.1:{port}"), period=0.05)
    hub = LogHub(None, None, ship=shipper.add)
    shipper.start()
    try:
        for i in range(5):
            hub.write("hello", "s", f"line {i}")
        await asyncio.sleep(0.5)  # several sends refused
        assert (shipper.waiting, shipper.shipped) == (5, 0)
        with victoria_logs(tmp_path / "vl", port=port) as vl:
            hub.write("hello", "s", "line 5")
            await eventually_async(lambda: shipper.shipped == 6, "6 records shipped", timeout=20)
            engine = LogEngine(vl.url)
            try:
                assert await _count(engine, "stats count(*) as n") == [{"n": "6"}]
            finally:
                await engine.close()
    finally:
        await shipper.close()
    assert shipper.dropped == 0
