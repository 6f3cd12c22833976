"""Names of the objects the operator creates, derived from the resources they serve.

Deterministic names are what make reconciliation idempotent: the operator finds its
children by name, never by remembering it created them. Function names are at most 48
characters (klambda.api.limits), so `<function>-v<9 digits>` stays a valid DNS label.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from klambda.contract import version_label

from klambda_operator import constants

__all__ = ["short_hash", "snapshot_name", "version_label", "workload_name"]


def workload_name(function: str, version: str) -> str:
    """The Deployment and Service of a function version: `hello-latest`, `hello-v3`."""
    if version == constants.LATEST:
        return f"{function}-{constants.LATEST_LABEL}"
    return f"{function}-v{version}"


def short_hash(code_sha256: str) -> str:
    """Ten hex digits of a CodeSha256 (base64 of a SHA-256): enough to tell snapshots apart."""
    try:
        raw = base64.b64decode(code_sha256, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:  # not a real digest (a hand-written Version): hash the text itself
        raw = hashlib.sha256(code_sha256.encode()).digest()
    return raw.hex()[:10]


def snapshot_name(function: str, code_sha256: str) -> str:
    """The content-addressed ConfigMap of a function's code: `hello-code-1a2b3c4d5e`."""
    return f"{function}-code-{short_hash(code_sha256)}"


def version_object_name(function: str, version: str) -> str:
    """The Version resource of a published version: `hello.3`."""
    return f"{function}.{version}"
