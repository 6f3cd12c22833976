"""`klambda tune`: run a function at several memory sizes, measure, recommend, plot.

Each size gets a temporary copy of `$LATEST` on the router (live traffic and versions are
untouched), a warm-up invocation that is not counted (it pays the cold start), then the
measured invocations, whose durations are read from their REPORT lines as Lambda reports
them. The temporary copies are removed afterwards, even when a step fails.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from klambda.cli.client import ApiError, Client
from klambda.pricing import Prices
from klambda.tuning import SizeResult, recommend, report_duration


def measure(
    client: Client,
    function: str,
    memory_mb: int,
    payload: bytes,
    invocations: int,
    prices: Prices,
) -> SizeResult:
    created = client.json(
        "POST", f"/klambda/v1/functions/{function}/tuning", {"MemorySize": memory_mb}
    )
    qualifier = created["Qualifier"]
    try:
        durations: list[float] = []
        errors = 0
        for i in range(invocations + 1):
            res = client.invoke(function, payload, qualifier, tail=True)
            duration = report_duration(res.log or "")
            if duration is None:
                raise ApiError(0, "TuneError", f"no REPORT line in the log of {res.request_id}")
            if i == 0:
                continue  # the warm-up pays the cold start
            errors += bool(res.function_error)
            durations.append(duration)
        return SizeResult(memory_mb, durations, errors, prices)
    finally:
        with contextlib.suppress(ApiError):
            client.json("DELETE", f"/klambda/v1/functions/{function}/tuning/{qualifier}")


def report(results: list[SizeResult], best: SizeResult, strategy: str) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "recommendation": best.as_dict(),
        "results": [r.as_dict() for r in results],
    }


def plot(results: list[SizeResult], best: SizeResult, function: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [str(r.memory_mb) for r in results]
    fig, ax1 = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax1.plot(sizes, [r.p50 for r in results], "o-", color="tab:blue", label="p50 duration")
    ax1.plot(
        sizes, [r.p90 for r in results], "o--", color="tab:blue", alpha=0.5, label="p90 duration"
    )
    ax1.set_xlabel("memory (MB)")
    ax1.set_ylabel("duration (ms)", color="tab:blue")
    ax1.set_yscale("log")
    ax2 = ax1.twinx()
    ax2.plot(
        sizes,
        [r.cost * 1_000_000 for r in results],
        "s-",
        color="tab:red",
        label="$ per million invocations",
    )
    ax2.set_ylabel("$ per million invocations", color="tab:red")
    ax1.axvline(
        sizes.index(str(best.memory_mb)), color="tab:green", linestyle=":", label="recommended"
    )
    lines = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax1.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax1.legend(lines, labels, loc="upper center", fontsize=8)
    ax1.set_title(f"klambda tune {function}: recommended {best.memory_mb} MB")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


__all__ = ["measure", "plot", "recommend", "report", "write_json"]
