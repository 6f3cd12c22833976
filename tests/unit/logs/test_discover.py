"""The fields Insights discovers in Lambda's records, in both formats."""

from __future__ import annotations

import pytest
from klambda import logformat
from klambda.logs.discover import Discovered, discover

RID = "8f5f4c4b-1d4c-4f1e-9b1e-2d3c4b5a6f70"
JSON = logformat.platform("JSON", "DEBUG")

CASES = [
    (logformat.start(RID, "$LATEST"), Discovered("START", RID)),
    (logformat.end(RID), Discovered("END", RID)),
    (
        logformat.report(RID, 12.345, 128, 38),
        Discovered("REPORT", RID, None, 12.35, 13, 128, 38, None),
    ),
    (
        logformat.report(RID, 3000.0, 256, 50, 120.456, "timeout", "Sandbox.Timedout"),
        Discovered("REPORT", RID, None, 3000.0, 3000, 256, 50, 120.46),
    ),
    (logformat.init_start("python3.11", "arn:x"), Discovered("INIT_START")),
    (f"[ERROR]\t2026-01-01T00:00:00.000Z\t{RID}\tboom", Discovered(None, RID, "ERROR")),
    ("[INFO]\t2026-01-01T00:00:00.000Z\t\tat init", Discovered(None, None, "INFO")),
    (f"2026-01-01T00:00:00.000Z\t{RID}\tprinted", Discovered()),
    (JSON.start(RID, "3"), Discovered("platform.start", RID)),
    (JSON.end(RID, "success", 4.0), Discovered("platform.runtimeDone", RID)),
    (
        JSON.report(RID, 12.3456, 128, 38, 99.5),
        Discovered("platform.report", RID, None, 12.346, 13, 128, 38, 99.5),
    ),
    (
        f'{{"timestamp":"t","level":"warning","message":"m","logger":"root","requestId":"{RID}"}}',
        Discovered(None, RID, "WARNING"),
    ),
    ('{"level": 3}', Discovered()),
    ("[1, 2]", Discovered()),
    ("{broken", Discovered()),
    ("", Discovered()),
]


@pytest.mark.parametrize(("message", "expected"), CASES)
def test_discover(message: str, expected: Discovered) -> None:
    assert discover(message) == expected
