"""Resource verbs: functions, versions, aliases, reserved and provisioned concurrency.

Each goes to a `Control` - the router's REST API, or the API server's objects with
`--kubeconfig` - and prints Lambda's shapes the same way whichever answered.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from klambda.cli.options import EndpointOpt, KubeconfigOpt, NamespaceOpt, control
from klambda.cli.output import fail, reported, table

get_app = typer.Typer(help="List functions, versions or aliases.", no_args_is_help=True)
alias_app = typer.Typer(help="Create, change or delete aliases.", no_args_is_help=True)
concurrency_app = typer.Typer(help="Reserved concurrency of a function.", no_args_is_help=True)
provisioned_app = typer.Typer(
    help="Provisioned concurrency of a version or alias.", no_args_is_help=True
)


@get_app.command("functions")
def get_functions(
    ep: EndpointOpt = None, kubeconfig: KubeconfigOpt = None, namespace: NamespaceOpt = None
) -> None:
    """Name, runtime, memory, timeout, state of every function."""
    with reported():
        fns = control(ep, kubeconfig, namespace).functions()
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
        vs = control(ep, kubeconfig, namespace).versions(function)
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
        aliases = control(ep, kubeconfig, namespace).aliases(function)
    rows = []
    for a in aliases:
        weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        extra = ", ".join(f"{v}={w}" for v, w in weights.items())
        rows.append([a["Name"], a["FunctionVersion"], extra or "-", a["Description"]])
    table(rows, ["ALIAS", "VERSION", "ADDITIONAL", "DESCRIPTION"])


@get_app.command("triggers")
def get_triggers(
    function: Annotated[str | None, typer.Argument()] = None,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Triggers (schedules, HTTP routes, topics) and function URLs, with their state."""
    with reported():
        got = control(ep, kubeconfig, namespace).triggers(function)
    rows = []
    for t in got["Triggers"]:
        target = t["function"] + (f":{t['alias']}" if t.get("alias") else "")
        state = t["state"] + (f" ({t['reason']})" if t.get("reason") else "")
        rows.append(
            [target, t["name"], t["type"], t.get("detail") or "-", state, t.get("nextFire") or "-"]
        )
    table(rows, ["FUNCTION", "TRIGGER", "TYPE", "DETAIL", "STATE", "NEXT"])
    for u in got["FunctionUrls"]:
        target = u["function"] + (f":{u['alias']}" if u.get("alias") else "")
        typer.echo(f"{target}: function URL {u['url']} ({u['invokeMode']}, auth {u['authType']})")


def publish_version(
    function: Annotated[str, typer.Argument()],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Snapshot $LATEST as a new immutable version (the same one if nothing changed)."""
    with reported():
        v = control(ep, kubeconfig, namespace).publish_version(function, description)
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
        a = control(ep, kubeconfig, namespace).put_alias(
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
        control(ep, kubeconfig, namespace).delete_alias(function, name)
    typer.echo(f"{function}:{name} deleted")


def delete_version(
    function: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete a version (refused while an alias routes to it)."""
    with reported():
        control(ep, kubeconfig, namespace).delete_version(function, version)
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
        control(ep, kubeconfig, namespace).put_reserved(function, reserved)
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
        control(ep, kubeconfig, namespace).put_reserved(function, None)
    typer.echo(f"{function}: no reserved concurrency")


@provisioned_app.command("put")
def provisioned_put(
    target: Annotated[str, typer.Argument(help="FUNCTION:QUALIFIER (a version or an alias)")],
    count: Annotated[int, typer.Option("--count", "-c", help="Environments to keep ready")],
    wait: Annotated[bool, typer.Option(help="Wait until the environments are ready")] = True,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Keep COUNT environments initialised ahead of traffic for a version or alias."""
    function, _, qualifier = target.partition(":")
    with reported():
        status = control(ep, kubeconfig, namespace).put_provisioned(
            function, qualifier, count, wait
        )
    typer.echo(
        f"{target}: provisioned {status['AvailableProvisionedConcurrentExecutions']}/"
        f"{status['RequestedProvisionedConcurrentExecutions']} {status['Status']}"
        + (f" ({status['StatusReason']})" if status.get("StatusReason") else "")
    )
    if status["Status"] == "FAILED":
        raise typer.Exit(1)
