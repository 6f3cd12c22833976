"""The arithmetic of a long run's summary: slopes, growth and leak verdicts. Pure.

A slope is the least-squares fit of a series of (seconds, value) samples, given per hour.
A resource grows when its fitted growth over the span of the samples exceeds what noise
explains: a share of its mean, or a floor in its own unit, whichever is larger (a router
whose RSS moves by a few hundred kB in either direction over half an hour is flat). The
leak check compares what is left once the load has stopped and the idle environments
have been reclaimed with what the pool may keep (its spares and provisioned
environments), and the router's open fds with those it had before the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, in value per hour; 0 for fewer than
    two distinct times."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mt) * (v - mv) for t, v in points)
    return cov / var * 3600.0


@dataclass(frozen=True)
class Growth:
    slope_per_hour: float
    over_run: float  # the fitted growth across the samples' span
    allowed: float  # what the verdict tolerates across that span
    grows: bool


def growth(
    points: Sequence[tuple[float, float]], share: float = 0.02, floor: float = 0.0
) -> Growth:
    """Whether a series grows beyond `share` of its mean (or `floor`) across its span."""
    slope = slope_per_hour(points)
    if len(points) < 2:
        return Growth(slope, 0.0, floor, False)
    span_h = (max(t for t, _ in points) - min(t for t, _ in points)) / 3600.0
    mean = sum(v for _, v in points) / len(points)
    over = slope * span_h
    allowed = max(abs(mean) * share, floor)
    return Growth(slope, over, allowed, over > allowed)


@dataclass(frozen=True)
class LeakCheck:
    environments_left: int
    environments_allowed: int
    fds_left: int
    fds_allowed: int

    @property
    def environments_leak(self) -> bool:
        return self.environments_left > self.environments_allowed

    @property
    def fds_leak(self) -> bool:
        return self.fds_left > self.fds_allowed

    @property
    def verdict(self) -> str:
        problems = []
        if self.environments_leak:
            problems.append(
                f"{self.environments_left} environments left where the pool may keep "
                f"{self.environments_allowed}"
            )
        if self.fds_leak:
            problems.append(f"{self.fds_left} open fds left where {self.fds_allowed} were expected")
        return "leak: " + "; ".join(problems) if problems else "no leak"


def leak_check(
    environments_left: int,
    spares: int,
    provisioned: int,
    fds_left: int,
    fds_before: int,
    fd_slack: int = 8,
) -> LeakCheck:
    """After the idle window: environments beyond the spares and provisioned ones, and
    open fds beyond those before the load (plus `fd_slack`: client connections closing,
    a log file rotated), are leaks."""
    return LeakCheck(environments_left, spares + provisioned, fds_left, fds_before + fd_slack)
