"""`klambda dlq`: async events that failed every attempt, listed and sent through again."""

from __future__ import annotations

from typing import Annotated

import typer

from klambda.cli.options import EndpointOpt, client
from klambda.cli.output import fail, reported, table

dlq_app = typer.Typer(help="Failed async events: list and redrive.", no_args_is_help=True)


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
