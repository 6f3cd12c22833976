"""The Layer kind: libraries and data added to a function, as Lambda's layers.

A layer has immutable versions, content-addressed (publishing the same files again gives
back the version that holds them). A function names up to five versions in order; they
are extracted in that order into the environment's /opt, a later layer's file replacing an
earlier one's, and Python packages are found at /opt/python. The function's code and its
layers together stay within Lambda's 250 MB unzipped limit. Pure: no I/O here (the store
is `klambda.layerstore`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from klambda.api import limits
from klambda.api.meta import Model, ObjectMeta

_REF = re.compile(limits.LAYER_REF_PATTERN)


class LayerContent(Model):
    """Where a layer's files come from: a folder or a .zip beside the manifest (local
    mode), inline text files, or a .zip in the cluster's store (`s3Key`)."""

    path: str | None = None
    inline: dict[str, str] | None = None
    s3_key: str | None = Field(default=None, alias="s3Key", max_length=limits.S3_KEY_MAX)


class LayerSpec(Model):
    description: str = Field(default="", max_length=256)
    compatible_runtimes: list[str] = Field(
        default_factory=list, alias="compatibleRuntimes", max_length=15
    )
    content: LayerContent


class Layer(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Layer"] = "Layer"
    metadata: ObjectMeta
    spec: LayerSpec


@dataclass(frozen=True)
class LayerRef:
    name: str
    version: int


def parse_ref(ref: str) -> LayerRef:
    """`NAME:VERSION` or `arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION`; ValueError
    naming the form otherwise."""
    if not _REF.match(ref):
        raise ValueError(
            f"{ref!r} is not a layer version: give NAME:VERSION or a layer version ARN"
        )
    name, version = ref.rsplit(":", 2)[-2:]
    return LayerRef(name, int(version))


def layer_arn(region: str, account: str, name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def check_size(code_bytes: int, layer_bytes: list[int]) -> None:
    """ValueError with Lambda's message when code and layers pass the unzipped limit."""
    total = code_bytes + sum(layer_bytes)
    if total > limits.UNZIPPED_MAX_BYTES:
        raise ValueError(
            "spec.layers: Function code combined with layers exceeds the maximum allowed "
            f"size of {limits.UNZIPPED_MAX_BYTES} bytes. The actual size is {total} bytes."
        )


def merge_order(layers: list[dict[str, bytes]]) -> dict[str, bytes]:
    """The files of /opt from layers in order: a later layer's file wins a conflict."""
    merged: dict[str, bytes] = {}
    for files in layers:
        merged.update(files)
    return merged
