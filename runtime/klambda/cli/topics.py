"""`klambda publish TOPIC`: a message to every function subscribed to a topic (SNS's
Publish), through the router's REST API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from klambda.cli.options import EndpointOpt, client
from klambda.cli.output import fail, reported

TYPES = ("String", "Number", "String.Array", "Binary")


def parse_attribute(text: str) -> tuple[str, dict[str, str]]:
    """`NAME=VALUE` (a String) or `NAME:TYPE=VALUE` (Number, String.Array, Binary)."""
    head, sep, value = text.partition("=")
    name, _, dtype = head.partition(":")
    dtype = dtype or "String"
    if not sep or not name or dtype not in TYPES:
        fail(
            f"--attribute {text!r}: expected NAME=VALUE or NAME:TYPE=VALUE, TYPE one of "
            f"{', '.join(TYPES)}",
            2,
        )
    field = "BinaryValue" if dtype == "Binary" else "StringValue"
    return name, {"DataType": dtype, field: value}


def publish(
    topic: Annotated[str, typer.Argument(help="the topic's name (or ARN)")],
    message: Annotated[str, typer.Option("--message", "-m", help="the message, or @FILE")],
    subject: Annotated[str | None, typer.Option("--subject", "-s")] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="NAME=VALUE or NAME:Number=5 (repeatable)"),
    ] = None,
    ep: EndpointOpt = None,
) -> None:
    """Publish a message to a topic: every subscribed function whose filter policy it
    passes is invoked asynchronously with SNS's event."""
    if message.startswith("@"):
        message = Path(message[1:]).read_text()
    body: dict[str, Any] = {
        "Message": message,
        "MessageAttributes": dict(parse_attribute(a) for a in attribute or []),
    }
    if subject is not None:
        body["Subject"] = subject
    name = topic.rsplit(":", 1)[-1]
    with reported():
        out = client(ep).json("POST", f"/klambda/v1/topics/{quote(name, safe='')}/messages", body)
    typer.echo(json.dumps(out))
