"""Power tuning's pure parts: statistics, strategies, input parsing; the usage ledger."""

from __future__ import annotations

import pytest
from klambda.tuning import (
    SizeResult,
    parse_duration_ms,
    parse_memory_list,
    percentile,
    recommend,
    report_duration,
)
from klambda.usage import UsageLedger


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 100) == 10.0
    assert percentile([3.0], 90) == 3.0


# a CPU-bound handler: duration halves as memory doubles up to 1769 MB, then flat
CURVE = [
    SizeResult(128, [1380.0] * 5),
    SizeResult(256, [690.0] * 5),
    SizeResult(512, [345.0] * 5),
    SizeResult(1024, [172.5] * 5),
    SizeResult(1769, [100.0] * 5),
    SizeResult(3008, [100.0] * 5),
]


@pytest.mark.parametrize(
    ("strategy", "memory"),
    # 128-512 MB bill the same GB-s (1024 rounds 172.5 ms up): cost takes the fastest
    [("speed", 1769), ("cost", 512), ("balanced", 1769)],
)
def test_recommendation_on_a_cpu_bound_curve(strategy: str, memory: int) -> None:
    assert recommend(CURVE, strategy).memory_mb == memory


def test_cost_prefers_small_memory_when_duration_is_flat() -> None:
    flat = [SizeResult(mb, [50.0] * 3) for mb in (128, 512, 1024)]
    assert recommend(flat, "cost").memory_mb == 128
    assert recommend(flat, "speed").memory_mb == 128  # ties broken by cost


def test_cost_is_billed_per_invocation() -> None:
    r = SizeResult(1024, [1000.0, 1000.0])
    assert r.cost == pytest.approx(0.2e-6 + 0.00001667)
    assert r.as_dict()["cost_per_million"] == pytest.approx(r.cost * 1e6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one memory size"),
        ("100", "100 MB is outside 128-10240 MB"),
        ("128,20000", "20000 MB is outside 128-10240 MB"),
        ("12x", "is not a whole number of MB"),
    ],
)
def test_bad_memory_lists(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_memory_list(text)


def test_memory_list_sorted_unique() -> None:
    assert parse_memory_list("512, 128,512") == [128, 512]


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1s", 1000.0), ("200ms", 200.0), ("1.5s", 1500.0), ("250", 250.0), ("2m", 120000.0)],
)
def test_durations(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == ms


def test_bad_strategy_and_duration() -> None:
    with pytest.raises(ValueError, match="strategy must be one of"):
        recommend(CURVE, "cheapest")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ms("soon")


def test_report_duration_from_a_log_tail() -> None:
    log = "START RequestId: a Version: $LATEST\nREPORT RequestId: a\tDuration: 12.34 ms\tBilled"
    assert report_duration(log) == 12.34
    assert report_duration("no report here") is None
    platform = (
        '{"time":"2026-01-01T00:00:00.000Z","type":"platform.report","record":'
        '{"requestId":"a","metrics":{"durationMs":7.5,"billedDurationMs":8},"status":"success"}}'
    )
    assert report_duration(f"{platform}\n") == 7.5


def test_usage_ledger_windows_and_expiry() -> None:
    ledger = UsageLedger()
    key = ("f", "1", "prod")
    ledger.record(0.0, key, 1.0, False)
    ledger.record(3000.0, key, 2.0, True)
    ledger.record(3590.0, key, 4.0, False)
    assert ledger.totals(3600.0, 3600).get(key).requests == 3  # type: ignore[union-attr]
    last10 = ledger.totals(3600.0, 600)[key]
    assert (last10.requests, last10.gb_seconds, last10.errors) == (2, 6.0, 1)
    ledger.record(3600.0 + 86400.0 * 2, key, 1.0, False)
    assert ledger.totals(3600.0 + 86400.0 * 2, 10**9)[key].requests == 1  # old minutes dropped
