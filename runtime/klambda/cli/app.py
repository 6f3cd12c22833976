"""The `klambda` command: every verb and sub-app, assembled in the order `--help` lists them.

Each module holds one group of verbs (serving, invoke, resources, DLQ, cost, logs); this
one only puts them together.
"""

from __future__ import annotations

import typer

from klambda.cli import (
    autoscale,
    cost,
    deploy,
    dlq,
    functions,
    invoke,
    layers,
    logs,
    queues,
    resources,
    serve,
    topics,
)

app = typer.Typer(
    help="Lambda's model - functions, versions, aliases, concurrency - locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command()(serve.up)
app.command()(serve.router)
app.command()(serve.worker)
app.command()(invoke.invoke)
app.command()(topics.publish)
app.command()(deploy.deploy)
app.command("publish-version")(resources.publish_version)
app.command("delete-version")(resources.delete_version)
app.command()(cost.tune)

app.add_typer(functions.function_app, name="function")
app.add_typer(resources.get_app, name="get")
app.add_typer(resources.alias_app, name="alias")
app.add_typer(resources.concurrency_app, name="concurrency")
app.add_typer(dlq.dlq_app, name="dlq")
app.add_typer(cost.cost_app, name="cost")
resources.provisioned_app.command("autoscale")(autoscale.autoscale)
resources.provisioned_app.command("autoscaling")(autoscale.autoscaling)
app.add_typer(resources.provisioned_app, name="provisioned")
app.add_typer(logs.logs_app, name="logs")
app.add_typer(layers.layer_app, name="layer")
app.add_typer(queues.queue_app, name="queue")
app.add_typer(queues.stream_app, name="stream")
