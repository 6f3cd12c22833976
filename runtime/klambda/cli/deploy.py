"""`klambda deploy TEMPLATE`: an AWS SAM template applied to a router or a cluster.

Read and checked by AWS's libraries (klambda.deploy.template), mapped to klambda's
resources (klambda.deploy.sam), compared with what is there (klambda.deploy.plan), the plan
printed, then applied through the control protocols every verb uses. The triggers of a
function with AutoPublishAlias go on its alias, as SAM attaches them; an alias whose
function has a DeploymentPreference is moved to the new version by a gradual deployment
(klambda.deploy.gradual) that this command drives and that rolls back on an alarm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from klambda.cli.client import Client, endpoint
from klambda.cli.control import Control, ControlError
from klambda.cli.function_control import FunctionControl
from klambda.cli.functions import functions, pairs
from klambda.cli.options import EndpointOpt, KubeconfigOpt, NamespaceOpt, client, control
from klambda.cli.output import fail, reported
from klambda.deploy import gradual, plan, sam
from klambda.deploy import metrics as deploy_metrics
from klambda.deploy import template as sam_template

ROLE = "arn:aws:iam::000000000000:role/klambda"


def current_state(
    fc: FunctionControl, ctl: Control, stack: str, wanted: set[str], aliases: dict[str, str]
) -> dict[str, plan.Current]:
    """What is there now, for the template's functions and the stack's others."""
    out: dict[str, plan.Current] = {}
    for cfg in ctl.functions():
        name = cfg["FunctionName"]
        got = fc.function(name)
        if got is None:
            continue
        tags = dict(got.get("Tags") or {})
        if name not in wanted and tags.get(sam.STACK_TAG) != stack:
            continue
        current = plan.Current(
            configuration=got["Configuration"],
            tags=tags,
            reserved=(got.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
            event_invoke=fc.event_invoke_config(name),
            aliases={a["Name"]: a for a in ctl.aliases(name)},
            triggers=got.get("Triggers"),
        )
        numbered = [v for v in ctl.versions(name) if str(v["Version"]).isdigit()]
        if numbered:
            current.newest = max(numbered, key=lambda v: int(v["Version"]))
        alias = aliases.get(name)
        if alias and alias in current.aliases:
            current.provisioned[alias] = fc.provisioned(name, alias)
        out[name] = current
    return out


def print_plan(changes: list[plan.Change]) -> None:
    for c in changes:
        typer.echo(f"{c.symbol} {c.action:<9} {c.function}")
        for d in c.details:
            typer.echo(f"      {d}")


class Applier:
    def __init__(
        self,
        fc: FunctionControl,
        ctl: Control,
        stack: str,
        current: dict[str, plan.Current],
        stats_endpoint: str | None,
        prometheus_url: str | None,
        hook_client: Client | None,
        check_every_s: float,
    ) -> None:
        self.fc, self.ctl, self.stack, self.current = fc, ctl, stack, current
        self.stats_endpoint = stats_endpoint
        self.prometheus_url = prometheus_url
        self.hook_client = hook_client
        self.check_every_s = check_every_s
        self.failed: list[str] = []

    def aliases(self, c: plan.Change) -> None:
        """Second, once every function is in place (hooks included): versions, aliases,
        their provisioned concurrency."""
        d = c.desired
        if d is None or c.action == "remove":
            return
        if d.alias and c.alias_triggers:
            # the alias's, not a version's: changed at once, before any gradual deployment,
            # which keeps them
            self.ctl.put_alias(d.name, d.alias, None, None, None, d.alias_triggers)
            typer.echo(f"{d.name}:{d.alias}: triggers {sorted(d.events)}")
        if d.alias and c.publish:
            self.publish_and_move(d)
        if d.alias and c.provisioned:
            self.ctl.put_provisioned(d.name, d.alias, d.provisioned, False)
            typer.echo(f"{d.name}:{d.alias}: provisioned concurrency {d.provisioned}")

    def apply(self, c: plan.Change) -> None:
        """First, the function itself: created, changed or removed."""
        if c.action == "remove":
            self.fc.delete_function(c.function)
            typer.echo(f"{c.function}: removed")
            return
        d = c.desired
        assert d is not None
        if c.action == "create":
            body = {**d.body, "Role": ROLE, "Code": d.code.request()}
            if not d.alias and (d.events or d.function_url):
                body["Triggers"] = d.function_triggers
            if d.code.image is not None:
                body["PackageType"] = "Image"
            self.fc.create_function(body)
            typer.echo(f"{d.name}: created")
        else:
            if c.code:
                self.fc.update_function_code(d.name, d.code.request())
            if c.configuration:
                self.fc.update_function_configuration(d.name, c.configuration)
            if c.tags_set:
                self.fc.tag(d.name, c.tags_set)
            if c.tags_removed:
                self.fc.untag(d.name, c.tags_removed)
        if c.reserved:
            self.ctl.put_reserved(d.name, d.reserved)
        if c.event_invoke:
            if d.event_invoke is None:
                self.fc.delete_event_invoke_config(d.name)
            else:
                self.fc.put_event_invoke_config(d.name, d.event_invoke, replace=True)

    def publish_and_move(self, d: sam.DesiredFunction) -> None:
        assert d.alias is not None
        self.fc.settled(d.name)
        version = str(self.ctl.publish_version(d.name, f"klambda deploy {self.stack}")["Version"])
        existing = (self.current.get(d.name) or plan.Current({})).aliases.get(d.alias)
        old = str(existing["FunctionVersion"]) if existing else None
        if old is None or old == version or d.preference is None:
            self.ctl.put_alias(d.name, d.alias, version, {}, None, d.alias_triggers)
            typer.echo(f"{d.name}:{d.alias} -> version {version}")
            return
        self.gradual(d, d.alias, old, version, d.preference)

    def gradual(
        self, d: sam.DesiredFunction, alias: str, old: str, new: str, pref: sam.Preference
    ) -> None:
        name = d.name
        if self.stats_endpoint is None and any(a.expression for a in pref.alarms):
            raise ControlError(
                f"alias {alias}: its alarms read a router's metrics: give --endpoint or "
                "--metrics-endpoint"
            )

        def describe(text: str) -> str:
            return f"klambda deploy {self.stack}: {old} -> {new} {pref.kind}: {text}"[:256]

        weight = [0.0]  # the last set

        def set_weight(w: float) -> None:
            weight[0] = w
            if w >= 1.0:
                self.ctl.put_alias(name, alias, new, {}, describe(f"{w:.0%}"))
            elif w <= 0.0:
                self.ctl.put_alias(name, alias, old, {}, describe(f"{w:.0%}"))
            else:
                self.ctl.put_alias(name, alias, old, {new: w}, describe(f"{w:.0%}"))

        def report(text: str) -> None:
            typer.echo(f"{name}:{alias} {text}")
            w = weight[0]
            if 0 < w < 1:  # keep the record on the alias up to date
                self.ctl.put_alias(name, alias, old, {new: w}, describe(text))

        def stats() -> gradual.Stats:
            if self.stats_endpoint is None:
                return gradual.Stats()
            return deploy_metrics.router_stats(self.stats_endpoint, name, new)

        def alerts() -> set[str]:
            assert self.prometheus_url is not None
            return deploy_metrics.firing_alerts(self.prometheus_url)

        def hook(function: str) -> str | None:
            if self.hook_client is None:
                return "no router to invoke the hook on (give --endpoint)"
            event = {"DeploymentId": f"{self.stack}-{name}-{new}", "Function": name,
                     "Alias": alias, "Version": new}  # fmt: skip
            res = self.hook_client.invoke(function, json.dumps(event).encode())
            if res.function_error:
                return f"{res.function_error}: {res.payload.decode(errors='replace')[:200]}"
            try:
                body = json.loads(res.payload or b"null")
            except ValueError:
                body = None
            if isinstance(body, dict) and str(body.get("status", "")).lower() == "failed":
                return f"it answered {body}"
            return None

        deployer = gradual.Deployer(
            set_weight, stats, alerts, hook, report, check_every_s=self.check_every_s
        )
        typer.echo(f"{name}:{alias} {old} -> {new}: {pref.kind}, {len(pref.alarms)} alarm(s)")
        result = deployer.run(pref.steps, pref.alarms, pref.hooks)
        final = "succeeded" if result.succeeded else f"rolled back: {result.message}"
        self.ctl.put_alias(name, alias, new if result.succeeded else old, {}, describe(final))
        if not result.succeeded:
            self.failed.append(f"{name}:{alias}: {result.message}")


def deploy(
    template: Annotated[Path, typer.Argument(help="An AWS SAM template (template.yaml)")],
    stack_name: Annotated[
        str | None,
        typer.Option("--stack-name", help="Tags the functions (default: the template's folder)"),
    ] = None,
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="NAME=VALUE (repeat)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, change nothing")
    ] = False,
    ignore_unsupported: Annotated[
        bool,
        typer.Option(
            "--ignore-unsupported", help="Deploy what klambda supports; name the rest and skip it"
        ),
    ] = False,
    minute_seconds: Annotated[
        float,
        typer.Option(
            "--minute-seconds", help="Seconds one minute of a deployment type lasts (tests)"
        ),
    ] = 60.0,
    check_every: Annotated[
        float, typer.Option("--check-every", help="Seconds between alarm checks")
    ] = 1.0,
    prometheus_url: Annotated[
        str | None,
        typer.Option("--prometheus-url", help="Where alarms given as alert names are read"),
    ] = None,
    metrics_endpoint: Annotated[
        str | None,
        typer.Option(
            "--metrics-endpoint",
            help="The router whose /metrics alarm expressions read (default --endpoint)",
        ),
    ] = None,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Deploy an AWS SAM template: print the plan (create / change / remove), then apply it."""
    stack = stack_name or template.resolve().parent.name
    try:
        tpl = sam_template.read(template, pairs(parameter, "--parameter"))
    except sam_template.TemplateError as err:
        fail(str(err), 2)
    desired, problems, notes = sam.desired(tpl, stack, minute_seconds)
    for line in tpl.warnings + notes:
        typer.echo(f"note: {line}")
    unsupported = [p for p in problems if "not supported" in p]
    fatal = [p for p in problems if p not in unsupported]
    if fatal or (unsupported and not ignore_unsupported):
        fail(
            "the template is refused:\n  "
            + "\n  ".join(fatal + unsupported)
            + ("\n(--ignore-unsupported deploys the rest)" if unsupported and not fatal else ""),
            2,
        )
    for line in unsupported:
        typer.echo(f"not applied: {line}")
    if prometheus_url is None:
        for d in desired:
            for a in d.preference.alarms if d.preference else []:
                if a.prometheus_alert:
                    fail(f"{d.logical_id}: alarm {a.prometheus_alert!r} is a Prometheus "
                         "alert name: give --prometheus-url (or an expression)", 2)  # fmt: skip
    stats_endpoint = metrics_endpoint or ep or (None if kubeconfig else endpoint(None))
    with reported():
        fc = functions(ep, kubeconfig, namespace)
        ctl = control(ep, kubeconfig, namespace)
        current = current_state(
            fc, ctl, stack, {d.name for d in desired},
            {d.name: d.alias for d in desired if d.alias},
        )  # fmt: skip
        changes = plan.plan(desired, current, stack)
        typer.echo(f"stack {stack}: {template}")
        print_plan(changes)
        todo = [c for c in changes if c.action != "unchanged"]
        if not todo:
            typer.echo("no changes")
            return
        if dry_run:
            return
        hooks = client(ep) if (ep or not kubeconfig) else None
        applier = Applier(
            fc, ctl, stack, current, stats_endpoint, prometheus_url, hooks, check_every
        )
        for step in (applier.apply, applier.aliases):
            for c in todo:
                try:
                    step(c)
                except ControlError as err:
                    fail(f"{c.function}: {err} (the changes before it are applied)")
    if applier.failed:
        fail("deployment rolled back: " + "; ".join(applier.failed))
    typer.echo("deployed")
