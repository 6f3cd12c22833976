"""What the registry's Functions and Aliases declare as triggers, gathered in one table.

`build(registry)` reads every `events` map and `functionUrl` and returns a `TriggerTable`:
the schedules, the HTTP API's routes, the topics' subscriptions and the function URLs, and
the triggers that cannot be served with the reason (a route two functions both declare).
It is pure and cheap; the router rebuilds it whenever the registry changes (a restart in
local mode, `klambda alias set`, every change the cluster's watch sees) and hands it to
the scheduler, the HTTP gateway and the topics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from klambda.api.triggers import (
    CorsConfig,
    FunctionUrl,
    HttpApiEvent,
    S3Event,
    ScheduleEvent,
    TopicEvent,
    TriggerStatus,
    describe,
)
from klambda.router.registry import Registry
from klambda.triggers.cors import Cors
from klambda.triggers.httpapi import Route, RouteTable

TriggerEvent = ScheduleEvent | HttpApiEvent | TopicEvent | S3Event


@dataclass(frozen=True)
class Declared:
    """One trigger as declared: on a function (`$LATEST`) or one of its aliases."""

    function: str
    alias: str | None
    name: str
    event: TriggerEvent

    @property
    def key(self) -> str:
        """`function[:alias]/name`: unique in a namespace."""
        return f"{self.function}{':' + self.alias if self.alias else ''}/{self.name}"

    @property
    def type(self) -> str:
        return "SNS" if isinstance(self.event, TopicEvent) else self.event.type


@dataclass(frozen=True)
class UrlConfig:
    function: str
    alias: str | None
    config: FunctionUrl

    @property
    def cors(self) -> Cors | None:
        return cors_of(self.config.cors)

    @property
    def path_name(self) -> str:
        """How the URL is addressed under /url/: `function` or `function:alias`."""
        return f"{self.function}:{self.alias}" if self.alias else self.function


def cors_of(c: CorsConfig | None) -> Cors | None:
    """A URL's or a route's CORS settings as klambda.triggers.cors applies them."""
    if c is None:
        return None
    return Cors(
        tuple(c.allow_origins),
        tuple(c.allow_methods),
        tuple(c.allow_headers),
        tuple(c.expose_headers),
        c.max_age,
        c.allow_credentials,
    )


@dataclass
class TriggerTable:
    schedules: list[Declared] = field(default_factory=list)
    routes: RouteTable = field(default_factory=RouteTable)
    subscriptions: dict[str, list[Declared]] = field(default_factory=dict)  # by topic name
    buckets: dict[str, list[Declared]] = field(default_factory=dict)  # S3 triggers by bucket
    urls: dict[str, UrlConfig] = field(default_factory=dict)  # by path name
    declared: list[Declared] = field(default_factory=list)
    by_key: dict[str, Declared] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # key -> why it is not served

    def of(self, function: str, alias: str | None = None) -> list[Declared]:
        return [d for d in self.declared if d.function == function and d.alias == alias]


def _declarations(registry: Registry) -> Iterator[Declared]:
    for name in sorted(registry.functions):
        entry = registry.functions[name]
        for trigger, event in sorted((entry.function.spec.events or {}).items()):
            yield Declared(name, None, trigger, event)
        for alias_name in sorted(entry.aliases):
            alias = entry.aliases[alias_name]
            for trigger, event in sorted((alias.spec.events or {}).items()):
                yield Declared(name, alias_name, trigger, event)


def build(registry: Registry) -> TriggerTable:
    table = TriggerTable()
    for d in _declarations(registry):
        table.declared.append(d)
        table.by_key[d.key] = d
        event = d.event
        if isinstance(event, ScheduleEvent):
            if event.enabled:
                table.schedules.append(d)
        elif isinstance(event, HttpApiEvent):
            route = Route(
                event.method,
                event.path,
                d.key,
                event.payload_format_version,
                event.timeout_in_millis / 1000,
            )
            other = table.routes.add(route)
            if other is not None:
                table.problems[d.key] = (
                    f"route {event.route_key} is already served by {other} (the first "
                    "declared, in name order, keeps it)"
                )
        elif isinstance(event, S3Event):
            if event.enabled:
                table.buckets.setdefault(event.bucket, []).append(d)
        elif event.enabled:
            table.subscriptions.setdefault(event.topic_name, []).append(d)
    for name in sorted(registry.functions):
        entry = registry.functions[name]
        if entry.function.spec.function_url is not None:
            url = UrlConfig(name, None, entry.function.spec.function_url)
            table.urls[url.path_name] = url
        for alias_name in sorted(entry.aliases):
            config = entry.aliases[alias_name].spec.function_url
            if config is not None:
                url = UrlConfig(name, alias_name, config)
                table.urls[url.path_name] = url
    return table


def status(
    table: TriggerTable,
    d: Declared,
    *,
    next_fire: str | None = None,
    last_fire: str | None = None,
    failure: str | None = None,
) -> TriggerStatus:
    """One trigger's state: Failed with the reason, Disabled, or Active with its detail."""
    event = d.event
    detail = describe(event)
    reason = table.problems.get(d.key) or failure
    enabled = not isinstance(event, ScheduleEvent | TopicEvent | S3Event) or event.enabled
    state = "Failed" if reason else "Active" if enabled else "Disabled"
    return TriggerStatus(
        name=d.name,
        type=d.type,
        state=state,
        reason=reason,
        detail=detail,
        next_fire=next_fire if state == "Active" else None,
        last_fire=last_fire,
    )


class Triggers:
    """The router's current trigger table; rebuilt from the registry whenever it changes,
    and each rebuild told to the listeners (the scheduler)."""

    def __init__(self) -> None:
        self.table = TriggerTable()
        self._listeners: list[Callable[[TriggerTable], None]] = []

    def listen(self, listener: Callable[[TriggerTable], None]) -> None:
        self._listeners.append(listener)
        listener(self.table)

    def refresh(self, registry: Registry) -> None:
        self.table = build(registry)
        for listener in self._listeners:
            listener(self.table)
