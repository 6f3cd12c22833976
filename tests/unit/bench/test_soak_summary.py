"""The long run's summary arithmetic (bench/soakstats.py): slopes, growth, leak verdicts."""

from __future__ import annotations

import pytest

from bench.soakstats import growth, leak_check, slope_per_hour


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], 0.0),
        ([(0.0, 5.0)], 0.0),
        ([(10.0, 1.0), (10.0, 9.0)], 0.0),  # one time: no slope
        ([(0.0, 100.0), (3600.0, 110.0)], 10.0),
        ([(0.0, 100.0), (1800.0, 100.0), (3600.0, 100.0)], 0.0),
        ([(0.0, 50.0), (60.0, 49.0), (120.0, 48.0)], -60.0),  # one a minute, falling
        # least squares, not end points: a spike in the middle does not tilt the line
        ([(0.0, 10.0), (60.0, 30.0), (120.0, 10.0)], 0.0),
    ],
)
def test_slope_per_hour(points: list[tuple[float, float]], expected: float) -> None:
    assert slope_per_hour(points) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("points", "share", "floor", "grows"),
    [
        # 150 MB, +1 MB over 30 minutes: under 2 % of the mean
        ([(0.0, 150.0), (1800.0, 151.0)], 0.02, 0.0, False),
        # +10 MB over 30 minutes: grows
        ([(0.0, 150.0), (1800.0, 160.0)], 0.02, 0.0, True),
        # 40 fds, +3 in the run: within a floor of 5 even though 3 > 2 % of 40
        ([(0.0, 40.0), (900.0, 41.0), (1800.0, 43.0)], 0.02, 5.0, False),
        ([(0.0, 40.0), (900.0, 50.0), (1800.0, 60.0)], 0.02, 5.0, True),
        ([(0.0, 150.0), (1800.0, 120.0)], 0.02, 0.0, False),  # shrinking is not a leak
        ([(0.0, 150.0)], 0.02, 0.0, False),
    ],
)
def test_growth_verdict(
    points: list[tuple[float, float]], share: float, floor: float, grows: bool
) -> None:
    assert growth(points, share, floor).grows is grows


def test_growth_reports_the_fitted_growth_over_the_span() -> None:
    g = growth([(0.0, 100.0), (1800.0, 105.0)], share=0.02)
    assert g.slope_per_hour == pytest.approx(10.0)
    assert g.over_run == pytest.approx(5.0)
    assert g.allowed == pytest.approx(2.05)


@pytest.mark.parametrize(
    ("left", "spares", "provisioned", "fds_left", "fds_before", "verdict"),
    [
        (1, 1, 0, 30, 28, "no leak"),
        (3, 1, 2, 30, 28, "no leak"),  # provisioned environments stay
        (0, 1, 0, 20, 28, "no leak"),  # the spare being replaced
        (5, 1, 0, 30, 28, "leak: 5 environments left where the pool may keep 1"),
        (1, 1, 0, 80, 28, "leak: 80 open fds left where 36 were expected"),
        (
            4,
            1,
            1,
            90,
            28,
            "leak: 4 environments left where the pool may keep 2; "
            "90 open fds left where 36 were expected",
        ),
    ],
)
def test_leak_verdict(
    left: int, spares: int, provisioned: int, fds_left: int, fds_before: int, verdict: str
) -> None:
    assert leak_check(left, spares, provisioned, fds_left, fds_before).verdict == verdict
