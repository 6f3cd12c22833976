"""`klambda provisioned autoscale` and `klambda provisioned autoscaling`: provisioned
concurrency autoscaling of an alias or a version (target tracking between a min and a max,
scheduled actions), in local mode or on a cluster. Both join the other `provisioned` verbs
(klambda.cli.resources)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from klambda.api.autoscaling import ProvisionedAutoscaling
from klambda.api.manifest import describe_errors
from klambda.cli.options import EndpointOpt, KubeconfigOpt, NamespaceOpt, control
from klambda.cli.output import fail, reported
from klambda.cli.resources import provisioned_app

_SCHEDULE = re.compile(r"^(?P<name>[^=\s]+)=(?P<expr>(?:cron|rate)\([^)]*\))(?P<rest>.*)$")
_KEYS = {"min": "minCapacity", "max": "maxCapacity", "tz": "timezone"}


def scheduled_action(text: str) -> dict[str, Any]:
    """`NAME=cron(...) min=N max=N tz=ZONE` as a scheduled action's fields, or ValueError."""
    m = _SCHEDULE.match(text.strip())
    if m is None:
        raise ValueError(
            f"--schedule {text!r}: write NAME=cron(...) or NAME=rate(...), then min=N, max=N, "
            "tz=ZONE, e.g. 'workday=cron(0 8 ? * MON-FRI *) min=5 max=20'"
        )
    action: dict[str, Any] = {"name": m["name"], "schedule": m["expr"]}
    for token in m["rest"].split():
        key, _, value = token.partition("=")
        if key not in _KEYS or not value:
            raise ValueError(f"--schedule {text!r}: {token!r} is not min=N, max=N or tz=ZONE")
        if key == "tz":
            action[_KEYS[key]] = value
        elif value.isdigit():
            action[_KEYS[key]] = int(value)
        else:
            raise ValueError(f"--schedule {text!r}: {key}={value!r} is not a whole number")
    return action


def policy_of(
    minimum: int,
    maximum: int,
    target: float,
    scale_in_cooldown: float,
    scale_out_cooldown: float,
    schedules: list[str],
) -> dict[str, Any]:
    """The policy as a manifest writes it, checked by the model (ValueError naming the
    field otherwise)."""
    raw = {
        "minCapacity": minimum,
        "maxCapacity": maximum,
        "targetUtilization": target,
        "scaleInCooldownSeconds": scale_in_cooldown,
        "scaleOutCooldownSeconds": scale_out_cooldown,
        "scheduledActions": [scheduled_action(s) for s in schedules],
    }
    try:
        return ProvisionedAutoscaling.model_validate(raw).wire()
    except ValidationError as err:
        raise ValueError("; ".join(describe_errors(err))) from None


@provisioned_app.command("autoscale")
def autoscale(
    target: Annotated[str, typer.Argument(help="FUNCTION:QUALIFIER (an alias or a version)")],
    minimum: Annotated[int, typer.Option("--min", help="Fewest provisioned environments")] = 1,
    maximum: Annotated[int, typer.Option("--max", help="Most provisioned environments")] = 10,
    utilization: Annotated[
        float, typer.Option("--target", help="Utilization to keep (0.1-0.9)")
    ] = 0.7,
    scale_in_cooldown: Annotated[
        float, typer.Option(help="Seconds of low utilization (and since a change) to scale in")
    ] = 300.0,
    scale_out_cooldown: Annotated[
        float, typer.Option(help="Seconds after a scale-out before the next")
    ] = 0.0,
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule", help="NAME=cron(...)|rate(...) min=N max=N tz=ZONE (repeatable)"
        ),
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="Remove the autoscaling")] = False,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Keep an alias's or a version's provisioned concurrency at a target utilization."""
    function, _, qualifier = target.partition(":")
    if not qualifier:
        fail(f"{target}: give FUNCTION:ALIAS or FUNCTION:VERSION", 2)
    policy = None
    if not off:
        try:
            policy = policy_of(
                minimum,
                maximum,
                utilization,
                scale_in_cooldown,
                scale_out_cooldown,
                schedule or [],
            )
        except ValueError as err:
            fail(str(err), 2)
    with reported():
        status = control(ep, kubeconfig, namespace).put_autoscaling(function, qualifier, policy)
    if policy is None:
        typer.echo(f"{target}: no provisioned autoscaling")
        return
    typer.echo(
        f"{target}: provisioned concurrency kept between {policy['minCapacity']} and "
        f"{policy['maxCapacity']} at {policy['targetUtilization']:g} utilization"
        + (
            f" (now {status['provisionedConcurrency']})"
            if "provisionedConcurrency" in status
            else ""
        )
    )


@provisioned_app.command("autoscaling")
def autoscaling(
    target: Annotated[str, typer.Argument(help="FUNCTION:QUALIFIER")],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """An alias's or version's autoscaling: its policy, the bounds in force, its count, the
    last change and why (JSON)."""
    function, _, qualifier = target.partition(":")
    with reported():
        status = control(ep, kubeconfig, namespace).autoscaling(function, qualifier)
    typer.echo(json.dumps(status, indent=2))
