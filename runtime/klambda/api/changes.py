"""Lambda's control requests as changes of a Function's spec. Pure.

CreateFunction, UpdateFunctionConfiguration, UpdateFunctionCode, Put/UpdateFunctionEvent-
InvokeConfig, TagResource and UntagResource arrive as Lambda's JSON (from boto3, the AWS
CLI, Terraform, `klambda deploy`); these functions turn them into a new `FunctionSpec`
(or, for the `Triggers` of CreateAlias and UpdateAlias, a new `AliasSpec`), checked by the
model, or a `RuleError` naming Lambda's field and the limit. Local mode's router and the
command line on a cluster both call them, so the same request gets the same answer in
either mode.

Lambda's fields that klambda has no counterpart for are named when they ask for more than
Lambda's default (Layers, a VPC, active tracing, ...) and accepted when they only restate
the default, as Terraform and SAM send them. `Role` is accepted and not used: klambda has
no IAM.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from klambda.api import limits
from klambda.api.alias import AliasSpec
from klambda.api.function import Code, FunctionSpec
from klambda.api.rules import RuleError

# Lambda's configuration field -> the Function spec's
CONFIG_FIELDS = {
    "Handler": "handler",
    "Runtime": "runtime",
    "Description": "description",
    "Timeout": "timeoutSeconds",
    "MemorySize": "memoryMB",
}
SPEC_TO_LAMBDA = {spec: name for name, spec in CONFIG_FIELDS.items()} | {
    "environment": "Environment.Variables",
    "deadLetter": "DeadLetterConfig.TargetArn",
    "tags": "Tags",
    "retryAttempts": "MaximumRetryAttempts",
    "maxEventAgeSeconds": "MaximumEventAgeInSeconds",
    "destinations": "DestinationConfig",
    "code": "Code",
    "events": "Triggers.events",
    "functionUrl": "Triggers.functionUrl",
}

# Fields with no counterpart in klambda: the values that say "Lambda's default", which are
# accepted; anything else is refused with the field named.
_DEFAULTS: dict[str, Any] = {
    "Layers": [],
    "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []},
    "TracingConfig": {"Mode": "PassThrough"},
    "Architectures": ["x86_64"],
    "EphemeralStorage": {"Size": 512},
    "KMSKeyArn": "",
    "FileSystemConfigs": [],
    "CodeSigningConfigArn": "",
    "SnapStart": {"ApplyOn": "None"},
    "LoggingConfig": {"LogFormat": "Text"},
}
_UNSUPPORTED_WHY = {
    "Layers": "layers are not supported",
    "VpcConfig": "functions run on the cluster's network, not in a VPC",
    "TracingConfig": "X-Ray tracing is not supported (Mode PassThrough only)",
    "Architectures": "only x86_64 is supported",
    "EphemeralStorage": "only 512 MB of /tmp is supported",
    "KMSKeyArn": "there is no KMS",
    "FileSystemConfigs": "EFS file systems are not supported",
    "CodeSigningConfigArn": "code signing is not supported",
    "SnapStart": "SnapStart is not supported",
    "LoggingConfig": "only the Text log format is supported",
}
# accepted and not used
_IGNORED = ("Role", "Publish", "PackageType", "Code", "FunctionName", "Tags", "RevisionId")


@dataclass(frozen=True)
class CodeUpload:
    """The code of a CreateFunction or UpdateFunctionCode request: a .zip or an image."""

    zip_file: bytes | None = None
    image_uri: str | None = None


def _equivalent(given: Any, default: Any) -> bool:
    if isinstance(default, dict) and isinstance(given, dict):
        return all(_equivalent(given.get(k, v), v) for k, v in default.items()) and set(
            given
        ) <= set(default)
    if isinstance(default, list) and isinstance(given, list):
        return given == default or (not default and not given)
    return bool(given == default or (default == "" and given is None))


def check_unsupported(body: Mapping[str, Any]) -> None:
    """RuleError naming the first field that asks for something klambda does not do."""
    for name, default in _DEFAULTS.items():
        if name in body and body[name] is not None and not _equivalent(body[name], default):
            raise RuleError(f"{name}: not supported by klambda ({_UNSUPPORTED_WHY[name]})")


def destination_of_arn(arn: str, field: str) -> dict[str, str]:
    """A Lambda function ARN -> {function}; an SQS queue ARN -> {queue} (klambda's named
    queues); anything else is refused naming the field."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "lambda" and parts[5] == "function":
        return {"function": parts[6]}
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "sqs" and parts[5]:
        return {"queue": parts[5]}
    if re.fullmatch(r"[a-z][-a-z0-9]{0,47}", arn):  # a plain function name, as klambda writes
        return {"function": arn}
    raise RuleError(
        f"{field}: {arn!r} must be a Lambda function ARN or an SQS queue ARN "
        "(arn:aws:sqs:REGION:ACCOUNT:NAME, a klambda queue)"
    )


def _validated(fields: dict[str, Any]) -> FunctionSpec:
    try:
        return FunctionSpec.model_validate(fields)
    except ValidationError as err:
        raise RuleError("; ".join(_describe(err))) from None


def _describe(err: ValidationError) -> list[str]:
    """`MemorySize (spec.memoryMB): Input should be ...`: Lambda's name and klambda's."""
    out = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith("function-after")]
        msg = e["msg"].removeprefix("Value error, ")
        if not loc:
            out.append(msg)
            continue
        lam = SPEC_TO_LAMBDA.get(loc[0])
        where = ".".join(loc)
        out.append(f"{lam} (spec.{where}): {msg}" if lam else f"spec.{where}: {msg}")
    return out


def _config_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The spec fields an UpdateFunctionConfiguration (or CreateFunction) body sets."""
    check_unsupported(body)
    out: dict[str, Any] = {}
    for name, spec in CONFIG_FIELDS.items():
        if body.get(name) is not None:
            out[spec] = body[name]
    if "Environment" in body:
        env = body.get("Environment") or {}
        if not isinstance(env, Mapping):
            raise RuleError("Environment: must be an object with Variables")
        out["environment"] = dict(env.get("Variables") or {})
    if "DeadLetterConfig" in body:
        target = (body.get("DeadLetterConfig") or {}).get("TargetArn")
        out["deadLetter"] = (
            destination_of_arn(str(target), "DeadLetterConfig.TargetArn") if target else None
        )
    if "Triggers" in body:
        out.update(triggers_fields(body["Triggers"]))
    return out


def triggers_fields(triggers: Any) -> dict[str, Any]:
    """klambda's own `Triggers` field (Lambda keeps triggers in other services) as the
    spec's `events` and `functionUrl`, as `klambda deploy` maps them from SAM's: a
    Function's (CreateFunction, UpdateFunctionConfiguration) or an Alias's (CreateAlias,
    UpdateAlias). None clears both."""
    triggers = triggers or {}
    if not isinstance(triggers, Mapping):
        raise RuleError("Triggers: must be an object with events and functionUrl")
    return {
        "events": triggers.get("events") or None,
        "functionUrl": triggers.get("functionUrl") or None,
    }


def alias_triggers(spec: AliasSpec, triggers: Any) -> AliasSpec:
    """An alias's spec with the `Triggers` of a CreateAlias or UpdateAlias request: its
    `events` and `functionUrl` replaced, checked as a Function's are."""
    try:
        return AliasSpec.model_validate({**spec.wire(), **triggers_fields(triggers)})
    except ValidationError as err:
        raise RuleError("; ".join(_describe(err))) from None


def code_of(code: Mapping[str, Any], field: str = "Code") -> CodeUpload:
    """The code of a request: `ZipFile` (base64 in JSON) or `ImageUri`; S3 is refused."""
    if code.get("S3Bucket") or code.get("S3Key"):
        raise RuleError(
            f"{field}.S3Bucket: klambda has no S3; send the .zip itself ({field}.ZipFile)"
        )
    zip_file, image = code.get("ZipFile"), code.get("ImageUri")
    if (zip_file is None) == (image is None):
        raise RuleError(f"{field}: give exactly one of ZipFile, ImageUri")
    if image is not None:
        if not isinstance(image, str) or not image or len(image) > 512:
            raise RuleError(f"{field}.ImageUri: must be an image reference of 1-512 characters")
        return CodeUpload(image_uri=image)
    if isinstance(zip_file, (bytes, bytearray)):
        data = bytes(zip_file)
    else:
        try:
            data = base64.b64decode(str(zip_file), validate=True)
        except (binascii.Error, ValueError):
            raise RuleError(f"{field}.ZipFile: must be base64 (the bytes of a .zip)") from None
    if len(data) > limits.ZIP_MAX_BYTES:
        raise RuleError(
            f"{field}.ZipFile: {len(data)} bytes is more than the {limits.ZIP_MAX_BYTES} "
            "bytes a .zip sent in the request may take"
        )
    return CodeUpload(zip_file=data)


def create_spec(body: Mapping[str, Any], code: Code) -> FunctionSpec:
    """The `$LATEST` of a CreateFunction request, its code already stored as `code`."""
    fields = _config_fields(body)
    package = body.get("PackageType") or "Zip"
    if package not in ("Zip", "Image"):
        raise RuleError(f"PackageType: must be Zip or Image, got {package!r}")
    if package == "Image":
        command = (body.get("ImageConfig") or {}).get("Command") or []
        if "handler" not in fields and command:
            fields["handler"] = str(command[0])
        fields.setdefault("runtime", limits.RUNTIME_DEFAULT)
    elif body.get("ImageConfig"):
        raise RuleError("ImageConfig: only for PackageType Image")
    for name, spec in (("Handler", "handler"), ("Runtime", "runtime")):
        if spec not in fields:
            raise RuleError(f"{name}: required for a function of PackageType {package}")
    if body.get("Tags"):
        fields["tags"] = dict(body["Tags"])
    fields["code"] = code.wire()
    return _validated(fields)


def update_configuration(spec: FunctionSpec, body: Mapping[str, Any]) -> FunctionSpec:
    """`$LATEST` after UpdateFunctionConfiguration: the fields given, the rest as it was."""
    if body.get("ImageConfig"):
        raise RuleError("ImageConfig: not supported by klambda (set Handler instead)")
    return _validated({**spec.wire(), **_config_fields(body)})


def update_code(spec: FunctionSpec, code: Code) -> FunctionSpec:
    return _validated({**spec.wire(), "code": code.wire()})


# -- asynchronous invocation: FunctionEventInvokeConfig


def put_event_invoke_config(
    spec: FunctionSpec, body: Mapping[str, Any], replace: bool
) -> FunctionSpec:
    """`$LATEST` after PutFunctionEventInvokeConfig (`replace`: what is not given goes back
    to Lambda's defaults) or UpdateFunctionEventInvokeConfig (only what is given changes)."""
    fields = spec.wire()
    if replace:
        for key in ("retryAttempts", "maxEventAgeSeconds", "destinations"):
            fields.pop(key, None)
    if body.get("MaximumRetryAttempts") is not None:
        fields["retryAttempts"] = body["MaximumRetryAttempts"]
    if body.get("MaximumEventAgeInSeconds") is not None:
        fields["maxEventAgeSeconds"] = body["MaximumEventAgeInSeconds"]
    if body.get("DestinationConfig") is not None:
        config = body["DestinationConfig"] or {}
        dest = dict(fields.get("destinations") or {})
        for lam, key in (("OnSuccess", "onSuccess"), ("OnFailure", "onFailure")):
            if lam in config:
                arn = (config.get(lam) or {}).get("Destination")
                if arn:
                    dest[key] = destination_of_arn(str(arn), f"DestinationConfig.{lam}.Destination")
                else:
                    dest.pop(key, None)
        fields["destinations"] = dest or None
    return _validated(fields)


def clear_event_invoke_config(spec: FunctionSpec) -> FunctionSpec:
    return put_event_invoke_config(spec, {}, replace=True)


def has_event_invoke_config(spec: FunctionSpec) -> bool:
    default = FunctionSpec.model_fields
    return (
        spec.retry_attempts != default["retry_attempts"].default
        or spec.max_event_age_seconds != default["max_event_age_seconds"].default
        or spec.destinations is not None
    )


# -- tags


def tag(spec: FunctionSpec, tags: Mapping[str, Any]) -> FunctionSpec:
    if not isinstance(tags, Mapping):
        raise RuleError("Tags: must be a map of key to value")
    merged = {**(spec.tags or {}), **{str(k): str(v) for k, v in tags.items()}}
    return _validated({**spec.wire(), "tags": merged})


def untag(spec: FunctionSpec, keys: list[str]) -> FunctionSpec:
    left = {k: v for k, v in (spec.tags or {}).items() if k not in set(keys)}
    return _validated({**spec.wire(), "tags": left or None})
