"""The `klambda` command: every verb and sub-app, in the order `--help` lists them.

Each module holds one group of verbs (serving, invoke, resources, DLQ, cost, logs); this
one only names them. A verb's module is imported when the verb is run (or when `--help`
lists it), not before: `klambda worker` runs in every function pod, under the CPU share of
the function's memory, and pays for no other verb's imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

if TYPE_CHECKING:
    from typer._click import Command, Context

# verb: the module that holds it and its name there, a command function or a sub-app
VERBS: dict[str, tuple[str, str]] = {
    "up": ("klambda.cli.serve", "up"),
    "router": ("klambda.cli.serve", "router"),
    "worker": ("klambda.cli.serve", "worker"),
    "invoke": ("klambda.cli.invoke", "invoke"),
    "publish": ("klambda.cli.topics", "publish"),
    "deploy": ("klambda.cli.deploy", "deploy"),
    "publish-version": ("klambda.cli.resources", "publish_version"),
    "delete-version": ("klambda.cli.resources", "delete_version"),
    "tune": ("klambda.cli.cost", "tune"),
    "function": ("klambda.cli.functions", "function_app"),
    "get": ("klambda.cli.resources", "get_app"),
    "alias": ("klambda.cli.resources", "alias_app"),
    "concurrency": ("klambda.cli.resources", "concurrency_app"),
    "dlq": ("klambda.cli.dlq", "dlq_app"),
    "cost": ("klambda.cli.cost", "cost_app"),
    # resources' provisioned_app, with `autoscale` and `autoscaling` added by their module
    "provisioned": ("klambda.cli.autoscale", "provisioned_app"),
    "logs": ("klambda.cli.logs", "logs_app"),
    "layer": ("klambda.cli.layers", "layer_app"),
    "queue": ("klambda.cli.queues", "queue_app"),
    "stream": ("klambda.cli.queues", "stream_app"),
}


def _command(verb: str) -> Command:
    """The click command of `verb`, made as `app.command()` / `app.add_typer()` would."""
    module, name = VERBS[verb]
    target = getattr(importlib.import_module(module), name)
    cmd: Command
    if isinstance(target, typer.Typer):
        cmd = get_group_from_info(
            TyperInfo(target, name=verb),
            pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=app.suggest_commands,
            rich_markup_mode=app.rich_markup_mode,
        )
    else:
        cmd = get_command_from_info(
            CommandInfo(name=verb, callback=target),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
    return cmd


class _Verbs(MutableMapping[str, "Command"]):
    """The root group's commands: every verb is listed, each made when first looked up."""

    def __init__(self) -> None:
        self._made: dict[str, Command] = {}

    def __getitem__(self, verb: str) -> Command:
        cmd = self._made.get(verb)
        if cmd is None:
            if verb not in VERBS:
                raise KeyError(verb)
            cmd = self._made[verb] = _command(verb)
        return cmd

    def __setitem__(self, verb: str, cmd: Command) -> None:
        self._made[verb] = cmd

    def __delitem__(self, verb: str) -> None:
        del self._made[verb]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*VERBS, *self._made]))

    def __len__(self) -> int:
        return len(set(VERBS) | set(self._made))

    def __contains__(self, verb: object) -> bool:
        return verb in VERBS or verb in self._made


class LazyGroup(TyperGroup):
    """The `klambda` group: its verbs' modules imported on demand."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Verbs()

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    cls=LazyGroup,
    help="Lambda's model - functions, versions, aliases, concurrency - locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # a group needs a callback when its verbs are not registered on the Typer itself
    pass
