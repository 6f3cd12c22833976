"""The flags several verbs share, and what they select: a router, a cluster, a payload."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from klambda.cli.output import fail

# imported where used: the flags alone (as `klambda worker` uses them) need neither
if TYPE_CHECKING:
    from klambda.cli.client import Client
    from klambda.cli.control import Control

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint", "-e", help="Router URL (default $KLAMBDA_ENDPOINT or http://127.0.0.1:8080)"
    ),
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="Act on the cluster's objects instead of a router"),
]
NAMESPACE = ("--namespace", "-n")  # one spelling for every verb that takes one
NamespaceOpt = Annotated[
    str | None,
    typer.Option(*NAMESPACE, help="With --kubeconfig: the namespace (default: the context's)"),
]
PriceGbOpt = Annotated[
    float | None, typer.Option("--price-gb-second", help="$ per GB-second (default 0.00001667)")
]
PriceReqOpt = Annotated[
    float | None,
    typer.Option("--price-million-requests", help="$ per million requests (default 0.20)"),
]


def client(ep: str | None) -> Client:
    from klambda.cli.client import Client, endpoint

    return Client(endpoint(ep))


def control(ep: str | None, kubeconfig: str | None, namespace: str | None) -> Control:
    from klambda.cli.control import ClusterControl, RouterControl

    if kubeconfig:
        import os

        from klambda.api import limits

        limit = int(
            os.environ.get("KLAMBDA_ACCOUNT_CONCURRENCY", limits.ACCOUNT_CONCURRENCY_DEFAULT)
        )
        return ClusterControl(kubeconfig, namespace, limit)
    return RouterControl(client(ep))


def read_payload(payload: str | None) -> bytes:
    if payload is None:
        return b"{}"
    if payload.startswith("@"):
        path = Path(payload[1:])
        if not path.is_file():
            fail(f"--payload: no such file {path}")
        return path.read_bytes()
    return payload.encode()
