"""`klambda logs`: a function's log lines as Lambda writes them, recent, followed, or from
any time window the router's log store keeps.

`klambda logs FUNCTION` is `klambda logs show FUNCTION`: the group runs `show` for any
first word that is not one of its verbs (a function called `query` is `logs show query`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from klambda.cli.client import ApiError
from klambda.cli.options import EndpointOpt, client
from klambda.cli.output import fail, reported, table


class ShowByDefault(TyperGroup):
    """`logs FUNCTION ...` runs `logs show FUNCTION ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # a click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


logs_app = typer.Typer(
    cls=ShowByDefault,
    help="Function logs: recent and followed, a time window, Insights queries.",
    no_args_is_help=True,
)

SinceOpt = Annotated[
    str | None, typer.Option(help="How far back: 30s, 15m, 1h, 7d (a window from the store)")
]
StartOpt = Annotated[str | None, typer.Option(help="From: ISO 8601 (UTC) or epoch seconds")]
EndOpt = Annotated[str | None, typer.Option(help="To: ISO 8601 (UTC) or epoch seconds")]


@logs_app.command("show")
def show(
    function: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the last N lines")] = None,
    since: SinceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    filter_pattern: Annotated[
        str | None,
        typer.Option(
            "--filter-pattern",
            help="Only records matching a CloudWatch filter pattern: ERROR -Retry, "
            "'{ $.level = \"ERROR\" }', '[ip, ..., status = 5*, bytes]'",
        ),
    ] = None,
    ep: EndpointOpt = None,
) -> None:
    """Print a function's log lines (START, handler output, END, REPORT)."""
    window: dict[str, Any] = {"since": since, "start": start, "end": end}
    if follow and any(window.values()):
        fail("--follow shows lines as they come: it takes no --since, --start or --end")
    try:
        for line in client(ep).logs(
            function, follow, limit, filterPattern=filter_pattern, **window
        ):
            typer.echo(line)
    except ApiError as err:
        fail(str(err))
    except KeyboardInterrupt:
        pass


@logs_app.command("query")
def query(
    query_string: Annotated[str, typer.Argument(metavar="QUERY", help="A Logs Insights query")],
    function: Annotated[
        list[str] | None,
        typer.Option("--function", help="A function to query (repeat it; default: all)"),
    ] = None,
    since: SinceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Insights' JSON results")] = False,
    ep: EndpointOpt = None,
) -> None:
    """Run a Logs Insights query across functions, e.g.

    klambda logs query 'filter @message like /ERROR/ | stats count() by bin(5m)' --since 1h
    """
    body: dict[str, Any] = {"queryString": query_string, "functions": function or []}
    if since is not None:
        body["since"] = since
    if start is not None:
        body["startTime"] = start
    if end is not None:
        body["endTime"] = end
    with reported():
        out = client(ep).json("POST", "/klambda/v1/logs/query", body)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    fields: list[str] = out["fields"]
    rows = [
        [_cell({c["field"]: c["value"] for c in row}.get(f)) for f in fields]
        for row in out["results"]
    ]
    table(rows, fields)
    stats = out["statistics"]
    typer.echo(
        f"{len(rows)} row(s); {stats['recordsMatched']:.0f} records matched, "
        f"{stats['recordsScanned']:.0f} scanned in {stats['seconds']:.3f}s",
        err=True,
    )


def _cell(value: str | None) -> str:
    if value is None:
        return "-"
    return value.replace("\n", "\\n").replace("\t", " ")
