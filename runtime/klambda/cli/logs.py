"""`klambda logs`: a function's log lines from the router, as Lambda writes them."""

from __future__ import annotations

from typing import Annotated

import typer

from klambda.cli.client import ApiError
from klambda.cli.options import EndpointOpt, client
from klambda.cli.output import fail


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
