"""The Version kind: an immutable snapshot of a Function, numbered 1, 2, 3... per function.

Its name is `<function>.<number>`. Everything but provisioned concurrency is immutable; the
API server enforces that with CEL transition rules (see `crds/versions.yaml`), and local
mode never rewrites a version it has written.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from klambda.api import limits
from klambda.api.autoscaling import ProvisionedAutoscaling
from klambda.api.function import FunctionSpec, LayerObjectStatus
from klambda.api.meta import Condition, Model, ObjectMeta


class VersionSpec(Model):
    function: str = Field(pattern=limits.FUNCTION_NAME_PATTERN)
    version: str = Field(pattern=limits.VERSION_PATTERN)
    description: str = Field(default="", max_length=256)
    code_sha256: str = Field(alias="codeSha256", min_length=1)
    config: FunctionSpec
    provisioned_concurrency: int = Field(default=0, ge=0, alias="provisionedConcurrency")
    # Application Auto Scaling's part: provisionedConcurrency kept between min and max
    provisioned_autoscaling: ProvisionedAutoscaling | None = Field(
        default=None, alias="provisionedAutoscaling"
    )

    @model_validator(mode="after")
    def _no_triggers(self) -> VersionSpec:
        if self.config.events or self.config.function_url is not None:
            raise ValueError(
                "config.events and config.functionUrl: triggers belong to the Function or an "
                "Alias, not to a published version"
            )
        return self


class VersionStatus(Model):
    state: Literal["Pending", "Active", "Failed"] = "Pending"
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    conditions: list[Condition] = Field(default_factory=list)
    # -- the cluster's store: the code's .zip and the layers' objects (as a Function's)
    code_object: str | None = Field(default=None, alias="codeObject")
    layers: list[LayerObjectStatus] | None = None


class Version(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Version"] = "Version"
    metadata: ObjectMeta
    spec: VersionSpec
    status: VersionStatus | None = None

    @model_validator(mode="after")
    def _name_matches(self) -> Version:
        expected = f"{self.spec.function}.{self.spec.version}"
        if self.metadata.name != expected:
            raise ValueError(f"metadata.name must be {expected!r} (<function>.<version>)")
        return self

    @field_validator("metadata")
    @classmethod
    def _name(cls, meta: ObjectMeta) -> ObjectMeta:
        if not re.match(r"^[a-z][-a-z0-9]*\.[1-9][0-9]*$", meta.name):
            raise ValueError(f"name {meta.name!r} must be <function>.<version number>")
        return meta

    @property
    def number(self) -> int:
        return int(self.spec.version)
