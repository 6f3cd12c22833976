"""The console's time series: samples from a real metrics registry, intervals, quantiles."""

from __future__ import annotations

import math

import pytest
from klambda.console.series import History, Sample, point, quantile, snapshot
from klambda.metrics import Metrics

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "want"),
    [
        (0.5, [], None),
        (0.5, [(0.1, 0.0), (INF, 0.0)], None),
        # all in the first bucket: linear from 0
        (0.5, [(0.1, 10.0), (INF, 10.0)], 0.05),
        # half below 0.1, half in (0.1, 0.25]: the median is the first bucket's top
        (0.5, [(0.1, 5.0), (0.25, 10.0), (INF, 10.0)], 0.1),
        (0.9, [(0.1, 5.0), (0.25, 10.0), (INF, 10.0)], 0.1 + 0.15 * 0.8),
        # in +Inf: the highest finite bound, as histogram_quantile answers
        (0.99, [(0.1, 1.0), (INF, 10.0)], 0.1),
    ],
)
def test_quantile_as_histogram_quantile(
    q: float, buckets: list[tuple[float, float]], want: float | None
) -> None:
    got = quantile(q, buckets)
    assert got == pytest.approx(want) if want is not None else got is None


def test_snapshot_sums_a_function_over_versions_and_aliases() -> None:
    m = Metrics()
    m.of("hello", "1", "prod", "RequestResponse").invoked(True, 20.0, 128, 40, None)
    m.of("hello", "2", "prod", "RequestResponse").invoked(False, 200.0, 128, 40, "error")
    m.of("other", "$LATEST", "", "Event").invoked(True, 1.0, 256, 40, None)
    m.throttles.labels("hello", "reserved").inc(3)
    m.concurrent.labels("hello").set(2)
    samples = snapshot(m.registry.collect(), 100.0)
    hello = samples["hello"]
    assert (hello.invocations, hello.errors, hello.throttles, hello.concurrent) == (2, 1, 3, 2)
    assert hello.cost > 0
    assert hello.buckets[-1] == (INF, 2.0)
    assert samples["other"].invocations == 1


def test_an_interval_counts_the_increase_and_its_percentiles() -> None:
    m = Metrics()
    fm = m.of("f", "$LATEST", "", "RequestResponse")
    fm.invoked(True, 3.0, 128, 0, None)
    before = snapshot(m.registry.collect(), 0.0)["f"]
    for ms in (40.0,) * 9 + (400.0,):
        fm.invoked(ms < 100, ms, 128, 0, None if ms < 100 else "error")
    after = snapshot(m.registry.collect(), 5.0)["f"]
    p = point(after, before)
    assert (p.invocations, p.errors) == (10, 1)
    assert p.success_rate == pytest.approx(90.0)
    # nine in (25, 50] ms, one in (250, 500] ms; the 3 ms before the interval is not in it
    assert p.p50_ms is not None
    assert 25.0 < p.p50_ms <= 50.0
    assert p.p99_ms is not None
    assert 250.0 < p.p99_ms <= 500.0


def test_a_function_first_seen_counts_its_first_invocations() -> None:
    h = History(keep=3)
    h.add({})
    h.add({"a": Sample(t=5.0, invocations=0.0)})
    h.add({"a": Sample(t=10.0, invocations=0.0), "b": Sample(t=10.0, invocations=4.0)})
    window = h.window("b")
    assert window is not None
    assert window.invocations == 4
    assert h.points("a")[-1].invocations == 0


def test_history_keeps_the_last_samples() -> None:
    h = History(keep=3)
    for t in range(10):
        h.add({"f": Sample(t=float(t), invocations=float(t))})
    assert [p.t for p in h.points("f")] == [8.0, 9.0]
    w = h.window("f")
    assert w is not None
    assert w.invocations == 2
    assert h.window("unknown") is None
