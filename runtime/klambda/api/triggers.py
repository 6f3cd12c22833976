"""Triggers declared on a Function or an Alias, in SAM's vocabulary: the `events` map and
the `functionUrl`.

    spec:
      events:
        nightly:  {type: Schedule, schedule: "cron(0 3 * * ? *)", input: '{"full": true}'}
        getItem:  {type: HttpApi, path: /items/{id}, method: GET}
        orders:   {type: SNS, topic: orders, filterPolicy: {kind: [paid]}}
      functionUrl: {authType: NONE, invokeMode: RESPONSE_STREAM}

A key of `events` names the trigger (SAM's logical id); `type` says which kind it is:
`Schedule` (EventBridge), `HttpApi` (API Gateway HTTP API), `SNS` (a topic; `Topic` is
taken as a synonym). Triggers on a Function invoke `$LATEST`; on an Alias, the alias.
Asynchronous ones (Schedule, SNS) may override the function's `retryAttempts`,
`maxEventAgeSeconds` and `deadLetter` for their own events.

The validators give the answers the CRD's schema and CEL rules give (crds/functions.yaml,
crds/aliases.yaml), plus what CEL cannot say: a cron expression's every field, a time
zone's name, a filter policy's grammar (parsed by klambda.triggers, the same code the
router runs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from klambda.api import limits
from klambda.api.meta import Model
from klambda.triggers import filterpolicy, schedule

EVENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
EVENTS_MAX = 32
SCHEDULE_MAX = 256
INPUT_MAX_BYTES = 8192  # EventBridge's limit on a target's Input
TOPIC_PATTERN = r"^[A-Za-z0-9_-]{1,256}$"
TOPIC_ARN_PATTERN = r"^arn:aws:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$"
HTTP_METHODS = ("ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HTTP_PATH_MAX = 512
DEFAULT_ROUTE = "$default"
# API Gateway: an integration times out after 50 ms-30 s; klambda's default is REST's 29 s
HTTP_TIMEOUT_MIN_MS = 50
HTTP_TIMEOUT_MAX_MS = 30000
HTTP_TIMEOUT_DEFAULT_MS = 29000
# API Gateway's stage variables: names of letters, digits and _, values of at most 2048
# characters from its set
STAGE_VARIABLE_NAME = r"^[A-Za-z0-9_]{1,64}$"
STAGE_VARIABLE_VALUE = r"^[A-Za-z0-9\-._~:/?#&=,]*$"
STAGE_VARIABLE_VALUE_MAX = 2048
_PATH_SEGMENT = re.compile(r"^(\{[A-Za-z0-9_.-]+\}|[A-Za-z0-9._~!$&'()*,;=:@%-]+)$")
_GREEDY = re.compile(r"^\{[A-Za-z0-9_.-]+\+\}$")


class DeadLetterTarget(Model):
    """Where a trigger's failed events also go: a function or a named queue."""

    function: str | None = None
    queue: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DeadLetterTarget:
        if (self.function is None) == (self.queue is None):
            raise ValueError("exactly one of function, queue must be given")
        return self


class AsyncOverrides(Model):
    """What an asynchronous trigger may set for its own events (else the function's)."""

    retry_attempts: int | None = Field(
        default=None,
        ge=limits.RETRY_ATTEMPTS_MIN,
        le=limits.RETRY_ATTEMPTS_MAX,
        alias="retryAttempts",
    )
    max_event_age_seconds: int | None = Field(
        default=None,
        ge=limits.MAX_EVENT_AGE_MIN_S,
        le=limits.MAX_EVENT_AGE_MAX_S,
        alias="maxEventAgeSeconds",
    )
    dead_letter: DeadLetterTarget | None = Field(default=None, alias="deadLetter")


class ScheduleEvent(AsyncOverrides):
    """EventBridge's scheduled rule: the function is invoked asynchronously at every tick
    with a Scheduled Event, or with `input` (JSON text) instead."""

    type: Literal["Schedule"]
    schedule: str = Field(max_length=SCHEDULE_MAX)
    timezone: str = Field(default="UTC", max_length=64)
    input: str | None = Field(default=None, max_length=INPUT_MAX_BYTES)
    enabled: bool = True
    # a tick missed while no router ran: skipped (EventBridge) or fired once on recovery
    missed: Literal["Skip", "FireOnce"] = "Skip"
    description: str = Field(default="", max_length=512)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, text: str) -> str:
        schedule.parse(text)
        return text

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str) -> str:
        schedule.time_zone(name)
        return name

    @field_validator("input")
    @classmethod
    def _input(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                json.loads(text)
            except ValueError as err:
                raise ValueError(f"input must be JSON text: {err}") from None
            if len(text.encode()) > INPUT_MAX_BYTES:
                raise ValueError(f"input takes at most {INPUT_MAX_BYTES} bytes")
        return text


CORS_ITEMS_MAX = 100
CORS_MAX_AGE = 86400


class CorsConfig(Model):
    """A function URL's CORS settings, Lambda's `Cors` (klambda.triggers.cors applies them):
    the router answers preflights itself and sets the CORS headers of every response."""

    allow_origins: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=CORS_ITEMS_MAX, alias="allowOrigins"
    )
    allow_methods: list[Literal["GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*"]] = Field(
        default_factory=list, max_length=6, alias="allowMethods"
    )
    allow_headers: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=CORS_ITEMS_MAX, alias="allowHeaders"
    )
    expose_headers: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=CORS_ITEMS_MAX, alias="exposeHeaders"
    )
    max_age: int | None = Field(default=None, ge=0, le=CORS_MAX_AGE, alias="maxAge")
    allow_credentials: bool = Field(default=False, alias="allowCredentials")


class HttpApiEvent(Model):
    """A route of the HTTP API (API Gateway HTTP API): `METHOD path` or `$default`."""

    type: Literal["HttpApi"]
    path: str = Field(max_length=HTTP_PATH_MAX)
    method: str = "ANY"
    payload_format_version: Literal["1.0", "2.0"] = Field(
        default="2.0", alias="payloadFormatVersion"
    )
    timeout_in_millis: int = Field(
        default=HTTP_TIMEOUT_DEFAULT_MS,
        ge=HTTP_TIMEOUT_MIN_MS,
        le=HTTP_TIMEOUT_MAX_MS,
        alias="timeoutInMillis",
    )
    # the event's `stageVariables` (API Gateway keeps them on the stage; here on the route)
    stage_variables: (
        dict[
            Annotated[str, Field(pattern=STAGE_VARIABLE_NAME)],
            Annotated[
                str, Field(max_length=STAGE_VARIABLE_VALUE_MAX, pattern=STAGE_VARIABLE_VALUE)
            ],
        ]
        | None
    ) = Field(default=None, alias="stageVariables")
    # API Gateway's CORS settings, for the requests this route takes and their preflights
    cors: CorsConfig | None = None

    @field_validator("method")
    @classmethod
    def _method(cls, method: str) -> str:
        up = method.upper()
        if up not in HTTP_METHODS:
            raise ValueError(f"method {method!r} must be one of {', '.join(HTTP_METHODS)}")
        return up

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        check_route_path(path)
        return path

    @model_validator(mode="after")
    def _default_route(self) -> HttpApiEvent:
        if self.path == DEFAULT_ROUTE and self.method != "ANY":
            raise ValueError("the $default route takes every method: leave method out (ANY)")
        return self

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"


def check_route_path(path: str) -> None:
    """ValueError unless `path` is `$default` or an API Gateway route path: `/`, literal
    segments, `{name}` variables, and at most one greedy `{name+}`, last."""
    if path == DEFAULT_ROUTE:
        return
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/' (or be $default)")
    if path == "/":
        return
    segments = path[1:].split("/")
    names: set[str] = set()
    for i, seg in enumerate(segments):
        if _GREEDY.match(seg):
            if i != len(segments) - 1:
                raise ValueError(f"path {path!r}: a greedy variable {seg} must come last")
            name = seg[1:-2]
        elif _PATH_SEGMENT.match(seg):
            name = seg[1:-1] if seg.startswith("{") else ""
        else:
            raise ValueError(
                f"path {path!r}: segment {seg!r} must be literal text, {{name}} or a last {{name+}}"
            )
        if name:
            if name in names:
                raise ValueError(f"path {path!r}: variable {{{name}}} appears twice")
            names.add(name)


class TopicEvent(AsyncOverrides):
    """A subscription to a topic (SNS's role): every message published to the topic that
    passes the filter policy invokes the function asynchronously with SNS's event."""

    type: Literal["SNS", "Topic"]
    topic: str = Field(max_length=320)
    filter_policy: dict[str, Any] | None = Field(default=None, alias="filterPolicy")
    filter_policy_scope: Literal["MessageAttributes", "MessageBody"] = Field(
        default="MessageAttributes", alias="filterPolicyScope"
    )
    enabled: bool = True

    @field_validator("topic")
    @classmethod
    def _topic(cls, topic: str) -> str:
        if not (re.match(TOPIC_PATTERN, topic) or re.match(TOPIC_ARN_PATTERN, topic)):
            raise ValueError(
                f"topic {topic!r} must be a name of 1-256 letters, digits, '-' or '_', or an "
                "SNS topic ARN"
            )
        return topic

    @model_validator(mode="after")
    def _policy(self) -> TopicEvent:
        if self.filter_policy is not None:
            try:
                filterpolicy.check(self.filter_policy, self.filter_policy_scope)
            except ValueError as err:
                raise ValueError(f"filterPolicy: {err}") from None
        return self

    @property
    def topic_name(self) -> str:
        """The topic's name (the last part of an ARN)."""
        return self.topic.rsplit(":", 1)[-1]


# -- S3 bucket notifications (klambda.triggers.s3) --------------------------------------

S3_BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class S3KeyRule(Model):
    name: Literal["prefix", "suffix"]
    value: str = Field(max_length=1024)


class S3Key(Model):
    rules: list[S3KeyRule] = Field(min_length=1, max_length=2)

    @model_validator(mode="after")
    def _once_each(self) -> S3Key:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rules: at most one prefix and one suffix")
        return self


class S3Filter(Model):
    s3_key: S3Key = Field(alias="s3Key")


class S3Event(AsyncOverrides):
    """Objects created or removed in a bucket of an S3-compatible server (SAM's `S3`
    event): the function is invoked asynchronously with S3's event, for the event types
    and keys (prefix, suffix) the trigger names."""

    type: Literal["S3"]
    bucket: str = Field(pattern=S3_BUCKET_PATTERN)
    events: list[
        Literal[
            "s3:ObjectCreated:*",
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Post",
            "s3:ObjectCreated:Copy",
            "s3:ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectRemoved:*",
            "s3:ObjectRemoved:Delete",
            "s3:ObjectRemoved:DeleteMarkerCreated",
        ]
    ] = Field(min_length=1, max_length=8)
    filter: S3Filter | None = None
    enabled: bool = True

    def key_rule(self, name: str) -> str:
        for rule in self.filter.s3_key.rules if self.filter else []:
            if rule.name == name:
                return rule.value
        return ""


Trigger = Annotated[
    ScheduleEvent | HttpApiEvent | TopicEvent | S3Event, Field(discriminator="type")
]


class FunctionUrl(Model):
    """A function URL: one HTTP endpoint for the function (or alias), payload format 2.0.

    `authType` NONE serves anyone; AWS_IAM only SigV4-signed requests of an identity that
    may `invoke` the function's `url` (klambda.router.url_access)."""

    auth_type: Literal["NONE", "AWS_IAM"] = Field(default="NONE", alias="authType")
    invoke_mode: Literal["BUFFERED", "RESPONSE_STREAM"] = Field(
        default="BUFFERED", alias="invokeMode"
    )
    cors: CorsConfig | None = None


def check_events(events: dict[str, Any] | None) -> None:
    """The names of an `events` map: SAM's logical ids, at most EVENTS_MAX of them."""
    if not events:
        return
    if len(events) > EVENTS_MAX:
        raise ValueError(f"events: at most {EVENTS_MAX} triggers, got {len(events)}")
    for name in events:
        if not re.match(EVENT_NAME_PATTERN, name):
            raise ValueError(
                f"events: name {name!r} must be 1-64 letters, digits, '-' or '_', starting "
                "with a letter or digit"
            )


class TriggerStatus(Model):
    """One trigger's state, as `klambda get triggers` and the objects' status show it."""

    name: str
    type: str
    state: Literal["Active", "Disabled", "Failed"]
    reason: str | None = None
    detail: str | None = None  # the route, the topic, the URL
    next_fire: str | None = Field(default=None, alias="nextFire")
    last_fire: str | None = Field(default=None, alias="lastFire")


def describe(event: ScheduleEvent | HttpApiEvent | TopicEvent | S3Event) -> str:
    """What a trigger listens to: its schedule, its route, its topic."""
    if isinstance(event, ScheduleEvent):
        return f"{event.schedule} {event.timezone}"
    if isinstance(event, HttpApiEvent):
        return event.route_key
    if isinstance(event, S3Event):
        keys = event.key_rule("prefix") + "*" + event.key_rule("suffix")
        return f"bucket {event.bucket} {keys} {','.join(event.events)}"
    return f"topic {event.topic_name}"


_TRIGGER: TypeAdapter[ScheduleEvent | HttpApiEvent | TopicEvent | S3Event] = TypeAdapter(Trigger)


def declared_status(spec: Mapping[str, Any], url_path: str) -> dict[str, Any]:
    """`status.triggers` and `status.functionUrl` of an object with this (raw) spec, as the
    operator writes them: each trigger Active or Disabled, or Failed with what the CRD's
    rules could not check (a cron field, a time zone, a filter policy's grammar). The
    routers serve the Active ones; route conflicts show in `klambda get triggers`."""
    rows: list[dict[str, Any]] = []
    for name, raw in sorted((spec.get("events") or {}).items()):
        kind = str(raw.get("type")) if isinstance(raw, Mapping) else "?"
        try:
            event = _TRIGGER.validate_python(raw)
        except ValidationError as err:
            reason = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
                for e in err.errors()
            )
            row = TriggerStatus(name=name, type=kind, state="Failed", reason=reason)
        else:
            enabled = not isinstance(event, ScheduleEvent | TopicEvent | S3Event) or event.enabled
            row = TriggerStatus(
                name=name,
                type="SNS" if isinstance(event, TopicEvent) else event.type,
                state="Active" if enabled else "Disabled",
                detail=describe(event),
            )
        rows.append(row.wire())
    return {
        "triggers": rows or None,
        "functionUrl": url_path if spec.get("functionUrl") is not None else None,
    }
