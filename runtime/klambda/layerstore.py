"""Layer versions in local mode's state folder (STATE/layers), and the /opt of a function.

A version is a folder `NAME/N` beside `NAME/N.json` (its digest, size, description), written
once under a temporary name and renamed into place, so two publishers never share a number
and a version never changes. Publishing files a version already holds returns that version
(content-addressed, as Lambda's CodeSha256). A function's /opt is the merge of its layers in
order, written once under `STATE/opt/<digest of the versions' digests>`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from klambda import codestore
from klambda.api import layer, limits


@dataclass(frozen=True)
class LayerVersion:
    name: str
    version: int
    sha256: str
    size: int  # bytes, unzipped
    root: Path
    description: str = ""


def read_source(source: Path) -> dict[str, bytes]:
    """The files of a layer: a folder, or a .zip (at most Lambda's unzipped limit)."""
    if source.is_dir():
        return codestore.collect(path=source)
    if source.is_file():
        return codestore.unzip(source.read_bytes(), limits.UNZIPPED_MAX_BYTES)
    raise ValueError(f"{source}: no such folder or .zip")


def versions(store: Path, name: str) -> list[LayerVersion]:
    folder = store / name
    out = []
    for meta in folder.glob("*.json") if folder.is_dir() else ():
        if not meta.stem.isdigit() or not (folder / meta.stem).is_dir():
            continue
        doc = json.loads(meta.read_text())
        out.append(
            LayerVersion(
                name,
                int(meta.stem),
                doc["sha256"],
                doc["size"],
                folder / meta.stem,
                doc.get("description", ""),
            )
        )
    return sorted(out, key=lambda v: v.version)


def publish(store: Path, name: str, files: dict[str, bytes], description: str = "") -> LayerVersion:
    """A new version of `name` holding `files`, or the existing one that holds them."""
    if not files:
        raise ValueError("a layer needs at least one file")
    sha = codestore.digest(files)
    size = sum(len(data) for data in files.values())
    for v in versions(store, name):
        if v.sha256 == sha:
            return v
    folder = store / name
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    codestore.unpack(files, tmp)
    while True:
        number = max((v.version for v in versions(store, name)), default=0) + 1
        meta = folder / f"{number}.json"
        try:
            # the number is taken by whoever creates its metadata file first
            with meta.open("x") as f:
                json.dump({"sha256": sha, "size": size, "description": description}, f)
        except FileExistsError:
            continue
        tmp.rename(folder / str(number))
        return LayerVersion(name, number, sha, size, folder / str(number), description)


def resolve(store: Path, refs: list[str]) -> list[LayerVersion]:
    """The versions a function names, in its order; ValueError naming a missing one."""
    out = []
    known: dict[str, list[LayerVersion]] = {}
    for ref in refs:
        r = layer.parse_ref(ref)
        have = known.setdefault(r.name, versions(store, r.name))
        match = [v for v in have if v.version == r.version]
        if not match:
            raise ValueError(
                f"spec.layers: layer version {r.name}:{r.version} does not exist "
                f"(publish it with `klambda layer publish {r.name} DIR|ZIP`)"
            )
        out.append(match[0])
    return out


def opt_root(store: Path, layers: list[LayerVersion]) -> Path:
    """The merged /opt of `layers` (later ones win), written once."""
    key = hashlib.sha256("\0".join(v.sha256 for v in layers).encode()).digest()
    root = store.parent / "opt" / base64.urlsafe_b64encode(key).decode().rstrip("=")
    if root.is_dir():
        return root
    merged = layer.merge_order([codestore.collect(path=v.root) for v in layers])
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    codestore.unpack(merged, tmp)
    # the store keeps bytes, not modes: /opt/bin's programs, a layer's bootstrap and its
    # extensions run
    for path in [*tmp.glob("bin/*"), *tmp.glob("extensions/*"), tmp / "bootstrap"]:
        if path.is_file():
            path.chmod(0o555)
    try:
        tmp.rename(root)
    except OSError:  # another process wrote the same /opt first
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return root
