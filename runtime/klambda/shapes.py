"""Lambda's JSON shapes (FunctionConfiguration, AliasConfiguration), built in one place.

The router's REST API answers with them, and the CLI builds the same ones from the API
server's objects when it talks to a cluster, so `klambda get ...` prints one shape
whichever it asked. Pure.
"""

from __future__ import annotations

from typing import Any

from klambda.api import AliasSpec, Destination, FunctionSpec
from klambda.api.limits import LATEST
from klambda.execution import FunctionConfig


def function_arn(cfg: FunctionConfig, qualifier: str | None = None) -> str:
    return f"{cfg.arn}:{qualifier}" if qualifier else cfg.arn


def function_configuration(
    cfg: FunctionConfig, state: str, state_reason: str | None = None, description: str = ""
) -> dict[str, Any]:
    """Lambda's FunctionConfiguration of one version."""
    return {
        "FunctionName": cfg.function,
        "FunctionArn": function_arn(cfg, None if cfg.version == LATEST else cfg.version),
        "Runtime": cfg.runtime,
        "Role": f"arn:aws:iam::{cfg.account}:role/klambda",
        "Handler": cfg.handler,
        "Description": description,
        "Timeout": cfg.timeout_s,
        "MemorySize": cfg.memory_mb,
        "EphemeralStorage": {"Size": cfg.ephemeral_storage_mb},
        "CodeSha256": cfg.code_sha256,
        "Version": cfg.version,
        "Environment": {"Variables": dict(cfg.environment)},
        "State": state,
        "StateReason": state_reason or "",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "LoggingConfig": logging_config(cfg),
        # changes are applied before the answer (the waiters of boto3 and Terraform read it)
        "LastUpdateStatus": "Successful",
    }


def triggers(spec: FunctionSpec | AliasSpec) -> dict[str, Any] | None:
    """klambda's `Triggers` of GetFunction and GetAlias (Lambda keeps triggers in other
    services): the spec's `events` and `functionUrl` as written; None when it has neither."""
    if not spec.events and spec.function_url is None:
        return None
    return {
        "events": {name: t.wire() for name, t in (spec.events or {}).items()} or None,
        "functionUrl": spec.function_url.wire() if spec.function_url else None,
    }


def logging_config(cfg: FunctionConfig) -> dict[str, str]:
    """Lambda's LoggingConfig: the levels appear with the JSON format only."""
    shape = {"LogFormat": cfg.log_format, "LogGroup": cfg.log_group}
    if cfg.application_log_level:
        shape["ApplicationLogLevel"] = cfg.application_log_level
    if cfg.system_log_level:
        shape["SystemLogLevel"] = cfg.system_log_level
    return shape


def alias_configuration(function: FunctionConfig, name: str, spec: AliasSpec) -> dict[str, Any]:
    """Lambda's AliasConfiguration; `function` is any version's config (for the ARN)."""
    out: dict[str, Any] = {
        "AliasArn": function_arn(function, name),
        "Name": name,
        "FunctionVersion": spec.version,
        "Description": spec.description,
    }
    if spec.routing is not None:
        out["RoutingConfig"] = {
            "AdditionalVersionWeights": {spec.routing.additional_version: spec.routing.weight}
        }
    alias_triggers = triggers(spec)
    if alias_triggers is not None:
        out["Triggers"] = alias_triggers
    return out


def destination_arn(cfg: FunctionConfig, dest: Destination) -> str:
    """A destination as Lambda names it: a function's ARN, or an SQS-style queue ARN."""
    if dest.function is not None:
        return f"arn:aws:lambda:{cfg.region}:{cfg.account}:function:{dest.function}"
    return f"arn:aws:sqs:{cfg.region}:{cfg.account}:{dest.queue}"


def event_invoke_config(
    cfg: FunctionConfig, spec: FunctionSpec, last_modified: float
) -> dict[str, Any]:
    """Lambda's FunctionEventInvokeConfig of a function's `$LATEST`."""
    dest: dict[str, Any] = {}
    if spec.destinations is not None:
        for name, d in (
            ("OnSuccess", spec.destinations.on_success),
            ("OnFailure", spec.destinations.on_failure),
        ):
            if d is not None:
                dest[name] = {"Destination": destination_arn(cfg, d)}
    return {
        "LastModified": last_modified,
        "FunctionArn": function_arn(cfg, LATEST),
        "MaximumRetryAttempts": spec.retry_attempts,
        "MaximumEventAgeInSeconds": spec.max_event_age_seconds,
        "DestinationConfig": dest,
    }
