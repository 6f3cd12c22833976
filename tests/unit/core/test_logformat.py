"""Lambda's platform log lines, byte for byte."""

from __future__ import annotations

import json

from klambda import logformat

RID = "8f5f4c4b-1d4c-4f1e-9b1e-2d3c4b5a6f70"


def test_start_end() -> None:
    assert logformat.start(RID, "$LATEST") == f"START RequestId: {RID} Version: $LATEST"
    assert logformat.end(RID) == f"END RequestId: {RID}"


def test_report_warm() -> None:
    line = logformat.report(RID, 12.345, 128, 38)
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 12.35 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 38 MB\t"
    )


def test_report_cold_with_timeout() -> None:
    line = logformat.report(
        RID, 3000.0, 256, 50, init_ms=120.456, status="timeout", error_type="Sandbox.Timedout"
    )
    assert "\tInit Duration: 120.46 ms\t" in line
    assert line.endswith("\tStatus: timeout\tError Type: Sandbox.Timedout\t")
    assert "Billed Duration: 3000 ms" in line


def test_timeout_message() -> None:
    assert logformat.timeout_message(3) == "Task timed out after 3.00 seconds"
    assert logformat.timed_out(RID, 1).endswith(f"{RID} Task timed out after 1.00 seconds")


def test_json_records_drop_below_the_system_level() -> None:
    for level, kinds in [
        ("DEBUG", ["platform.start", "platform.runtimeDone", "platform.report"]),
        ("INFO", ["platform.start", "platform.report"]),
        ("WARN", []),
    ]:
        plat = logformat.platform("JSON", level)
        lines = [plat.start(RID, "1"), plat.end(RID, "success", 1.0), plat.report(RID, 1, 128, 9)]
        assert [json.loads(x)["type"] for x in lines if x is not None] == kinds


def test_json_report_is_lambdas_record() -> None:
    line = logformat.platform("JSON", None).report(
        RID, 3000.0, 256, 50, 120.4567, status="timeout", error_type="Sandbox.Timedout"
    )
    assert line is not None
    rec = json.loads(line)
    assert rec["record"] == {
        "requestId": RID,
        "metrics": {
            "durationMs": 3000.0,
            "billedDurationMs": 3000,
            "memorySizeMB": 256,
            "maxMemoryUsedMB": 50,
            "initDurationMs": 120.457,
        },
        "status": "timeout",
        "errorType": "Sandbox.Timedout",
    }
    assert line.startswith('{"time":"')
    assert rec["time"].endswith("Z")


def test_timeouts_and_crashes_are_lines_in_text_and_report_fields_in_json() -> None:
    text, js = logformat.platform("Text", None), logformat.platform("JSON", "DEBUG")
    assert (text.timed_out(RID, 3) or "").endswith("Task timed out after 3.00 seconds")
    assert (text.crashed(RID, "signal: killed", "Runtime.OutOfMemory") or "").endswith(
        "Error: Runtime exited with error: signal: killed\nRuntime.OutOfMemory"
    )
    assert js.timed_out(RID, 3) is None
    assert js.crashed(RID, "exit status 1", "Runtime.ExitError") is None


def test_report_of_a_pool_cold_start_has_its_phases_in_order() -> None:
    line = logformat.report(
        "r",
        1.0,
        128,
        20,
        init_ms=12.5,
        phases={"environment_start": 2.0, "specialise": 1.25, "code_download": 0.5},
    )
    assert line.endswith(
        "Init Duration: 12.50 ms\tCode Download: 0.50 ms\tSpecialise: 1.25 ms\t"
        "Environment Start: 2.00 ms\t"
    ), line
