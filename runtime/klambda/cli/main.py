"""`klambda`: run functions locally (`up`), invoke them, read their logs and state."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from klambda.cli.backends import Backend, BackendError, KubeBackend, RestBackend
from klambda.cli.client import ApiError, Client, endpoint

app = typer.Typer(
    help="Lambda's model - functions, versions, aliases, concurrency - locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
get_app = typer.Typer(help="List functions, versions or aliases.", no_args_is_help=True)
app.add_typer(get_app, name="get")
alias_app = typer.Typer(help="Create, change or delete aliases.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
concurrency_app = typer.Typer(help="Reserved concurrency of a function.", no_args_is_help=True)
app.add_typer(concurrency_app, name="concurrency")
dlq_app = typer.Typer(help="Failed async events: list and redrive.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
cost_app = typer.Typer(help="Lambda's pricing: estimates and reports.", no_args_is_help=True)
app.add_typer(cost_app, name="cost")
provisioned_app = typer.Typer(
    help="Provisioned concurrency of a version or alias.", no_args_is_help=True
)
app.add_typer(provisioned_app, name="provisioned")

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint", "-e", help="Router URL (default $KLAMBDA_ENDPOINT or http://127.0.0.1:8080)"
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """An error from the router or the API server ends the command with its message."""
    try:
        yield
    except (ApiError, BackendError) as err:
        fail(str(err))


def client(ep: str | None) -> Client:
    return Client(endpoint(ep))


def read_payload(payload: str | None) -> bytes:
    if payload is None:
        return b"{}"
    if payload.startswith("@"):
        path = Path(payload[1:])
        if not path.is_file():
            fail(f"--payload: no such file {path}")
        return path.read_bytes()
    return payload.encode()


@app.command()
def up(
    directory: Annotated[Path, typer.Argument(help="Folder (or file) of Function manifests")],
    http_port: Annotated[int, typer.Option(help="Lambda REST API, /metrics, /healthz")] = 8080,
    grpc_port: Annotated[int, typer.Option(help="gRPC klambda.v1.Invoker")] = 50051,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    state: Annotated[Path | None, typer.Option(help="State folder (default DIR/.klambda)")] = None,
    account_concurrency: Annotated[
        int | None, typer.Option(help="Account concurrency limit")
    ] = None,
    keep_warm: Annotated[
        float | None, typer.Option(help="Seconds an idle environment is kept")
    ] = None,
    cgroups: Annotated[
        bool, typer.Option(help="Limit memory/CPU with cgroups where possible")
    ] = True,
    cpu_limits: Annotated[
        bool, typer.Option(help="CPU in proportion to memory (1769 MB = 1 vCPU)")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not echo function logs")] = False,
) -> None:
    """Run the functions in DIRECTORY locally: router, workers and environments."""
    from klambda.api.manifest import ManifestError
    from klambda.router.server import Router
    from klambda.settings import RouterSettings

    if not directory.exists():
        fail(f"{directory}: no such file or folder", 2)
    settings = RouterSettings.from_env(
        http_port=http_port,
        grpc_port=grpc_port,
        http_host=host,
        grpc_host=host,
        state_dir=state,
        account_concurrency=account_concurrency,
        keep_warm_seconds=keep_warm,
        cgroups=cgroups,
        cpu_limits=cpu_limits,
        echo_logs=not quiet,
    )
    router = Router(settings, directory)
    try:
        invoker = router.load()
    except ManifestError as err:
        typer.echo(f"klambda up: nothing started, {err}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await router.start()
        except OSError as err:
            await router.stop()
            fail(f"cannot start the router: {err}", 2)
        ep = router.endpoint()
        typer.echo(f"klambda: {len(invoker.registry.functions)} function(s) from {directory}")
        for name, entry in sorted(invoker.registry.functions.items()):
            t = entry.latest
            note = "" if t.state == "Active" else f"  {t.state}: {t.state_reason}"
            typer.echo(
                f"  {name:<24} {t.config.runtime:<11} {t.config.memory_mb:>5} MB "
                f"{t.config.timeout_s:>4} s{note}"
            )
        cg = router.cgroups
        typer.echo(f"  memory limits: {'cgroups' if cg and cg.available else 'RLIMIT_AS'}")
        typer.echo(f"klambda: REST API on {ep['http']}, gRPC on {ep['grpc']}  (Ctrl-C stops)")
        sys.stdout.flush()
        await stop.wait()
        typer.echo("klambda: stopping")
        await router.stop()

    asyncio.run(main())


@app.command()
def router(
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Learn functions from the API server")
    ] = True,
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Default: in-cluster service account")
    ] = None,
    http_port: Annotated[int, typer.Option()] = 8080,
    grpc_port: Annotated[int, typer.Option()] = 50051,
    host: Annotated[str, typer.Option()] = "0.0.0.0",
    account_concurrency: Annotated[int | None, typer.Option()] = None,
    wait_for_worker: Annotated[
        float,
        typer.Option(help="Seconds a request waits for a worker pod of a version scaled to zero"),
    ] = 30.0,
) -> None:
    """Cluster mode: route to worker pods of the Functions, Versions, Aliases in NAMESPACE."""
    from klambda.router.server import ClusterOptions, Router
    from klambda.settings import RouterSettings

    if not cluster:
        fail("use `klambda up DIR` for local mode", 2)
    settings = RouterSettings.from_env(
        http_port=http_port,
        grpc_port=grpc_port,
        http_host=host,
        grpc_host=host,
        account_concurrency=account_concurrency,
        echo_logs=False,
    )
    r = Router(settings, cluster=ClusterOptions(namespace, kubeconfig, wait_for_worker))
    r.load()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await r.start()
        ep = r.endpoint()
        typer.echo(
            f"klambda router: namespace {namespace}; REST API on {ep['http']}, gRPC on {ep['grpc']}"
        )
        sys.stdout.flush()
        await stop.wait()
        await r.stop()

    asyncio.run(main())


@app.command()
def worker(
    function: Annotated[str, typer.Option("--function")],
    version: Annotated[str, typer.Option("--version")],
    host: Annotated[str, typer.Option()] = "0.0.0.0",
    port: Annotated[int | None, typer.Option(envvar="KLAMBDA_WORKER_PORT")] = None,
    max_environments: Annotated[
        int, typer.Option(help="Environments this worker may run at once")
    ] = 1,
    cgroups: Annotated[bool, typer.Option()] = True,
) -> None:
    """A function pod's agent: serve klambda.v1.Worker for one function version."""
    import os

    from klambda.worker.config import WorkerConfigError, from_environment
    from klambda.worker.server import serve

    try:
        cfg = from_environment(os.environ)
    except WorkerConfigError as err:
        fail(str(err), 2)
    if (cfg.function, cfg.version) != (function, version):
        fail(
            f"--function/--version {function}:{version} do not match the environment's "
            f"{cfg.function}:{cfg.version}",
            2,
        )
    asyncio.run(serve(cfg, host, port or 9000, max_environments, cgroups))


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="FUNCTION[:QUALIFIER] (version, alias, $LATEST)")],
    payload: Annotated[str | None, typer.Option("--payload", "-p", help="JSON, or @FILE")] = None,
    qualifier: Annotated[str | None, typer.Option("--qualifier", "-q")] = None,
    async_: Annotated[bool, typer.Option("--async", help="Invocation type Event")] = False,
    log_tail: Annotated[
        bool, typer.Option("--log-tail", help="Print the invocation's log")
    ] = False,
    ep: EndpointOpt = None,
) -> None:
    """Invoke a function and print its result."""
    with reported():
        res = client(ep).invoke(
            name,
            read_payload(payload),
            qualifier,
            "Event" if async_ else "RequestResponse",
            log_tail,
        )
    if res.log is not None:
        typer.echo(res.log.rstrip("\n"), err=True)
    if async_:
        typer.echo(json.dumps({"StatusCode": res.status, "RequestId": res.request_id}))
        return
    typer.echo(res.payload.decode(errors="replace"))
    if res.function_error:
        typer.echo(
            f"FunctionError: {res.function_error} (version {res.executed_version})", err=True
        )
        raise typer.Exit(1)


def table(rows: list[list[Any]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip())


KubeconfigOpt = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="Act on the cluster's objects instead of a router"),
]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-N")]


def backend(ep: str | None, kubeconfig: str | None, namespace: str | None) -> Backend:
    if kubeconfig:
        import os

        from klambda.api import limits

        limit = int(
            os.environ.get("KLAMBDA_ACCOUNT_CONCURRENCY", limits.ACCOUNT_CONCURRENCY_DEFAULT)
        )
        return KubeBackend(kubeconfig, namespace, limit)
    return RestBackend(client(ep))


@get_app.command("functions")
def get_functions(
    ep: EndpointOpt = None, kubeconfig: KubeconfigOpt = None, namespace: NamespaceOpt = None
) -> None:
    """Name, runtime, memory, timeout, state of every function."""
    with reported():
        fns = backend(ep, kubeconfig, namespace).functions()
    table(
        [
            [
                f["FunctionName"],
                f["Runtime"],
                f["Handler"],
                f["MemorySize"],
                f["Timeout"],
                f["State"],
                f["CodeSha256"][:12],
            ]
            for f in fns
        ],
        ["NAME", "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT", "STATE", "CODE"],
    )


@get_app.command("versions")
def get_versions(
    function: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A function's versions: $LATEST and the published ones."""
    with reported():
        vs = backend(ep, kubeconfig, namespace).versions(function)
    table(
        [
            [
                v["Version"],
                v["MemorySize"],
                v["Timeout"],
                v["CodeSha256"][:12],
                v["State"],
                v["Description"],
            ]
            for v in vs
        ],
        ["VERSION", "MEMORY", "TIMEOUT", "CODE", "STATE", "DESCRIPTION"],
    )


@get_app.command("aliases")
def get_aliases(
    function: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A function's aliases and their routing."""
    with reported():
        aliases = backend(ep, kubeconfig, namespace).aliases(function)
    rows = []
    for a in aliases:
        weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        extra = ", ".join(f"{v}={w}" for v, w in weights.items())
        rows.append([a["Name"], a["FunctionVersion"], extra or "-", a["Description"]])
    table(rows, ["ALIAS", "VERSION", "ADDITIONAL", "DESCRIPTION"])


@app.command("publish-version")
def publish_version(
    function: Annotated[str, typer.Argument()],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Snapshot $LATEST as a new immutable version (the same one if nothing changed)."""
    with reported():
        v = backend(ep, kubeconfig, namespace).publish_version(function, description)
    typer.echo(
        f"{function}: version {v['Version']}  code {v['CodeSha256'][:12]}  "
        f"{v['MemorySize']} MB {v['Timeout']} s"
    )


def parse_weights(weights: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for w in weights:
        version, sep, share = w.partition("=")
        try:
            out[version] = float(share)
        except ValueError:
            fail(f"--weight {w!r}: expected VERSION=WEIGHT, e.g. 2=0.1", 2)
        if not sep or not version:
            fail(f"--weight {w!r}: expected VERSION=WEIGHT, e.g. 2=0.1", 2)
    return out


@alias_app.command("set")
def alias_set(
    function: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument(help="The alias, e.g. prod")],
    version: Annotated[
        str | None,
        typer.Option("--version", "-v", help="The version it points to (a number or $LATEST)"),
    ] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight", "-w", help="VERSION=WEIGHT: send that share (0-1) to a second version"
        ),
    ] = None,
    no_routing: Annotated[
        bool, typer.Option("--no-routing", help="Remove the additional version")
    ] = False,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Point an alias at a version, optionally splitting traffic with a second one."""
    routing = parse_weights(weight) if weight else ({} if no_routing else None)
    with reported():
        a = backend(ep, kubeconfig, namespace).put_alias(
            function, name, version, routing, description
        )
    typer.echo(describe_alias(function, a))


def describe_alias(function: str, a: dict[str, Any]) -> str:
    weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    text = f"{function}:{a['Name']} -> version {a['FunctionVersion']}"
    for v, w in weights.items():
        text += f" ({1 - w:.0%}), version {v} ({w:.0%})"
    return text


@alias_app.command("delete")
def alias_delete(
    function: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete an alias."""
    with reported():
        backend(ep, kubeconfig, namespace).delete_alias(function, name)
    typer.echo(f"{function}:{name} deleted")


@app.command("delete-version")
def delete_version(
    function: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete a version (refused while an alias routes to it)."""
    with reported():
        backend(ep, kubeconfig, namespace).delete_version(function, version)
    typer.echo(f"{function}:{version} deleted")


@concurrency_app.command("put")
def concurrency_put(
    function: Annotated[str, typer.Argument()],
    reserved: Annotated[
        int, typer.Option("--reserved", "-r", help="Reserved concurrency; 0 stops every invocation")
    ],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Reserve concurrency for a function (it never runs more than that)."""
    with reported():
        backend(ep, kubeconfig, namespace).put_reserved(function, reserved)
    typer.echo(f"{function}: reserved concurrency {reserved}")


@concurrency_app.command("delete")
def concurrency_delete(
    function: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Remove a function's reservation: it shares the unreserved pool again."""
    with reported():
        backend(ep, kubeconfig, namespace).put_reserved(function, None)
    typer.echo(f"{function}: no reserved concurrency")


@provisioned_app.command("put")
def provisioned_put(
    target: Annotated[str, typer.Argument(help="FUNCTION:QUALIFIER (a version or an alias)")],
    count: Annotated[int, typer.Option("--count", "-n")],
    wait: Annotated[bool, typer.Option(help="Wait until the environments are ready")] = True,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Keep COUNT environments initialised ahead of traffic for a version or alias."""
    function, _, qualifier = target.partition(":")
    with reported():
        status = backend(ep, kubeconfig, namespace).put_provisioned(
            function, qualifier, count, wait
        )
    typer.echo(
        f"{target}: provisioned {status['AvailableProvisionedConcurrentExecutions']}/"
        f"{status['RequestedProvisionedConcurrentExecutions']} {status['Status']}"
        + (f" ({status['StatusReason']})" if status.get("StatusReason") else "")
    )
    if status["Status"] == "FAILED":
        raise typer.Exit(1)


@dlq_app.command("list")
def dlq_list(
    function: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option()] = 100,
    ep: EndpointOpt = None,
) -> None:
    """Events that failed every attempt: request id, error, attempts."""
    with reported():
        data = client(ep).json("GET", f"/klambda/v1/functions/{function}/dlq?limit={limit}")
    table(
        [
            [
                d["requestId"],
                d["condition"],
                d["attempts"],
                d["errorType"] or "-",
                (d["errorMessage"] or "")[:60],
            ]
            for d in data["DeadLetters"]
        ],
        ["REQUEST ID", "CONDITION", "ATTEMPTS", "ERROR TYPE", "ERROR"],
    )
    typer.echo(f"{data['Depth']} dead letter(s) for {function}")


@dlq_app.command("redrive")
def dlq_redrive(
    function: Annotated[str, typer.Argument()],
    request_id: Annotated[str | None, typer.Argument(help="One event; or --all")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter of the function")] = False,
    ep: EndpointOpt = None,
) -> None:
    """Send dead letters through again, with their request ids."""
    if bool(request_id) == all_:
        fail("give a REQUEST_ID or --all", 2)
    with reported():
        data = client(ep).json(
            "POST",
            f"/klambda/v1/functions/{function}/dlq/redrive",
            {"RequestId": request_id} if request_id else {},
        )
    typer.echo(f"{function}: {data['Redriven']} event(s) sent through again")


def plain(x: float) -> str:
    """A price as written, without exponent: 0.00001667, 0.2."""
    return f"{x:.10f}".rstrip("0").rstrip(".")


PriceGbOpt = Annotated[
    float | None, typer.Option("--price-gb-second", help="$ per GB-second (default 0.00001667)")
]
PriceReqOpt = Annotated[
    float | None,
    typer.Option("--price-million-requests", help="$ per million requests (default 0.20)"),
]


@cost_app.command("estimate")
def cost_estimate(
    invocations: Annotated[int, typer.Option("--invocations", "-n", help="A month's invocations")],
    memory: Annotated[int, typer.Option("--memory", "-m", help="Memory size in MB")],
    duration: Annotated[str, typer.Option("--duration", "-d", help="Average, e.g. 200ms, 1s")],
    free_tier: Annotated[bool, typer.Option(help="Apply the monthly free tier")] = True,
    price_gb_second: PriceGbOpt = None,
    price_million_requests: PriceReqOpt = None,
) -> None:
    """A month's Lambda bill for a workload."""
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


@app.command()
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


@app.command()
def logs(
    function: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the last N lines")] = None,
    ep: EndpointOpt = None,
) -> None:
    """Print a function's log lines (START, handler output, END, REPORT)."""
    try:
        for line in client(ep).logs(function, follow, limit):
            typer.echo(line)
    except ApiError as err:
        fail(str(err))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    app()
