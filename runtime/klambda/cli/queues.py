"""`klambda queue send|show|mappings` and `klambda stream put`: work queues (SQS's role),
streams (Kinesis's) and the mappings that read them, through the router's REST API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from klambda.cli.options import EndpointOpt, client
from klambda.cli.output import fail, reported

queue_app = typer.Typer(help="Work queues that event source mappings drain (SQS's role).")


def parse_attribute(text: str) -> tuple[str, dict[str, str]]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        fail(f"--attribute {text!r}: expected NAME=VALUE", 2)
    return name, {"DataType": "String", "StringValue": value}


@queue_app.command("send")
def send(
    queue: Annotated[str, typer.Argument(help="the queue's name")],
    body: Annotated[str, typer.Option("--body", "-b", help="the message body, or @FILE")],
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="NAME=VALUE (repeatable)"),
    ] = None,
    ep: EndpointOpt = None,
) -> None:
    """Send a message to a queue (SQS's SendMessage)."""
    if body.startswith("@"):
        body = Path(body[1:]).read_text()
    request: dict[str, Any] = {
        "MessageBody": body,
        "MessageAttributes": dict(parse_attribute(a) for a in attribute or []),
    }
    with reported():
        out = client(ep).json(
            "POST", f"/klambda/v1/work-queues/{quote(queue, safe='')}/messages", request
        )
    typer.echo(json.dumps(out))


@queue_app.command("show")
def show(
    queue: Annotated[str, typer.Argument(help="the queue's name (a DLQ too)")],
    limit: Annotated[int, typer.Option(help="at most this many messages")] = 100,
    ep: EndpointOpt = None,
) -> None:
    """A queue's depth and its oldest messages."""
    with reported():
        out = client(ep).json(
            "GET", f"/klambda/v1/work-queues/{quote(queue, safe='')}?limit={limit}"
        )
    typer.echo(json.dumps(out, indent=2))


@queue_app.command("mappings")
def mappings(ep: EndpointOpt = None) -> None:
    """The event source mappings: state, concurrency, last processing result."""
    with reported():
        out = client(ep).json("GET", "/klambda/v1/event-source-mappings")
    typer.echo(json.dumps(out, indent=2))


stream_app = typer.Typer(help="Streams that event source mappings read in order (Kinesis's role).")


@stream_app.command("put")
def put_record(
    stream: Annotated[str, typer.Argument(help="the stream's name")],
    partition_key: Annotated[
        str, typer.Option("--partition-key", "-k", help="records with one key stay in order")
    ],
    data: Annotated[str, typer.Option("--data", "-d", help="the record's data, or @FILE")],
    ep: EndpointOpt = None,
) -> None:
    """Put a record in a stream (Kinesis's PutRecord)."""
    raw = Path(data[1:]).read_bytes() if data.startswith("@") else data.encode()
    request = {"PartitionKey": partition_key, "Data": base64.b64encode(raw).decode()}
    with reported():
        out = client(ep).json(
            "POST", f"/klambda/v1/streams/{quote(stream, safe='')}/records", request
        )
    typer.echo(json.dumps(out))
