"""What the router can invoke: functions, their versions and aliases, by name.

Local mode fills it from manifests in a folder (`klambda.router.local`); cluster mode will
fill it from the API server's watch. Either way the router only asks `resolve()`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from klambda.api import Alias, Function, Version, rules
from klambda.api.limits import LATEST
from klambda.errors import ResourceConflict, ResourceNotFound
from klambda.execution import FunctionConfig
from klambda.router.routing import parsed_function_name, pick_version


@dataclass
class Target:
    """One invocable version of a function: `$LATEST` or a published number."""

    config: FunctionConfig
    state: str = "Active"
    state_reason: str | None = None
    qualifier: str | None = None  # set for temporary targets (power tuning)

    @property
    def key(self) -> str:
        return f"{self.config.function}:{self.qualifier or self.config.version}"


@dataclass
class FunctionEntry:
    function: Function
    latest: Target
    versions: dict[str, Version] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)  # by version number
    aliases: dict[str, Alias] = field(default_factory=dict)  # by alias name
    tuning: dict[str, Target] = field(default_factory=dict)  # temporary, by qualifier


def provisioned_by_version(entry: FunctionEntry) -> dict[str, int]:
    """How many provisioned environments each version of a function should have."""
    return rules.provisioned_by_version(
        (v.spec for v in entry.versions.values()), (a.spec for a in entry.aliases.values())
    )


def state_of(status: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """A target's (state, reason) from a Function's or Version's `status`. Pure.

    No status yet means no operator has looked at the object: it is routed (the call waits
    for a worker) rather than refused. `Pending` and `Failed` are refused at once, as
    Lambda refuses a function in those states, instead of waiting for a worker that the
    operator will not start.
    """
    if not status or not status.get("state"):
        return "Active", None
    state = str(status["state"])
    reason = status.get("stateReason")
    if not reason:
        ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        reason = ready[0].get("message") if ready and ready[0].get("status") != "True" else None
    return state, (str(reason) if reason else None)


class Registry:
    def __init__(self) -> None:
        self.functions: dict[str, FunctionEntry] = {}
        self._random = random.random

    def get(self, name: str) -> FunctionEntry:
        entry = self.functions.get(name)
        if entry is None:
            raise ResourceNotFound(f"Function not found: {name}")
        return entry

    def resolve(self, name: str, qualifier: str | None = None) -> tuple[Target, str]:
        """(the target version, the alias name or "") for a name and qualifier."""
        fn, q = parsed_function_name(name, qualifier)
        entry = self.get(fn)
        if q is None or q == LATEST:
            target, alias = entry.latest, ""
        elif q in entry.tuning:
            target, alias = entry.tuning[q], q
        elif q.isdigit():
            t = entry.targets.get(q)
            if t is None:
                raise ResourceNotFound(f"Function not found: {fn}:{q}")
            target, alias = t, ""
        else:
            a = entry.aliases.get(q)
            if a is None:
                raise ResourceNotFound(f"Function not found: {fn}:{q}")
            version = pick_version(a.spec, self._random())
            t = entry.latest if version == LATEST else entry.targets.get(version)
            if t is None:
                raise ResourceNotFound(f"Function not found: {fn}:{version} (alias {q})")
            target, alias = t, q
        if target.state != "Active":
            raise ResourceConflict(
                f"The operation cannot be performed at this time. The function is currently "
                f"in the following state: {target.state}"
                + (f" ({target.state_reason})" if target.state_reason else "")
            )
        return target, alias
