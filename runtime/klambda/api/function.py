"""The Function kind: Lambda's `$LATEST`, the mutable configuration and code of a function.

A Function's spec carries Lambda's limits (memory, timeout, environment size, retry and
event-age bounds); the validators here give the same answers as the CRD schema in
`crds/functions.yaml`, so local mode refuses what the API server would refuse.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from klambda.api import limits
from klambda.api.logconfig import (
    LoggingConfig,
    MetricFilter,
    check_metric_filters,
    check_retention,
)
from klambda.api.meta import Condition, Model, ObjectMeta
from klambda.api.triggers import FunctionUrl, Trigger, TriggerStatus, check_events


class Code(Model):
    """Where the function's code comes from: exactly one source."""

    inline: dict[str, str] | None = None
    path: str | None = None
    config_map: str | None = Field(default=None, alias="configMap")
    image: str | None = None
    # a .zip in the cluster's store (Lambda's S3Key): copied once, by its digest
    s3_key: str | None = Field(default=None, alias="s3Key", max_length=limits.S3_KEY_MAX)

    @model_validator(mode="after")
    def _exactly_one(self) -> Code:
        given = [k for k in ("inline", "path", "config_map", "image", "s3_key") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "exactly one of inline, path, configMap, image, s3Key must be given"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @field_validator("inline")
    @classmethod
    def _inline_names(cls, files: dict[str, str] | None) -> dict[str, str] | None:
        for name in files or {}:
            if not name or name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"file name {name!r} must be a relative path inside the code")
        return files


class Destination(Model):
    """Where an async invocation's record goes: another function or a named queue."""

    function: str | None = None
    queue: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Destination:
        if (self.function is None) == (self.queue is None):
            raise ValueError("exactly one of function, queue must be given")
        return self


class FileSystemConfig(Model):
    """A shared file system mounted into every environment (Lambda's EFS access point): a
    ReadWriteMany PersistentVolumeClaim in cluster mode, a host folder in local mode."""

    claim_name: str = Field(alias="claimName", pattern=limits.CLAIM_NAME_PATTERN)
    local_mount_path: str = Field(alias="localMountPath", pattern=limits.MOUNT_PATH_PATTERN)


class ImageConfig(Model):
    """Lambda's ImageConfig: what a container-image function's image runs, overriding
    its ENTRYPOINT, CMD and WORKDIR."""

    entry_point: list[str] | None = Field(default=None, alias="entryPoint", max_length=1500)
    command: list[str] | None = Field(default=None, max_length=1500)
    working_directory: str | None = Field(default=None, alias="workingDirectory", max_length=1000)


class Destinations(Model):
    on_success: Destination | None = Field(default=None, alias="onSuccess")
    on_failure: Destination | None = Field(default=None, alias="onFailure")


class FunctionSpec(Model):
    handler: str = Field(pattern=limits.HANDLER_PATTERN)
    runtime: Literal[
        "python3.9",
        "python3.10",
        "python3.11",
        "python3.12",
        "python3.13",
        "provided",
        "provided.al2",
        "provided.al2023",
    ]
    code: Code
    # layer versions (NAME:VERSION or an ARN), extracted in order into /opt
    layers: list[Annotated[str, StringConstraints(pattern=limits.LAYER_REF_PATTERN)]] = Field(
        default_factory=list, max_length=limits.LAYERS_MAX
    )
    image_config: ImageConfig | None = Field(default=None, alias="imageConfig")
    file_system_configs: list[FileSystemConfig] = Field(
        default_factory=list, alias="fileSystemConfigs", max_length=limits.FILE_SYSTEMS_MAX
    )
    description: str = Field(default="", max_length=256)
    memory_mb: int = Field(
        default=limits.MEMORY_DEFAULT_MB,
        ge=limits.MEMORY_MIN_MB,
        le=limits.MEMORY_MAX_MB,
        alias="memoryMB",
    )
    timeout_seconds: int = Field(
        default=limits.TIMEOUT_DEFAULT_S,
        ge=limits.TIMEOUT_MIN_S,
        le=limits.TIMEOUT_MAX_S,
        alias="timeoutSeconds",
    )
    ephemeral_storage_mb: int = Field(
        default=limits.EPHEMERAL_STORAGE_DEFAULT_MB,
        ge=limits.EPHEMERAL_STORAGE_MIN_MB,
        le=limits.EPHEMERAL_STORAGE_MAX_MB,
        alias="ephemeralStorageMB",
    )
    environment: dict[str, str] = Field(default_factory=dict)
    reserved_concurrency: int | None = Field(default=None, ge=0, alias="reservedConcurrency")
    retry_attempts: int = Field(
        default=limits.RETRY_ATTEMPTS_DEFAULT,
        ge=limits.RETRY_ATTEMPTS_MIN,
        le=limits.RETRY_ATTEMPTS_MAX,
        alias="retryAttempts",
    )
    max_event_age_seconds: int = Field(
        default=limits.MAX_EVENT_AGE_DEFAULT_S,
        ge=limits.MAX_EVENT_AGE_MIN_S,
        le=limits.MAX_EVENT_AGE_MAX_S,
        alias="maxEventAgeSeconds",
    )
    # Lambda's execution role: the ServiceAccount whose RBAC the function's own calls get
    service_account_name: str | None = Field(
        default=None, alias="serviceAccountName", pattern=limits.SERVICE_ACCOUNT_PATTERN
    )
    # Lambda's recursive loop detection: stop the 16th hop of a loop, or let it run
    recursive_loop: Literal["Terminate", "Allow"] = Field(
        default="Terminate", alias="recursiveLoop"
    )
    dead_letter: Destination | None = Field(default=None, alias="deadLetter")
    destinations: Destinations | None = None
    # logs (klambda.api.logconfig): Lambda's LoggingConfig and the log group's retention
    logging_config: LoggingConfig | None = Field(default=None, alias="loggingConfig")
    log_retention_in_days: int | None = Field(default=None, alias="logRetentionInDays")
    metric_filters: list[MetricFilter] | None = Field(default=None, alias="metricFilters")

    @field_validator("metric_filters")
    @classmethod
    def _metric_filters(cls, filters: list[MetricFilter] | None) -> list[MetricFilter] | None:
        return None if filters is None else check_metric_filters(filters)

    @field_validator("log_retention_in_days")
    @classmethod
    def _retention(cls, days: int | None) -> int | None:
        return check_retention(days)

    @property
    def logging(self) -> LoggingConfig:
        """The logging configuration in force: Lambda's defaults (Text) when none is given."""
        return self.logging_config or LoggingConfig()

    # -- triggers (klambda.api.triggers): what invokes $LATEST besides direct calls; not
    # part of a published version's configuration
    events: dict[str, Trigger] | None = None
    function_url: FunctionUrl | None = Field(default=None, alias="functionUrl")

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, events: Any) -> Any:
        check_events(events if isinstance(events, dict) else None)
        return events

    # -- tags (TagResource): the function's, never part of a published version
    tags: dict[str, str] | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str] | None) -> dict[str, str] | None:
        check_tags(tags or {})
        return tags

    @field_validator("environment")
    @classmethod
    def _environment(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if key in limits.RESERVED_ENVIRONMENT:
                raise ValueError(f"{key} is a reserved environment variable and cannot be set")
            if not re.match(limits.ENV_NAME_PATTERN, key):
                raise ValueError(
                    f"environment variable name {key!r} must match {limits.ENV_NAME_PATTERN}"
                )
        size = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
        if size > limits.ENVIRONMENT_MAX_BYTES:
            raise ValueError(
                f"environment variables take {size} bytes, more than the limit of "
                f"{limits.ENVIRONMENT_MAX_BYTES} bytes"
            )
        return env


def check_tags(tags: dict[str, str]) -> None:
    """Lambda's limits on tags: at most 50, keys 1-128 and values 0-256 characters of
    letters, digits, spaces and `_.:/=+-@`, no key starting with `aws:`."""
    if len(tags) > limits.TAGS_MAX:
        raise ValueError(f"{len(tags)} tags is more than the limit of {limits.TAGS_MAX}")
    for key, value in tags.items():
        if not 1 <= len(key) <= limits.TAG_KEY_MAX:
            raise ValueError(f"tag key {key[:40]!r} must be 1-{limits.TAG_KEY_MAX} characters")
        if len(value) > limits.TAG_VALUE_MAX:
            raise ValueError(f"tag {key!r}: the value is longer than {limits.TAG_VALUE_MAX}")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r}: the prefix aws: is reserved")
        for what in (key, value):
            if not re.match(limits.TAG_PATTERN, what):
                raise ValueError(
                    f"tag {key!r}: {what!r} may hold only letters, digits, spaces and _.:/=+-@"
                )


class LayerObjectStatus(Model):
    """A layer version a function runs with, as the operator found it in the store."""

    ref: str
    object: str
    size: int = 0  # bytes, unzipped


class FunctionStatus(Model):
    state: Literal["Pending", "Active", "Failed", "Inactive"] = "Pending"
    state_reason: str | None = Field(default=None, alias="stateReason")
    code_sha256: str | None = Field(default=None, alias="codeSha256")
    last_modified: str | None = Field(default=None, alias="lastModified")
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    conditions: list[Condition] = Field(default_factory=list)
    # -- triggers: each declared trigger's state, and the function URL
    triggers: list[TriggerStatus] | None = None
    function_url: str | None = Field(default=None, alias="functionUrl")
    # -- the cluster's store: the code's .zip (spec.code.s3Key) and the layers' objects
    code_object: str | None = Field(default=None, alias="codeObject")
    layers: list[LayerObjectStatus] | None = None


class Function(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Function"] = "Function"
    metadata: ObjectMeta
    spec: FunctionSpec
    status: FunctionStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name(cls, meta: ObjectMeta) -> ObjectMeta:
        if not re.match(limits.FUNCTION_NAME_PATTERN, meta.name):
            raise ValueError(
                f"name {meta.name!r} must be 1-{limits.FUNCTION_NAME_MAX} lowercase letters, "
                "digits or '-', start with a letter and end with a letter or digit"
            )
        return meta

    @property
    def name(self) -> str:
        return self.metadata.name
