"""Power tuning: which memory size a function should have, from measured invocations.

Pure: durations in, statistics and a recommendation out. The strategies are those of
aws-lambda-power-tuning: `cost` (cheapest per invocation), `speed` (fastest p50), and
`balanced` (least of cost and duration, each normalised to its largest value, weighted
equally).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from klambda.api import limits
from klambda.logs.discover import discover
from klambda.pricing import DEFAULT_PRICES, Prices, invocation_cost

STRATEGIES = ("cost", "speed", "balanced")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class SizeResult:
    memory_mb: int
    durations_ms: list[float]
    errors: int = 0
    prices: Prices = field(default=DEFAULT_PRICES, repr=False)

    @property
    def p50(self) -> float:
        return percentile(self.durations_ms, 50)

    @property
    def p90(self) -> float:
        return percentile(self.durations_ms, 90)

    @property
    def mean(self) -> float:
        return sum(self.durations_ms) / len(self.durations_ms)

    @property
    def cost(self) -> float:
        """Average cost of one invocation, billed duration by billed duration."""
        costs = [invocation_cost(d, self.memory_mb, self.prices) for d in self.durations_ms]
        return sum(costs) / len(costs)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "memoryMB": self.memory_mb,
            "invocations": len(self.durations_ms),
            "errors": self.errors,
            "p50_ms": round(self.p50, 3),
            "p90_ms": round(self.p90, 3),
            "mean_ms": round(self.mean, 3),
            "min_ms": round(min(self.durations_ms), 3),
            "cost_per_invocation": self.cost,
            "cost_per_million": self.cost * 1_000_000,
        }


def recommend(results: list[SizeResult], strategy: str) -> SizeResult:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not results:
        raise ValueError("no results to recommend from")
    if strategy == "cost":
        return min(results, key=lambda r: (r.cost, r.p50))
    if strategy == "speed":
        return min(results, key=lambda r: (r.p50, r.cost))
    max_cost = max(r.cost for r in results) or 1.0
    max_p50 = max(r.p50 for r in results) or 1.0
    return min(results, key=lambda r: (0.5 * r.cost / max_cost + 0.5 * r.p50 / max_p50, r.cost))


def parse_memory_list(text: str) -> list[int]:
    """`128,256,1769` to sizes, ValueError naming the limit for anything out of range."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("--memory: give at least one memory size, e.g. 128,256,512")
    sizes = []
    for p in parts:
        if not p.isdigit():
            raise ValueError(f"--memory: {p!r} is not a whole number of MB")
        mb = int(p)
        if not limits.MEMORY_MIN_MB <= mb <= limits.MEMORY_MAX_MB:
            raise ValueError(
                f"--memory: {mb} MB is outside {limits.MEMORY_MIN_MB}-{limits.MEMORY_MAX_MB} MB"
            )
        sizes.append(mb)
    return sorted(set(sizes))


def parse_duration_ms(text: str) -> float:
    """`1s`, `200ms`, `1.5s`, `2m` or a bare number of milliseconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m)?\s*", text)
    if not m:
        raise ValueError(f"--duration: {text!r} is not a duration like 200ms, 1s or 1.5s")
    value, unit = float(m.group(1)), m.group(2) or "ms"
    return value * {"ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def report_duration(log: str) -> float | None:
    """The Duration of the REPORT line (or JSON platform.report) in an invocation's log tail."""
    for line in log.splitlines():
        found = discover(line)
        if found.type in ("REPORT", "platform.report") and found.duration is not None:
            return found.duration
    return None
