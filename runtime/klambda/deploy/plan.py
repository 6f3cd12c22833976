"""What a deploy does: the functions it creates, changes and removes, and how. Pure.

The template's functions (klambda.deploy.sam) are compared with what a router or a cluster
has (Lambda's shapes: GetFunction, the event invoke configuration, GetAlias with klambda's
`Triggers`); functions
tagged with the stack's name that the template no longer has are removed. An unchanged
function is left alone, so a second deploy of the same template changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from klambda.api.triggers import FunctionUrl, Trigger
from klambda.deploy.sam import STACK_TAG, DesiredFunction

_EVENTS: TypeAdapter[dict[str, Trigger]] = TypeAdapter(dict[str, Trigger])

Action = Literal["create", "change", "remove", "unchanged"]


@dataclass
class Current:
    """A function as a router or a cluster has it, in Lambda's shapes."""

    configuration: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    reserved: int | None = None
    event_invoke: dict[str, Any] | None = None
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    provisioned: dict[str, int] = field(default_factory=dict)  # alias -> requested
    newest: dict[str, Any] | None = None  # the newest published version's configuration
    triggers: dict[str, Any] | None = None  # GetFunction's klambda `Triggers`


SNAPSHOT = ("CodeSha256", "Handler", "Runtime", "MemorySize", "Timeout", "Environment")


def published(current: Current) -> str | None:
    """The version that publishing `$LATEST` now gives back (the newest, if `$LATEST` is
    what it snapshotted), or None when a new one would be published."""
    newest = current.newest
    if newest is None:
        return None
    same = all(newest.get(k) == current.configuration.get(k) for k in SNAPSHOT)
    return str(newest["Version"]) if same else None


@dataclass
class Change:
    action: Action
    function: str
    details: list[str] = field(default_factory=list)
    desired: DesiredFunction | None = None
    code: bool = False  # UpdateFunctionCode
    configuration: dict[str, Any] = field(default_factory=dict)  # UpdateFunctionConfiguration
    tags_set: dict[str, str] = field(default_factory=dict)
    tags_removed: list[str] = field(default_factory=list)
    reserved: bool = False
    event_invoke: bool = False
    publish: bool = False  # AutoPublishAlias: a new version to move the alias to
    provisioned: bool = False
    alias_triggers: bool = False  # the alias's triggers (AutoPublishAlias) to put on it

    @property
    def symbol(self) -> str:
        return {"create": "+", "change": "~", "remove": "-", "unchanged": "="}[self.action]


def _config(desired: DesiredFunction, current: dict[str, Any]) -> dict[str, Any]:
    """The configuration fields that differ, as an UpdateFunctionConfiguration body."""
    out: dict[str, Any] = {}
    want = desired.body
    defaults = {"MemorySize": 128, "Timeout": 3, "Description": ""}
    for key in ("Handler", "Runtime", "MemorySize", "Timeout", "Description"):
        value = want.get(key, defaults.get(key))
        if value is not None and value != current.get(key):
            out[key] = value
    env = dict((want.get("Environment") or {}).get("Variables") or {})
    have = dict((current.get("Environment") or {}).get("Variables") or {})
    if {k: str(v) for k, v in env.items()} != have:
        out["Environment"] = {"Variables": env}
    return out


def _triggers(value: dict[str, Any] | None) -> tuple[Any, ...]:
    """Triggers as the model reads them, so defaults written out or left out compare equal."""
    value = value or {}
    url = value.get("functionUrl")
    return (
        _EVENTS.validate_python(value.get("events") or {}),
        FunctionUrl.model_validate(url) if url else None,
    )


def _triggers_shown(what: str, have: dict[str, Any] | None, want: dict[str, Any]) -> str:
    """`triggers: ['A'] -> ['A', 'B']`; on a new function (`have` None) what it gets."""
    url = want.get("functionUrl")
    before = "" if have is None else f"{sorted(have.get('events') or {})} -> "
    return f"{what}: {before}{sorted(want.get('events') or {})}" + (
        f", function URL {url}" if url else ""
    )


def _event_invoke_differs(want: dict[str, Any] | None, have: dict[str, Any] | None) -> bool:
    if want is None:
        return have is not None
    if have is None:
        return True
    defaults = {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600}
    for key, default in defaults.items():
        if want.get(key, default) != have.get(key, default):
            return True
    return bool((want.get("DestinationConfig") or {}) != (have.get("DestinationConfig") or {}))


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def change_of(desired: DesiredFunction, current: Current | None) -> Change:
    if current is None:
        details = [
            f"{desired.body.get('Runtime', 'image')} "
            f"{desired.body.get('Handler', '')} {desired.body.get('MemorySize', 128)} MB"
        ]
        if desired.reserved is not None:
            details.append(f"reserved concurrency {desired.reserved}")
        if desired.alias:
            details.append(
                f"alias {desired.alias} -> version 1"
                + (f", provisioned {desired.provisioned}" if desired.provisioned else "")
            )
        if desired.events or desired.function_url:
            where = f"triggers of alias {desired.alias}" if desired.alias else "triggers"
            details.append(_triggers_shown(where, None, desired.triggers))
        return Change(
            "create",
            desired.name,
            details,
            desired,
            reserved=desired.reserved is not None,
            event_invoke=desired.event_invoke is not None,
            publish=desired.alias is not None,
            provisioned=bool(desired.alias and desired.provisioned),
        )
    c = Change("unchanged", desired.name, desired=desired)
    cfg = current.configuration
    sha = desired.code.sha256
    if sha is None or sha != cfg.get("CodeSha256"):
        c.code = True
        c.details.append(f"code {str(cfg.get('CodeSha256'))[:12]} -> {(sha or 'image')[:12]}")
    c.configuration = _config(desired, cfg)
    for key, value in c.configuration.items():
        c.details.append(f"{key}: {_shown(cfg.get(key))} -> {_shown(value)}")
    if _triggers(desired.function_triggers) != _triggers(current.triggers):
        c.configuration["Triggers"] = desired.function_triggers
        c.details.append(
            _triggers_shown("triggers", current.triggers or {}, desired.function_triggers)
        )
    want_tags = dict(desired.body.get("Tags") or {})
    c.tags_set = {k: v for k, v in want_tags.items() if current.tags.get(k) != v}
    c.tags_removed = sorted(k for k in current.tags if k not in want_tags)
    if c.tags_set or c.tags_removed:
        c.details.append(f"tags: set {sorted(c.tags_set)}, remove {c.tags_removed}")
    if desired.reserved != current.reserved:
        c.reserved = True
        c.details.append(f"reserved concurrency {current.reserved} -> {desired.reserved}")
    if _event_invoke_differs(desired.event_invoke, current.event_invoke):
        c.event_invoke = True
        c.details.append("event invoke configuration")
    if desired.alias:
        alias = current.aliases.get(desired.alias)
        target = published(current)
        on_target = alias is not None and str(alias.get("FunctionVersion")) == target
        # triggers are not part of a version: a change of them alone publishes nothing
        if c.code or set(c.configuration) - {"Triggers"} or not on_target:
            # a changed $LATEST, or one published (or rolled back) but not yet on the alias
            c.publish = True
            how = desired.preference.kind if desired.preference and alias else "at once"
            c.details.append(f"alias {desired.alias} -> a new version ({how})")
        # the alias's triggers (SAM attaches them to it), on an alias there already; a new
        # one is created with them
        if alias is not None:
            want, have = desired.alias_triggers or {}, alias.get("Triggers") or {}
            if _triggers(want) != _triggers(have):
                c.alias_triggers = True
                c.details.append(_triggers_shown(f"triggers of alias {desired.alias}", have, want))
        if desired.provisioned != current.provisioned.get(desired.alias, 0):
            c.provisioned = True
            c.details.append(
                f"provisioned concurrency of {desired.alias}: "
                f"{current.provisioned.get(desired.alias, 0)} -> {desired.provisioned}"
            )
    if c.details:
        c.action = "change"
    return c


def plan(desired: list[DesiredFunction], current: dict[str, Current], stack: str) -> list[Change]:
    """Every function of the template (created, changed or unchanged), then the stack's
    functions the template no longer has (removed)."""
    out = [change_of(d, current.get(d.name)) for d in desired]
    wanted = {d.name for d in desired}
    for name, have in sorted(current.items()):
        if name not in wanted and have.tags.get(STACK_TAG) == stack:
            out.append(Change("remove", name, ["with its versions and aliases"]))
    return out
