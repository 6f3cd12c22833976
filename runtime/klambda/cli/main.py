"""`klambda`: run functions locally (`up`), invoke them, read their logs and state."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from klambda.cli.client import ApiError, Client, endpoint

app = typer.Typer(
    help="Lambda's model - functions, versions, aliases, concurrency - locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
get_app = typer.Typer(help="List functions, versions or aliases.", no_args_is_help=True)
app.add_typer(get_app, name="get")

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint", "-e", help="Router URL (default $KLAMBDA_ENDPOINT or http://127.0.0.1:8080)"
    ),
]


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


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
    try:
        res = client(ep).invoke(
            name,
            read_payload(payload),
            qualifier,
            "Event" if async_ else "RequestResponse",
            log_tail,
        )
    except ApiError as err:
        fail(str(err))
        return
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


@get_app.command("functions")
def get_functions(ep: EndpointOpt = None) -> None:
    """Name, runtime, memory, timeout, state of every function."""
    try:
        fns = client(ep).json("GET", "/2015-03-31/functions")["Functions"]
    except ApiError as err:
        fail(str(err))
        return
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
