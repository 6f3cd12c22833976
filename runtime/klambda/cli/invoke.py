"""`klambda invoke`: one invocation through the router's REST API, as the AWS CLI does it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from klambda.cli.options import EndpointOpt, client, read_payload
from klambda.cli.output import reported


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
