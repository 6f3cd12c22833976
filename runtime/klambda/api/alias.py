"""The Alias kind: a named pointer to a version, optionally splitting traffic with a second.

Lambda's RoutingConfig allows at most one additional version with a weight in [0, 1]; the
model has room for exactly one, so "two additional versions" cannot even be written.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from klambda.api import limits
from klambda.api.meta import Condition, Model, ObjectMeta
from klambda.api.triggers import FunctionUrl, Trigger, TriggerStatus, check_events


class RoutingConfig(Model):
    additional_version: str = Field(alias="additionalVersion", pattern=limits.VERSION_PATTERN)
    weight: float = Field(ge=0.0, le=1.0)


class AliasSpec(Model):
    function: str = Field(pattern=limits.FUNCTION_NAME_PATTERN)
    version: str = Field(description="a version number or $LATEST")
    description: str = Field(default="", max_length=256)
    routing: RoutingConfig | None = None
    provisioned_concurrency: int = Field(default=0, ge=0, alias="provisionedConcurrency")
    # -- triggers (klambda.api.triggers): what invokes the alias (SAM's AutoPublishAlias)
    events: dict[str, Trigger] | None = None
    function_url: FunctionUrl | None = Field(default=None, alias="functionUrl")

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, events: Any) -> Any:
        check_events(events if isinstance(events, dict) else None)
        return events

    @field_validator("version")
    @classmethod
    def _version(cls, version: str) -> str:
        if version != limits.LATEST and not re.match(limits.VERSION_PATTERN, version):
            raise ValueError(f"version {version!r} must be a version number or $LATEST")
        return version

    @model_validator(mode="after")
    def _routing(self) -> AliasSpec:
        if self.routing is not None:
            if self.version == limits.LATEST:
                raise ValueError("routing needs a published version, not $LATEST")
            if self.routing.additional_version == self.version:
                raise ValueError("routing.additionalVersion must differ from version")
        return self


class AliasStatus(Model):
    state: Literal["Pending", "Active", "Failed"] = "Pending"
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    routing: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    # -- triggers: each declared trigger's state, and the function URL
    triggers: list[TriggerStatus] | None = None
    function_url: str | None = Field(default=None, alias="functionUrl")


class Alias(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Alias"] = "Alias"
    metadata: ObjectMeta
    spec: AliasSpec
    status: AliasStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name(cls, meta: ObjectMeta) -> ObjectMeta:
        _function, _, alias = meta.name.partition(".")
        if not alias or not re.match(limits.ALIAS_NAME_PATTERN, alias):
            raise ValueError(
                f"name {meta.name!r} must be <function>.<alias>, the alias 1-32 lowercase "
                "letters, digits or '-', not only digits"
            )
        return meta

    @model_validator(mode="after")
    def _name_matches(self) -> Alias:
        if not self.metadata.name.startswith(self.spec.function + "."):
            raise ValueError(f"metadata.name must start with {self.spec.function + '.'!r}")
        return self

    @property
    def alias_name(self) -> str:
        return self.metadata.name.partition(".")[2]
