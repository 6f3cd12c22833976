"""Content-addressed code snapshots: what an environment's code root is made from.

A function's code (inline files or a folder) is copied once into `code/<digest>/` of the
state folder, so that a version keeps running the exact bytes it was published with even
after the files it came from change. `CodeSha256` is Lambda's field: base64 of a SHA-256.
"""

from __future__ import annotations

import base64
import compileall
import hashlib
import os
import shutil
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".git", ".klambda"}


def _files_of(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            path = Path(dirpath) / name
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return base64.b64encode(h.digest()).decode()


def collect(inline: dict[str, str] | None = None, path: Path | None = None) -> dict[str, bytes]:
    if inline is not None:
        return {name: text.encode() for name, text in inline.items()}
    if path is not None:
        return _files_of(path)
    raise ValueError("no code source")


def snapshot(files: dict[str, bytes], store: Path) -> tuple[Path, str]:
    """Write `files` under `store` once; the code root and its CodeSha256."""
    sha = digest(files)
    root = store / base64.urlsafe_b64encode(base64.b64decode(sha)).decode().rstrip("=")
    if not root.is_dir():
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        for name, data in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        tmp.mkdir(parents=True, exist_ok=True)
        # bytecode now, for this interpreter: sandboxed environments see the code read-only
        # and would otherwise compile it at every cold start
        compileall.compile_dir(tmp, quiet=2, workers=1)
        try:
            tmp.rename(root)
        except OSError:  # another process wrote the same snapshot first
            shutil.rmtree(tmp, ignore_errors=True)
    return root, sha
