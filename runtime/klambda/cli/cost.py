"""`klambda cost` and `klambda tune`: Lambda's pricing applied to a workload, to the
router's usage ledger, and to measurements at several memory sizes (power tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from klambda.cli.options import (
    EndpointOpt,
    PriceGbOpt,
    PriceReqOpt,
    client,
    read_payload,
)
from klambda.cli.output import fail, plain, reported, table
from klambda.pricing import Prices

cost_app = typer.Typer(help="Lambda's pricing: estimates and reports.", no_args_is_help=True)


@cost_app.command("estimate")
def cost_estimate(
    memory: Annotated[int, typer.Option("--memory", "-m", help="Memory size in MB")],
    invocations: Annotated[
        int, typer.Option("--invocations", "-n", help="A month's invocations")
    ] = 0,
    duration: Annotated[
        str, typer.Option("--duration", "-d", help="Average, e.g. 200ms, 1s")
    ] = "0ms",
    free_tier: Annotated[bool, typer.Option(help="Apply the monthly free tier")] = True,
    provisioned: Annotated[
        int | None,
        typer.Option("--provisioned", help="Provisioned concurrency: environments kept ready"),
    ] = None,
    hours: Annotated[
        float, typer.Option("--hours", help="Hours a month they are kept (730: always on)")
    ] = 730.0,
    price_gb_second: PriceGbOpt = None,
    price_million_requests: PriceReqOpt = None,
) -> None:
    """A month's Lambda bill for a workload, on demand or on provisioned concurrency."""
    from klambda.api import limits
    from klambda.pricing import monthly, prices_with
    from klambda.tuning import parse_duration_ms

    if invocations < 0:
        fail(f"--invocations: must be >= 0, got {invocations}", 2)
    if not limits.MEMORY_MIN_MB <= memory <= limits.MEMORY_MAX_MB:
        fail(
            f"--memory: {memory} MB is outside {limits.MEMORY_MIN_MB}-{limits.MEMORY_MAX_MB} MB", 2
        )
    try:
        ms = parse_duration_ms(duration)
    except ValueError as err:
        fail(str(err), 2)
    prices = prices_with(price_gb_second, price_million_requests)
    if provisioned is not None:
        _provisioned_estimate(provisioned, memory, hours, invocations, ms, prices)
        return
    bill = monthly(invocations, memory, ms, prices, free_tier)
    typer.echo(f"{invocations:,} invocations x {ms:g} ms at {memory} MB")
    typer.echo(
        f"  compute   {bill.gb_seconds:,.2f} GB-s"
        + (f" - {prices.free_gb_seconds:,.0f} free" if free_tier else "")
        + f" x ${plain(prices.per_gb_second)} = ${bill.compute_cost:,.2f}"
    )
    typer.echo(
        f"  requests  {invocations:,}"
        + (f" - {prices.free_requests:,} free" if free_tier else "")
        + f" x ${plain(prices.per_million_requests)}/M = ${bill.request_cost:,.2f}"
    )
    typer.echo(f"${bill.total:,.2f} / month")


def _provisioned_estimate(
    units: int, memory: int, hours: float, invocations: int, ms: float, prices: Prices
) -> None:
    from klambda.pricing import monthly_provisioned

    if units < 1:
        fail(f"--provisioned: must be at least 1, got {units}", 2)
    if not 0 < hours <= 744:
        fail(f"--hours: a month has at most 744 hours, got {hours:g}", 2)
    bill = monthly_provisioned(units, memory, hours, invocations, ms, prices)
    typer.echo(f"{units} provisioned environments x {memory} MB for {hours:g} hours")
    typer.echo(
        f"  kept ready  {bill.ready_gb_seconds:,.2f} GB-s x "
        f"${plain(prices.provisioned_per_gb_second)} = ${bill.ready_cost:,.2f}"
    )
    if invocations:
        typer.echo(
            f"  duration    {bill.duration_gb_seconds:,.2f} GB-s x "
            f"${plain(prices.provisioned_duration_per_gb_second)} = ${bill.duration_cost:,.2f}"
        )
        typer.echo(
            f"  requests    {invocations:,} x ${plain(prices.per_million_requests)}/M = "
            f"${bill.request_cost:,.2f}"
        )
    typer.echo(f"${bill.total:,.2f} / month (no free tier for provisioned concurrency)")


@cost_app.command("report")
def cost_report(
    function: Annotated[str | None, typer.Argument(help="Only this function")] = None,
    since: Annotated[str, typer.Option(help="Window, e.g. 15m, 1h, 24h")] = "1h",
    ep: EndpointOpt = None,
) -> None:
    """Requests, billed GB-seconds and estimated $ per function, version and alias."""
    import re
    import urllib.parse

    m = re.fullmatch(r"([0-9]+)([smhd])", since)
    if not m:
        fail(f"--since: {since!r} is not a window like 15m, 1h or 24h", 2)
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    q = {"since": str(seconds)} | ({"function": function} if function else {})
    with reported():
        data = client(ep).json("GET", "/klambda/v1/usage?" + urllib.parse.urlencode(q))
    rows = [
        [
            u["function"],
            u["version"],
            u["alias"] or "-",
            u["requests"],
            u["errors"],
            f"{u['gbSeconds']:.4f}",
            f"${u['cost']:.6f}",
        ]
        for u in data["usage"]
    ]
    total = sum(u["cost"] for u in data["usage"])
    table(rows, ["FUNCTION", "VERSION", "ALIAS", "REQUESTS", "ERRORS", "GB-S", "COST"])
    typer.echo(
        f"total ${total:.6f} over the last {since} (before the free tier; "
        f"${plain(data['prices']['perGbSecond'])}/GB-s, "
        f"${data['prices']['perMillionRequests']}/M requests)"
    )


def tune(
    function: Annotated[str, typer.Argument()],
    memory: Annotated[str, typer.Option(help="Sizes to try, MB")] = "128,256,512,1024,1769,3008",
    payload: Annotated[str | None, typer.Option("--payload", "-p", help="JSON, or @FILE")] = None,
    invocations: Annotated[
        int, typer.Option("--invocations", "-n", help="Measured invocations per size")
    ] = 10,
    strategy: Annotated[str, typer.Option(help="cost | speed | balanced")] = "cost",
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results")] = None,
    price_gb_second: PriceGbOpt = None,
    price_million_requests: PriceReqOpt = None,
    ep: EndpointOpt = None,
) -> None:
    """Power tuning: run FUNCTION at each memory size and recommend one."""
    from klambda.cli import tune as tuning_io
    from klambda.pricing import prices_with
    from klambda.tuning import STRATEGIES, parse_memory_list

    try:
        sizes = parse_memory_list(memory)
    except ValueError as err:
        fail(str(err), 2)
    if invocations < 1:
        fail(f"--invocations: must be at least 1, got {invocations}", 2)
    if strategy not in STRATEGIES:
        fail(f"--strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}", 2)
    body = read_payload(payload)
    prices = prices_with(price_gb_second, price_million_requests)
    c = client(ep)
    results = []
    with reported():
        for mb in sizes:
            r = tuning_io.measure(c, function, mb, body, invocations, prices)
            results.append(r)
            typer.echo(
                f"{mb:>6} MB  p50 {r.p50:9.2f} ms  p90 {r.p90:9.2f} ms  "
                f"${r.cost * 1_000_000:9.4f}/M" + (f"  {r.errors} errors" if r.errors else "")
            )
    best = tuning_io.recommend(results, strategy)
    typer.echo(
        f"recommended ({strategy}): {best.memory_mb} MB  p50 {best.p50:.2f} ms  "
        f"${best.cost * 1_000_000:.4f} per million"
    )
    data = tuning_io.report(results, best, strategy)
    if json_path is not None:
        tuning_io.write_json(data, json_path)
        typer.echo(f"wrote {json_path}")
    if plot_path is not None:
        tuning_io.plot(results, best, function, plot_path)
        typer.echo(f"wrote {plot_path}")
