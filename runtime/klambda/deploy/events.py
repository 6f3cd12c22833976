"""SAM's event sources as klambda's triggers. Pure.

A SAM function's `Events` map names each trigger and its `Type`; `MAPPERS` holds, per SAM
event type klambda serves, how one event's Properties become one entry of an `events` map
(klambda.api.triggers): the Function's, or with `AutoPublishAlias` its alias's, as SAM
attaches them:

- `Schedule` (EventBridge rule) and `ScheduleV2` (EventBridge Scheduler) -> `Schedule`,
  with `Input`, the enabled state, `RetryPolicy` and an SQS `DeadLetterConfig`;
- `HttpApi` -> `HttpApi` (no Path and Method: the `$default` route), with the
  `StageVariables` and `CorsConfiguration` of the AWS::Serverless::HttpApi its `ApiId`
  refers to;
- `Api` (a REST API's Lambda proxy integration) -> `HttpApi` with payload format 1.0, the
  REST API's proxy event;
- `SNS` -> a `Topic` subscription with its filter policy and scope.

`FunctionUrlConfig` becomes the `functionUrl` (the Function's or the alias's). A property
that asks for what klambda does not do (authorizers, an SQS subscription, ...) is named as
a problem; the entry is checked by the same model as a manifest's, so a bad schedule expression is
named here, before anything is deployed. Every other event type is named as unsupported
(`klambda deploy --ignore-unsupported` deploys the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from klambda.api.triggers import FunctionUrl, Trigger

Mapper = Callable[[str, Mapping[str, Any]], dict[str, Any]]

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)


def _refuse(
    props: Mapping[str, Any], allowed: Collection[str], ignored: Collection[str] = ()
) -> None:
    """ValueError naming the first property klambda does not do (`ignored`: accepted, and
    of no use to klambda: names, roles, API ids)."""
    for key in props:
        if key not in allowed and key not in ignored:
            raise ValueError(f"Properties.{key}: not supported by klambda")


def _checked(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as the Function's model reads it (ValueError naming the field)."""
    try:
        _TRIGGER.validate_python(entry)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"][1:])
        msg = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{loc}: {msg}" if loc else msg) from None
    return entry


def _name_of(value: Any, what: str) -> str:
    """A plain value, or the logical id a `Ref` names (a topic of the template)."""
    if isinstance(value, Mapping) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"Properties.{what}: a name, an ARN or a Ref")


def _async(props: Mapping[str, Any], entry: dict[str, Any]) -> None:
    """RetryPolicy and an SQS DeadLetterConfig (a klambda queue, by name or ARN)."""
    retry = props.get("RetryPolicy") or {}
    if retry.get("MaximumRetryAttempts") is not None:
        entry["retryAttempts"] = int(retry["MaximumRetryAttempts"])
    if retry.get("MaximumEventAgeInSeconds") is not None:
        entry["maxEventAgeSeconds"] = int(retry["MaximumEventAgeInSeconds"])
    dlq = props.get("DeadLetterConfig")
    if dlq:
        if dlq.get("Type", "SQS") != "SQS":
            raise ValueError("Properties.DeadLetterConfig.Type: SQS only (a klambda queue)")
        arn = dlq.get("Arn")
        if arn is None:
            raise ValueError(
                "Properties.DeadLetterConfig.Arn: the queue's ARN or name is needed "
                "(klambda creates no queue for a schedule)"
            )
        entry["deadLetter"] = {"queue": _name_of(arn, "DeadLetterConfig.Arn").rsplit(":", 1)[-1]}


def schedule(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's `Schedule` (an EventBridge rule)."""
    _refuse(
        props,
        {"Schedule", "Input", "Enabled", "State", "Description", "RetryPolicy", "DeadLetterConfig"},
        {"Name", "RoleArn"},
    )
    if not props.get("Schedule"):
        raise ValueError("Properties.Schedule: required (rate(...) or cron(...))")
    entry: dict[str, Any] = {"type": "Schedule", "schedule": str(props["Schedule"])}
    return _schedule_rest(props, entry)


def schedule_v2(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's `ScheduleV2` (EventBridge Scheduler): a time zone too."""
    _refuse(
        props,
        {
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "Input",
            "State",
            "Description",
            "RetryPolicy",
            "DeadLetterConfig",
            "FlexibleTimeWindow",
        },
        {"Name", "GroupName", "RoleArn", "PermissionsBoundary", "OmitName"},
    )
    window = props.get("FlexibleTimeWindow") or {}
    if window.get("Mode", "OFF") != "OFF":
        raise ValueError("Properties.FlexibleTimeWindow.Mode: OFF only (ticks fire on time)")
    if not props.get("ScheduleExpression"):
        raise ValueError("Properties.ScheduleExpression: required (rate(...) or cron(...))")
    entry: dict[str, Any] = {"type": "Schedule", "schedule": str(props["ScheduleExpression"])}
    if props.get("ScheduleExpressionTimezone"):
        entry["timezone"] = str(props["ScheduleExpressionTimezone"])
    return _schedule_rest(props, entry)


def _schedule_rest(props: Mapping[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    if props.get("Input") is not None:
        entry["input"] = str(props["Input"])
    enabled = props.get("Enabled")
    state = props.get("State")
    if state is not None:
        if state not in ("ENABLED", "DISABLED"):
            raise ValueError(f"Properties.State: ENABLED or DISABLED, got {state!r}")
        enabled = state == "ENABLED"
    if enabled is not None:
        entry["enabled"] = bool(enabled)
    if props.get("Description"):
        entry["description"] = str(props["Description"])
    _async(props, entry)
    return _checked(entry)


def _route(props: Mapping[str, Any], entry: dict[str, Any]) -> None:
    method = str(props.get("Method") or "ANY").upper()
    entry["method"] = method
    entry["path"] = str(props["Path"])
    if props.get("TimeoutInMillis") is not None:
        entry["timeoutInMillis"] = int(props["TimeoutInMillis"])


def _no_auth(props: Mapping[str, Any]) -> None:
    auth = props.get("Auth") or {}
    if auth and auth.get("Authorizer", "NONE") != "NONE":
        raise ValueError("Properties.Auth: authorizers are not supported (Authorizer NONE only)")


def _api_settings(api: Mapping[str, Any], entry: dict[str, Any]) -> None:
    """An AWS::Serverless::HttpApi's StageVariables and CorsConfiguration, on its route."""
    if api.get("StageVariables"):
        entry["stageVariables"] = {str(k): str(v) for k, v in api["StageVariables"].items()}
    cors_ = api.get("CorsConfiguration")
    if cors_ is True:  # SAM's shorthand: every origin
        entry["cors"] = {"allowOrigins": ["*"]}
    elif isinstance(cors_, Mapping) and cors_:
        # SAM's spelling (AllowOrigins) -> the spec's (allowOrigins)
        entry["cors"] = {k[:1].lower() + k[1:]: v for k, v in cors_.items()}


def http_api(
    name: str, props: Mapping[str, Any], apis: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """SAM's `HttpApi`: a route of the HTTP API; with `ApiId` a Ref to the template's
    AWS::Serverless::HttpApi (`apis`), that API's stage variables and CORS settings."""
    _refuse(props, {"Path", "Method", "PayloadFormatVersion", "TimeoutInMillis", "Auth"}, {"ApiId"})
    _no_auth(props)
    entry: dict[str, Any] = {"type": "HttpApi"}
    api_id = props.get("ApiId")
    if isinstance(api_id, Mapping) and "Ref" in api_id and apis and str(api_id["Ref"]) in apis:
        _api_settings(apis[str(api_id["Ref"])], entry)
    if props.get("Path") is None and props.get("Method") is None:
        entry["path"] = "$default"
    else:
        if props.get("Path") is None:
            raise ValueError("Properties.Path: required with Method")
        _route(props, entry)
    if props.get("PayloadFormatVersion") is not None:
        entry["payloadFormatVersion"] = str(props["PayloadFormatVersion"])
    return _checked(entry)


def rest_api(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's `Api` (a REST API's Lambda proxy integration): a route whose event is the
    proxy event, payload format 1.0."""
    _refuse(props, {"Path", "Method", "Auth", "TimeoutInMillis"}, {"RestApiId"})
    _no_auth(props)
    if props.get("Path") is None or props.get("Method") is None:
        raise ValueError("Properties.Path and Properties.Method: both required")
    entry: dict[str, Any] = {"type": "HttpApi", "payloadFormatVersion": "1.0"}
    _route(props, entry)
    return _checked(entry)


def sns(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's `SNS`: a subscription to a topic (a name, an ARN, or a Ref to the template's
    topic, named by its logical id)."""
    _refuse(
        props, {"Topic", "FilterPolicy", "FilterPolicyScope", "SqsSubscription", "RedrivePolicy"},
        {"Region"},
    )  # fmt: skip
    if props.get("SqsSubscription"):
        raise ValueError("Properties.SqsSubscription: not supported (the topic invokes directly)")
    entry: dict[str, Any] = {"type": "Topic", "topic": _name_of(props.get("Topic"), "Topic")}
    if props.get("FilterPolicy") is not None:
        entry["filterPolicy"] = dict(props["FilterPolicy"])
    if props.get("FilterPolicyScope") is not None:
        entry["filterPolicyScope"] = str(props["FilterPolicyScope"])
    redrive = props.get("RedrivePolicy") or {}
    if redrive.get("deadLetterTargetArn"):
        arn = _name_of(redrive["deadLetterTargetArn"], "RedrivePolicy.deadLetterTargetArn")
        entry["deadLetter"] = {"queue": arn.rsplit(":", 1)[-1]}
    return _checked(entry)


# SAM event type -> (logical id, Properties) -> one entry of the Function's `events`
MAPPERS: dict[str, Mapper] = {
    "Schedule": schedule,
    "ScheduleV2": schedule_v2,
    "HttpApi": http_api,
    "Api": rest_api,
    "SNS": sns,
}


def events_of(
    where: str, events: Mapping[str, Any], apis: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(the Function's `events` entries, the problems naming each unsupported event);
    `apis`: the template's AWS::Serverless::HttpApi resources' Properties, by logical id."""
    mapped: dict[str, Any] = {}
    problems: list[str] = []
    for name, event in events.items():
        kind = str((event or {}).get("Type", "?"))
        mapper = MAPPERS.get(kind)
        if mapper is None:
            problems.append(
                f"{where}.Events.{name}: event type {kind} is not supported by this klambda "
                f"(supported: {', '.join(sorted(MAPPERS)) or 'none yet'})"
            )
            continue
        props = (event or {}).get("Properties") or {}
        try:
            mapped[name] = http_api(name, props, apis) if kind == "HttpApi" else mapper(name, props)
        except (ValueError, TypeError, KeyError) as err:
            problems.append(f"{where}.Events.{name}: {err}")
    return mapped, problems


def function_url_of(
    where: str, config: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, list[str]]:
    """SAM's `FunctionUrlConfig` as the Function's `functionUrl` (or the problems)."""
    if not config:
        return None, []
    field = f"{where}.FunctionUrlConfig"
    problems = [
        f"{field}.{k}: not supported by klambda"
        for k in config
        if k not in ("AuthType", "InvokeMode", "Cors")
    ]
    if "AuthType" not in config:
        problems.append(f"{field}.AuthType: required (NONE or AWS_IAM)")
    if problems:
        return None, problems
    url: dict[str, Any] = {
        "authType": str(config["AuthType"]),
        "invokeMode": str(config.get("InvokeMode") or "BUFFERED"),
    }
    cors_ = config.get("Cors")
    if cors_:
        # Lambda's Cors fields in the spec's spelling (AllowOrigins -> allowOrigins)
        url["cors"] = {k[:1].lower() + k[1:]: v for k, v in dict(cors_).items()}
    try:
        FunctionUrl.model_validate(url)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "FunctionUrlConfig"
        return None, [f"{field}: {loc}: {first['msg'].removeprefix('Value error, ')}"]
    return url, []
