"""Flags mean the same thing in every verb: one spelling of --namespace, no clashes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from klambda.cli.main import app


def commands(group: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(the words that name a verb, its command), for every verb under `group`."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from commands(cmd, f"{path}{name} ")
        else:
            yield f"{path}{name}", cmd


VERBS = dict(commands(typer.main.get_command(app)))


def test_every_verb_is_reachable() -> None:
    assert {"up", "router", "worker", "invoke", "get functions", "provisioned put"} <= set(VERBS)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_namespace_is_spelled_one_way(verb: str) -> None:
    for param in VERBS[verb].params:
        if "--namespace" in param.opts:
            assert sorted(param.opts) == ["--namespace", "-n"], verb


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_no_short_flag_means_two_things(verb: str) -> None:
    seen = [o for p in VERBS[verb].params for o in [*p.opts, *p.secondary_opts]]
    assert len(seen) == len(set(seen)), verb
