"""Content-addressed code snapshots: the exact bytes a function version runs.

A Function's code (its `inline` files, or the files of the ConfigMap it names) is copied
into a ConfigMap whose name carries a short hash of the code, `<function>-code-<hash>`.
Lambda's promise that a published version keeps running the code it was published with
follows: a Version names its snapshot by its `codeSha256`, and nothing rewrites a
snapshot (its content is its name; the ConfigMap is also marked immutable).

`CodeSha256` is the digest local mode computes (`klambda.codestore.digest`), so a
function has the same CodeSha256 on a laptop and in a cluster.

ConfigMap keys may not contain `/`, so files in folders are stored under a derived key
and mapped back to their path by the volume's `items`; the mapping is kept on the
snapshot (annotation `klambda.io/code-files`) so that a Version can mount a snapshot it
did not write.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass

from klambda import codestore, contract

from klambda_operator import conditions, constants, names
from klambda_operator.errors import Failure

# shared with the command line, which uploads code to ConfigMaps the same way
config_map_key = contract.config_map_key


@dataclass(frozen=True)
class Snapshot:
    function: str
    sha256: str
    files: Mapping[str, bytes]  # path -> content

    @property
    def name(self) -> str:
        return names.snapshot_name(self.function, self.sha256)

    @property
    def keys(self) -> dict[str, str]:
        """ConfigMap key -> file path."""
        return {config_map_key(path): path for path in sorted(self.files)}

    def items(self) -> list[dict[str, str]]:
        """The `items` of a configMap volume that lays the files out at their paths."""
        keys = self.keys
        return [{"key": key, "path": keys[key]} for key in sorted(keys)]

    def data(self) -> tuple[dict[str, str], dict[str, str]]:
        """(data, binaryData) of the ConfigMap: UTF-8 files as text, others as base64."""
        text: dict[str, str] = {}
        binary: dict[str, str] = {}
        for key, path in self.keys.items():
            content = self.files[path]
            try:
                text[key] = content.decode("utf-8")
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(content).decode()
        return text, binary


def take(function: str, files: Mapping[str, bytes]) -> Snapshot:
    """The snapshot of `files`; Failure if there is nothing to run or it is too large."""
    if not files:
        raise Failure("CodeEmpty", "the code has no files", conditions.CODE_READY)
    size = sum(len(path) + len(content) for path, content in files.items())
    if size > constants.CONFIGMAP_MAX_BYTES:
        raise Failure(
            "CodeTooLarge",
            f"the code takes {size} bytes, more than a ConfigMap holds "
            f"({constants.CONFIGMAP_MAX_BYTES}); use spec.code.image",
            conditions.CODE_READY,
        )
    return Snapshot(function, codestore.digest(dict(files)), dict(files))


def inline_files(inline: Mapping[str, str]) -> dict[str, bytes]:
    return codestore.collect(inline=dict(inline))


# the router reads snapshots too: their layout is part of klambda.contract
config_map_files = contract.config_map_files
snapshot_files = contract.snapshot_files


def image_sha256(image: str) -> str:
    """CodeSha256 of an image function: its digest when the reference pins one (Lambda
    reports the image digest), else a digest of the reference itself."""
    _, _, digest = image.partition("@sha256:")
    if re.fullmatch(r"[0-9a-f]{64}", digest):
        return base64.b64encode(bytes.fromhex(digest)).decode()
    return codestore.digest({"image": image.encode()})
