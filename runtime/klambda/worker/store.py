"""The cluster's code store as a worker pod reads it: a function's code and layers are .zip
objects of an S3 server, fetched with a plain GET (no credentials: the bucket lets anyone
get `code/*` and `layers/*`), each checked against the digest its key holds
(klambda.contract), and unpacked (klambda.worker.archives): the code into the code root,
the layers merged in order into the opt root. A version's own pod does it before it serves
(`prepare`), a pool pod as it is specialised (`place`).

Nothing is written into a root until every object is fetched, checked and, together,
within Lambda's unzipped limit; each root is then filled in a staging folder and its
contents moved into place. The staging folder is inside the root, not beside it: a root is
the pod's emptyDir, whose parent is the image's read-only filesystem, and a rename cannot
cross filesystems. What a root holds is recorded in it (MARKER), so the same objects are
not fetched again (a worker restarted in its pod, a pool worker specialised again), and a
root holding anything but the store's objects is never written over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from klambda.api import layer, limits
from klambda.contract import OBJECT_CODE, OBJECT_LAYER, StoreObjects, parse_object_key
from klambda.execution import FunctionConfig
from klambda.worker.archives import ArchiveError, Tree, unzipped_size

MARKER = ".klambda-objects"  # JSON: the keys a root holds, their size, whether complete
STAGING = ".klambda-staging"
RESERVED = frozenset({MARKER, STAGING})
# an object is never larger than what it unpacks to, but for its headers
OBJECT_MAX_BYTES = limits.UNZIPPED_MAX_BYTES
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=30)
CHUNK = 1024 * 1024


class StoreError(Exception):
    """An object that cannot be had or used. `subject` is its key (the keys of a root, or
    "the code and layers" for their size together), `reason` says why."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


@dataclass
class _Root:
    path: Path
    keys: tuple[str, ...]
    size: int = 0  # bytes unpacked

    @property
    def subject(self) -> str:
        return ", ".join(self.keys)


async def prepare(cfg: FunctionConfig, objects: StoreObjects) -> tuple[FunctionConfig, str]:
    """A version's own worker: its code and layers in place before it serves; the
    configuration it serves (its layers' opt root) and what was done. StoreError."""
    t0 = time.perf_counter()
    code_bytes = 0 if objects.code else _folder_bytes(Path(cfg.code_root))
    fetched = await place(
        objects.url,
        objects.code,
        Path(cfg.code_root),
        objects.layers,
        Path(objects.opt_root),
        code_bytes=code_bytes,
    )
    if objects.layers:
        cfg = replace(cfg, opt_root=objects.opt_root)
    ms = (time.perf_counter() - t0) * 1000
    done = f"fetched from {objects.url} in {ms:.0f} ms" if fetched else "unpacked already"
    return cfg, f"code and layers {done}"


async def place(
    url: str,
    code: str,
    code_root: Path,
    layers: Sequence[str],
    opt_root: Path,
    *,
    code_bytes: int = 0,
) -> bool:
    """Fetch and unpack the code object `code` ("": none) into `code_root` and the layer
    objects `layers` (in order, a later one's file winning) into `opt_root`; False when
    both roots held them already. `code_bytes`: the size of code that came otherwise (a
    Specialise's files, a mounted ConfigMap), for Lambda's limit. StoreError."""
    wanted = [(code, OBJECT_CODE)] if code else []
    for key, kind in [*wanted, *((k, OBJECT_LAYER) for k in layers)]:
        try:
            parse_object_key(key, kind)
        except ValueError as err:
            raise StoreError(key, str(err)) from None
    code_at = _Root(code_root, (code,)) if code else None
    opt_at = _Root(opt_root, tuple(layers)) if layers else None
    roots = [r for r in (code_at, opt_at) if r is not None]
    todo = [r for r in roots if not _holds(r)]
    if not todo:
        return False
    try:
        for r in todo:
            _stage(r)
        fetched = await _fetch_all(url, todo)
        for r in todo:
            r.size = sum(_size(key, fetched[key]) for key in r.keys)
        try:
            layer.check_size(
                code_bytes + (code_at.size if code_at else 0), [opt_at.size] if opt_at else []
            )
        except ValueError as err:
            raise StoreError("the code and layers", str(err)) from None
        await asyncio.to_thread(_fill_all, todo, fetched)
    finally:
        for r in todo:
            with contextlib.suppress(OSError):
                _remove(r.path / STAGING)
    return True


def _holds(r: _Root) -> bool:
    """Whether the root holds its objects already; StoreError when it holds something
    that is not the store's (a folder of someone else's)."""
    try:
        marker: dict[str, Any] = json.loads((r.path / MARKER).read_text())
    except FileNotFoundError:
        others = [p.name for p in _entries(r.path) if p.name not in RESERVED]
        if others:
            raise StoreError(
                r.subject, f"{r.path} is not empty and holds nothing of the store's"
            ) from None
        return False
    except (OSError, ValueError):
        return False  # a marker half written: what the root holds is the store's, redone
    if marker.get("objects") == list(r.keys) and marker.get("complete"):
        r.size = int(marker.get("bytes", 0))
        return True
    return False


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _stage(r: _Root) -> None:
    try:
        r.path.mkdir(parents=True, exist_ok=True)
        _remove(r.path / STAGING)  # of a worker that stopped midway
        (r.path / STAGING).mkdir()
    except OSError as err:
        raise StoreError(r.subject, f"cannot write {r.path}: {err}") from None


async def _fetch_all(url: str, todo: list[_Root]) -> dict[str, Path]:
    """Every object of the roots to fill, at once, each in its root's staging folder."""
    to = {
        key: r.path / STAGING / f"{parse_object_key(key).sha256}.zip"
        for r in todo
        for key in r.keys
    }
    async with aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as session:
        jobs = [asyncio.ensure_future(_fetch(session, url, key, path)) for key, path in to.items()]
        try:
            await asyncio.gather(*jobs)
        except BaseException:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
    return to


async def _fetch(session: aiohttp.ClientSession, url: str, key: str, to: Path) -> None:
    """The object's bytes into `to`, refused unless they digest to its key."""
    want = parse_object_key(key).sha256
    digest = hashlib.sha256()
    size = 0
    try:
        async with session.get(f"{url}/{key}") as resp:
            if resp.status != 200:
                raise StoreError(key, _status(resp.status, resp.reason or ""))
            if (resp.content_length or 0) > OBJECT_MAX_BYTES:
                raise StoreError(key, _too_large(resp.content_length or 0))
            with to.open("wb") as out:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > OBJECT_MAX_BYTES:
                        raise StoreError(key, _too_large(size))
                    digest.update(chunk)
                    out.write(chunk)
    except aiohttp.ClientError as err:
        raise StoreError(key, f"cannot be fetched: {err or type(err).__name__}") from None
    except TimeoutError:
        raise StoreError(key, "cannot be fetched: the store did not answer in time") from None
    except OSError as err:
        raise StoreError(key, f"cannot be written to {to.parent}: {err}") from None
    if digest.hexdigest() != want:
        raise StoreError(
            key, f"its bytes digest to {digest.hexdigest()}, not to the key's {want}: refused"
        )


def _status(status: int, reason: str) -> str:
    if status == 404:
        return f"HTTP {status} {reason}: no such object"
    if status == 403:
        # S3 answers so for a missing object to whoever may not list the bucket
        return f"HTTP {status} {reason}: no such object, or the bucket does not let anyone get it"
    return f"HTTP {status} {reason}"


def _too_large(size: int) -> str:
    return f"is {size} bytes or more, larger than the limit of {OBJECT_MAX_BYTES} bytes"


def _size(key: str, path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            return unzipped_size(archive)
    except zipfile.BadZipFile:
        raise StoreError(key, "is not a .zip archive") from None


def _fill_all(todo: list[_Root], fetched: dict[str, Path]) -> None:
    """Every root's tree unpacked before any is moved in: an archive refused (a link
    outside, an unreadable entry) leaves every root as it was."""
    trees = []
    for r in todo:
        tree = Tree(r.path / STAGING / "tree", os.path.abspath(r.path), RESERVED)
        tree.folder.mkdir()
        for key in r.keys:
            try:
                with zipfile.ZipFile(fetched[key]) as archive:
                    tree.add(archive)
            except (ArchiveError, zipfile.BadZipFile) as err:
                raise StoreError(key, str(err)) from None
            except OSError as err:
                raise StoreError(key, f"cannot be unpacked into {r.path}: {err}") from None
        trees.append(tree.folder)
    for r, folder in zip(todo, trees, strict=True):
        try:
            _move_in(r, folder)
        except OSError as err:
            for moved in todo:  # no root half of one version's and half of another's
                with contextlib.suppress(OSError):
                    if (moved.path / MARKER).exists():
                        _clear(moved.path)
                        (moved.path / MARKER).unlink()
            raise StoreError(r.subject, f"cannot be moved into {r.path}: {err}") from None


def _move_in(r: _Root, tree: Path) -> None:
    """The root's contents replaced by the tree's: recorded first as the store's (so a
    worker stopped midway redoes it), sealed read-only, then recorded as complete."""
    _mark(r, complete=False)
    _clear(r.path)
    for entry in tree.iterdir():
        entry.rename(r.path / entry.name)
    # folders read-only as Lambda's /var/task and /opt; the root keeps its own mode (an
    # emptyDir's, owned by root with the pod's fsGroup), and its marker stays writable
    for folder, names, _files in os.walk(r.path):
        if folder == str(r.path):
            names[:] = [n for n in names if n not in RESERVED]
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    _mark(r, complete=True)


def _clear(root: Path) -> None:
    """Everything a root holds but its marker and staging folder (all of it the store's)."""
    for entry in _entries(root):
        if entry.name not in RESERVED:
            _remove(entry)


def _mark(r: _Root, complete: bool) -> None:
    tmp = r.path / STAGING / MARKER
    tmp.write_text(json.dumps({"objects": list(r.keys), "bytes": r.size, "complete": complete}))
    tmp.chmod(0o444)
    os.replace(tmp, r.path / MARKER)


def _remove(path: Path) -> None:
    """A file, link or folder of ours, made writable first (folders are sealed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.is_dir():
        return
    for folder, _names, _files in os.walk(path):  # top down: each folder before its own
        os.chmod(folder, 0o755)
    shutil.rmtree(path)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _names, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
