"""Layers in a cluster: a Layer's versions, and a function's layers as store objects.

A Layer's versions live in its status, each an immutable .zip of the store under its
digest (`layers/<sha256>.zip`). Publishing is the Layer's spec: when its content (inline
files, or a .zip at `spec.content.s3Key`) digests to a .zip no version holds, the next
version is added; the same content again gives back its version, as local mode's
`klambda layer publish` does. A function names versions (`NAME:VERSION` or the ARN);
its worker pods get their objects, in order, and unpack them into /opt.

Pure: no I/O here (the store is `klambda_operator.store`, the reconcile `reconcile`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from klambda.api import layer as api_layer

from klambda_operator.store import Stored


@dataclass(frozen=True)
class LayerObject:
    """One layer version a function runs with: its store object and unpacked size."""

    ref: str
    key: str
    unzipped: int


def with_version(
    versions: Sequence[Mapping[str, Any]], stored: Stored, description: str, created: str
) -> tuple[list[dict[str, Any]], int]:
    """The versions with `stored` published, and its number: the version that already
    holds that digest, else the next one."""
    out = [dict(v) for v in versions]
    for v in out:
        if v.get("sha256") == stored.facts.code_sha256:
            return out, int(v["version"])
    number = max((int(v.get("version") or 0) for v in out), default=0) + 1
    out.append(
        {
            "version": number,
            "sha256": stored.facts.code_sha256,
            "size": stored.facts.unzipped,
            "codeSize": stored.facts.size,
            "object": stored.key,
            "description": description,
            "created": created,
        }
    )
    return out, number


def find(
    refs: Sequence[str], layers: Mapping[str, Mapping[str, Any]]
) -> tuple[list[LayerObject], str | None]:
    """The objects of `refs` (in order) from the Layers by name; or the first problem,
    naming `spec.layers[i]`."""
    found: list[LayerObject] = []
    for i, ref in enumerate(refs):
        try:
            parsed = api_layer.parse_ref(ref)
        except ValueError as err:
            return [], f"spec.layers[{i}]: {err}"
        body = layers.get(parsed.name)
        if body is None:
            return [], f"spec.layers[{i}]: Layer {parsed.name!r} does not exist"
        status = body.get("status") or {}
        match = [
            v for v in status.get("versions") or [] if int(v.get("version") or 0) == parsed.version
        ]
        if not match or not match[0].get("object"):
            return [], (
                f"spec.layers[{i}]: Layer {parsed.name!r} has no version {parsed.version} "
                f"(latest: {status.get('latestVersion') or 'none'})"
            )
        v = match[0]
        found.append(LayerObject(ref, str(v["object"]), int(v.get("size") or 0)))
    return found, None
