"""An AWS::Serverless::Function as klambda's resources. Pure.

SAM's properties are mostly Lambda's CreateFunction fields, so a function becomes a
CreateFunction request checked by the same rules as the API (klambda.api.changes), plus
what SAM adds: the code (`CodeUri`, `InlineCode`, `ImageUri`), reserved and provisioned
concurrency, `AutoPublishAlias`, `DeploymentPreference`, `DeadLetterQueue`,
`EventInvokeConfig`, `Events` and `FunctionUrlConfig` (klambda.deploy.events; on the
alias with `AutoPublishAlias`, so that they invoke it, as SAM attaches them). Every
property klambda does not do is named, all at once; the IAM ones (`Policies`, `Role`,
...) are accepted and not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klambda import codestore
from klambda.api import Code, changes, limits, rules
from klambda.deploy import events as sam_events
from klambda.deploy.gradual import (
    Alarm,
    DeploymentError,
    Hooks,
    Step,
    alarm_of_cloudwatch,
    check_expression,
    schedule,
)
from klambda.deploy.template import Template

STACK_TAG = "klambda:stack"
CONFIG = ("Handler", "Runtime", "MemorySize", "Timeout", "Description", "Environment")
LAMBDA_FIELDS = (
    "Layers",
    "VpcConfig",
    "Architectures",
    "EphemeralStorage",
    "KmsKeyArn",
    "FileSystemConfigs",
    "CodeSigningConfigArn",
    "SnapStart",
    "LoggingConfig",
    "PackageType",
    "ImageConfig",
)
HANDLED = {
    *CONFIG,
    *LAMBDA_FIELDS,
    "FunctionName",
    "CodeUri",
    "InlineCode",
    "ImageUri",
    "Tags",
    "ReservedConcurrentExecutions",
    "ProvisionedConcurrencyConfig",
    "AutoPublishAlias",
    "AutoPublishCodeSha256",
    "AutoPublishAliasAllProperties",
    "DeploymentPreference",
    "DeadLetterQueue",
    "EventInvokeConfig",
    "Events",
    "FunctionUrlConfig",
    "Tracing",
}
# no IAM in klambda: accepted, not used
UNUSED = ("Policies", "Role", "PermissionsBoundary", "AssumeRolePolicyDocument", "RolePath")


@dataclass(frozen=True)
class CodeSource:
    files: dict[str, bytes] | None = None  # CodeUri (a folder) or InlineCode
    image: str | None = None

    @property
    def sha256(self) -> str | None:
        """The CodeSha256 klambda gives this code (a router's and a cluster's alike)."""
        if self.files is not None:
            return codestore.digest(self.files)
        return None

    def request(self) -> dict[str, Any]:
        """The `Code` of a CreateFunction request (or the body of UpdateFunctionCode)."""
        if self.image is not None:
            return {"ImageUri": self.image}
        assert self.files is not None
        return {"ZipFile": codestore.zip_files(self.files)}


@dataclass
class Preference:
    steps: list[Step]
    alarms: list[Alarm]
    hooks: Hooks
    kind: str


@dataclass
class DesiredFunction:
    name: str
    logical_id: str
    body: dict[str, Any]  # a CreateFunction request, without Code
    code: CodeSource
    reserved: int | None = None
    event_invoke: dict[str, Any] | None = None  # a PutFunctionEventInvokeConfig body
    alias: str | None = None
    provisioned: int = 0
    preference: Preference | None = None
    # the triggers: with AutoPublishAlias the alias's, as SAM attaches them; else $LATEST's
    events: dict[str, Any] = field(default_factory=dict)
    function_url: dict[str, Any] | None = None

    @property
    def triggers(self) -> dict[str, Any]:
        """klambda's `Triggers` (CreateFunction, CreateAlias, ...) of `events` and
        `function_url`."""
        return {"events": self.events or None, "functionUrl": self.function_url}

    @property
    def function_triggers(self) -> dict[str, Any]:
        """The Function's `Triggers`: none when they are the alias's."""
        return {"events": None, "functionUrl": None} if self.alias else self.triggers

    @property
    def alias_triggers(self) -> dict[str, Any] | None:
        """The alias's `Triggers` (AutoPublishAlias), None without an alias."""
        return self.triggers if self.alias else None


def function_name(logical_id: str, props: dict[str, Any]) -> str:
    """`FunctionName`, or the logical id in klambda's spelling (HelloFunction ->
    hello-function)."""
    given = props.get("FunctionName")
    if isinstance(given, str):
        return given
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", logical_id).lower().replace("_", "-")


def _code(where: str, props: dict[str, Any], base: Path) -> CodeSource:
    if props.get("PackageType") == "Image" or props.get("ImageUri"):
        image = props.get("ImageUri")
        if not isinstance(image, str):
            raise ValueError(f"{where}.ImageUri: an image reference is needed")
        return CodeSource(image=image)
    if "InlineCode" in props:
        # what CloudFormation does with inline Python: index.py
        return CodeSource(files={"index.py": str(props["InlineCode"]).encode()})
    uri = props.get("CodeUri")
    if not isinstance(uri, str) or uri.startswith("s3://"):
        raise ValueError(
            f"{where}.CodeUri: klambda reads code from a local folder (a path relative to "
            f"the template), not {uri!r}"
        )
    folder = (base / uri).resolve()
    if not folder.is_dir():
        raise ValueError(f"{where}.CodeUri: {folder} is not a folder")
    files = codestore.collect(path=folder)
    if not files:
        raise ValueError(f"{where}.CodeUri: {folder} holds no files")
    return CodeSource(files=files)


def _destination(where: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"{where}: an ARN (a function's, or arn:aws:sqs:...:NAME) is needed")


def _event_invoke(where: str, config: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if key in config:
            body[key] = config[key]
    dest: dict[str, Any] = {}
    for key in ("OnSuccess", "OnFailure"):
        d = (config.get("DestinationConfig") or {}).get(key)
        if d:
            arn = _destination(f"{where}.DestinationConfig.{key}.Destination", d.get("Destination"))
            dest[key] = {"Destination": arn}
    if dest:
        body["DestinationConfig"] = dest
    return body


def _alarms(where: str, given: list[Any], template: Template) -> list[Alarm]:
    out = []
    for i, alarm in enumerate(given):
        field_ = f"{where}.Alarms[{i}]"
        if isinstance(alarm, dict) and "Ref" in alarm:
            res = template.resources.get(str(alarm["Ref"])) or {}
            if res.get("Type") != "AWS::CloudWatch::Alarm":
                raise DeploymentError(f"{field_}: {alarm['Ref']} is not an AWS::CloudWatch::Alarm")
            out.append(alarm_of_cloudwatch(str(alarm["Ref"]), res.get("Properties") or {}))
        elif isinstance(alarm, str) and re.search(r"[<>=]", alarm):
            check_expression(alarm, field_)
            out.append(Alarm(expression=alarm))
        elif isinstance(alarm, str):
            out.append(Alarm(prometheus_alert=alarm))
        else:
            raise DeploymentError(f"{field_}: a Ref to an alarm, an expression or an alert name")
    return out


def _hook(where: str, value: Any, template: Template) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict) and "Ref" in value:
        res = template.resources.get(str(value["Ref"])) or {}
        if res.get("Type") != "AWS::Serverless::Function":
            raise DeploymentError(f"{where}: {value['Ref']} is not a function of the template")
        return function_name(str(value["Ref"]), res.get("Properties") or {})
    if isinstance(value, str):
        return value
    raise DeploymentError(f"{where}: a Ref to a function of the template, or its name")


def preference(
    where: str, pref: dict[str, Any], template: Template, minute_s: float
) -> Preference | None:
    if pref.get("Enabled") is False:
        return None
    kind = str(pref.get("Type") or "")
    for key in pref:
        if key not in ("Type", "Alarms", "Hooks", "Enabled", "Role", "TriggerConfigurations"):
            raise DeploymentError(f"{where}.{key}: not supported by klambda")
    if pref.get("TriggerConfigurations"):
        raise DeploymentError(f"{where}.TriggerConfigurations: SNS triggers are not supported")
    hooks = pref.get("Hooks") or {}
    return Preference(
        steps=schedule(kind, minute_s),
        alarms=_alarms(where, list(pref.get("Alarms") or []), template),
        hooks=Hooks(
            _hook(f"{where}.Hooks.PreTraffic", hooks.get("PreTraffic"), template),
            _hook(f"{where}.Hooks.PostTraffic", hooks.get("PostTraffic"), template),
        ),
        kind=kind,
    )


def desired(
    template: Template, stack: str, minute_s: float = 60.0
) -> tuple[list[DesiredFunction], list[str], list[str]]:
    """(the template's functions as klambda's, the problems, notes of what is not used)."""
    out: list[DesiredFunction] = []
    problems: list[str] = []
    notes: list[str] = []
    base = template.path.parent
    apis = {
        logical_id: dict(res.get("Properties") or {})
        for logical_id, res in template.resources.items()
        if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::HttpApi"
    }
    for fn in template.functions:
        where = f"Resources.{fn.logical_id}.Properties"
        props = fn.properties
        unknown = sorted(k for k in props if k not in HANDLED and k not in UNUSED)
        problems.extend(f"{where}.{k}: not supported by klambda" for k in unknown)
        used = sorted(k for k in props if k in UNUSED)
        if used:
            notes.append(f"{where}: {', '.join(used)} not used (klambda has no IAM)")
        name = function_name(fn.logical_id, props)
        if not re.match(limits.FUNCTION_NAME_PATTERN, name):
            problems.append(
                f"{where}.FunctionName: {name!r} must be 1-48 lowercase letters, digits or '-'"
            )
            continue
        body: dict[str, Any] = {
            "FunctionName": name,
            **{k: props[k] for k in (*CONFIG, *LAMBDA_FIELDS) if k in props},
            "Tags": {**(props.get("Tags") or {}), STACK_TAG: stack},
        }
        if "Tracing" in props:
            body["TracingConfig"] = {"Mode": props["Tracing"]}
        try:
            code = _code(where, props, base)
            dlq = props.get("DeadLetterQueue")
            if dlq:
                if dlq.get("Type") != "SQS":
                    raise ValueError(f"{where}.DeadLetterQueue.Type: SQS only (a klambda queue)")
                body["DeadLetterConfig"] = {"TargetArn": _destination(where, dlq.get("TargetArn"))}
            # the same checks as CreateFunction's, naming SAM's property; values as the
            # model reads them (a parameter gives "512" where 512 is meant)
            spec = changes.create_spec(body, Code(inline={"index.py": ""}))
            body["MemorySize"], body["Timeout"] = spec.memory_mb, spec.timeout_seconds
            if "Environment" in body:
                body["Environment"] = {"Variables": dict(spec.environment)}
            event_invoke = None
            if props.get("EventInvokeConfig"):
                event_invoke = _event_invoke(
                    f"{where}.EventInvokeConfig", props["EventInvokeConfig"]
                )
            alias = props.get("AutoPublishAlias")
            provisioned = int(
                (props.get("ProvisionedConcurrencyConfig") or {}).get(
                    "ProvisionedConcurrentExecutions", 0
                )
            )
            pref = None
            if props.get("DeploymentPreference"):
                pref = preference(
                    f"{where}.DeploymentPreference",
                    props["DeploymentPreference"],
                    template,
                    minute_s,
                )
        except (ValueError, rules.RuleError) as err:
            problems.append(str(err) if str(err).startswith("Resources.") else f"{where}: {err}")
            continue
        mapped, event_problems = sam_events.events_of(where, props.get("Events") or {}, apis)
        problems.extend(event_problems)
        url, url_problems = sam_events.function_url_of(where, props.get("FunctionUrlConfig"))
        problems.extend(url_problems)
        reserved = props.get("ReservedConcurrentExecutions")
        out.append(
            DesiredFunction(
                name=name,
                logical_id=fn.logical_id,
                body=body,
                code=code,
                reserved=None if reserved is None else int(reserved),
                event_invoke=event_invoke,
                alias=str(alias) if alias else None,
                provisioned=provisioned,
                preference=pref,
                events=mapped,
                function_url=url,
            )
        )
    return out, problems, notes
