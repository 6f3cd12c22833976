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
from dataclasses import dataclass
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


def safe_path(name: str) -> bool:
    """A relative path that stays inside the code root."""
    return bool(name) and not name.startswith("/") and ".." not in name.split("/")


def unpack(files: dict[str, bytes], root: Path) -> None:
    """Write `files` into the empty folder `root`, read-only (a function's code is, as
    Lambda's /var/task); ValueError naming a path that would leave it."""
    bad = [name for name in files if not safe_path(name)]
    if bad:
        raise ValueError(f"file name {bad[0]!r} must be a relative path inside the code")
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o444)
    mine = os.getuid()
    for dirpath, _dirnames, _files in os.walk(root):
        # a pool pod's code root is its emptyDir volume, owned by root (group fsGroup):
        # its mode stays the volume's; the folders written here and every file are read-only
        if Path(dirpath).stat().st_uid == mine or mine == 0:
            Path(dirpath).chmod(0o555)


class ZipError(ValueError):
    """An upload that is not a usable .zip; the message says why."""


def unzip(data: bytes, max_bytes: int) -> dict[str, bytes]:
    """The files of a .zip (Lambda's deployment package), at most `max_bytes` unpacked.

    Entries that would land outside the code root (absolute paths, `..`) are refused, not
    skipped, and folders are implied by their files.
    """
    import io
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ZipError("is not a .zip archive") from None
    files: dict[str, bytes] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/")
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or not name:
                raise ZipError(f"entry {info.filename!r} would be written outside the code root")
            total += info.file_size
            if total > max_bytes:
                raise ZipError(f"unpacks to more than {max_bytes} bytes")
            files[name] = archive.read(info)
    if not files:
        raise ZipError("holds no files")
    return files


def zip_files(files: dict[str, bytes]) -> bytes:
    """A .zip of `files` (the command line sends a folder as one), deterministic."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name], zipfile.ZIP_DEFLATED)
    return out.getvalue()


@dataclass(frozen=True)
class ZipFacts:
    """What the cluster's store knows of a .zip: its digest, its size and what it unpacks
    to (the 250 MB limit is of that)."""

    sha256_hex: str  # of the .zip's bytes: its key in the store
    size: int
    unzipped: int

    @property
    def code_sha256(self) -> str:
        """Lambda's CodeSha256 of a .zip: base64 of the SHA-256 of its bytes."""
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()


def zip_facts(data: bytes) -> ZipFacts:
    """The facts of a .zip; ZipError when it is none, or has an entry outside its root."""
    import io
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ZipError("is not a .zip archive") from None
    with archive:
        infos = archive.infolist()
    for info in infos:
        if not safe_path(info.filename.replace("\\", "/").rstrip("/")) and not info.is_dir():
            raise ZipError(f"entry {info.filename!r} would be written outside its root")
    unzipped = sum(i.file_size for i in infos if not i.is_dir())
    return ZipFacts(hashlib.sha256(data).hexdigest(), len(data), unzipped)


def zip_tree(root: Path) -> bytes:
    """A .zip of a folder (as `_files_of` reads it), deterministic, with each file's mode
    bits kept: a layer's `bin/` tools and `extensions/` stay executable."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(_files_of(root).items()):
            mode = (root / name).stat().st_mode & 0o777
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | (mode | 0o444)) << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return out.getvalue()
