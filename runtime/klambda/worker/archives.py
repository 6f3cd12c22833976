"""Deployment packages and layers unpacked as Lambda unpacks them: a .zip's files below a
root, executable where the archive says so, a later layer's file replacing an earlier one's.

zipfile reads the archives (names, sizes, the bytes, their CRC); what it does not do is
here. `ZipFile.extract` quietly rewrites a name that would leave the root (drops `..` and a
leading `/`), where an archive that tries is refused; it writes a symbolic link as a file
holding the link's target; it writes through a link already in the tree; and it keeps no
modes, so `bootstrap`, `bin/*` and `extensions/*` would lose their executable bit.

The checks (`entry_path`, `link_stays_inside`, `file_mode`, `unzipped_size`) are pure;
`Tree` writes.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

# what Lambda runs from /var/task and /opt: executable even from an archive without Unix
# modes (made on Windows), as local mode makes them (klambda.layerstore.opt_root)
_PROGRAM_FOLDERS = ("bin", "extensions")
_PROGRAMS = ("bootstrap",)
LINK_MAX_BYTES = 4096  # PATH_MAX: a link's target is no longer
# what zipfile raises for an entry it cannot read: corrupt, truncated, a CRC that does not
# match, a compression method or an encryption it does not know
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


class ArchiveError(ValueError):
    """An archive that cannot be unpacked as it is; the message names the entry."""


def entry_path(name: str) -> str:
    """The path below the root of an archive entry (`\\` read as `/`, as zips made on
    Windows write it; `.` and empty parts dropped); ArchiveError for an absolute path or
    one with a `..` part, which would be written outside the root."""
    path = name.replace("\\", "/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts or not parts:
        raise ArchiveError(f"entry {name!r} would be written outside the root")
    return "/".join(parts)


def link_stays_inside(path: str, target: str, root: str) -> bool:
    """Whether a symbolic link at `path` (below the root) to `target` stays inside the
    root, whose absolute path is `root`. A relative target may climb (`..`) only at its
    start and no higher than the root; an absolute one must name a place below `root`,
    with no `..`. Lexical, and enough: no entry is written through a link (`Tree`), so the
    folders a link climbs out of are real, and every link it goes through stays inside."""
    if not target or "\0" in target:
        return False
    parts = target.split("/")
    if target.startswith("/"):
        names = [p for p in parts if p not in ("", ".")]
        inside = [p for p in root.split("/") if p not in ("", ".")]
        return ".." not in names and names[: len(inside)] == inside
    climbs = 0
    while climbs < len(parts) and parts[climbs] == "..":
        climbs += 1
    return ".." not in parts[climbs:] and climbs <= path.count("/")


def unix_mode(info: zipfile.ZipInfo) -> int:
    """The entry's Unix mode (type and permissions), 0 when the archive has none."""
    return info.external_attr >> 16


def is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(unix_mode(info))


def is_folder(info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or stat.S_ISDIR(unix_mode(info))


def file_mode(info: zipfile.ZipInfo, path: str) -> int:
    """A file's mode below the root: the archive's permission bits, readable by all and
    writable by none (Lambda's /var/task and /opt are read-only). An archive without Unix
    modes gives 0o444, and 0o555 to `bootstrap`, `bin/*` and `extensions/*`."""
    perms = stat.S_IMODE(unix_mode(info)) & 0o777
    if not perms:
        top, _, rest = path.partition("/")
        program = path in _PROGRAMS or (top in _PROGRAM_FOLDERS and bool(rest) and "/" not in rest)
        return 0o555 if program else 0o444
    return (perms | 0o444) & ~0o222


def unzipped_size(archive: zipfile.ZipFile) -> int:
    """Bytes the archive's files take unpacked, as its directory says (zipfile reads no
    more than that of an entry, and checks its CRC)."""
    return sum(info.file_size for info in archive.infolist() if not is_folder(info))


class Tree:
    """A folder filled from archives in order (a function's code, or its layers merged),
    whose links must stay inside `root`, where the folder's contents will be moved."""

    def __init__(self, folder: Path, root: str, reserved: frozenset[str] = frozenset()) -> None:
        self.folder = folder
        self.root = root
        self.reserved = reserved  # names the root keeps for itself
        self.links: set[str] = set()  # paths of the links written so far

    def add(self, archive: zipfile.ZipFile) -> None:
        """Write the archive's entries; a file replaces a file or link of an earlier archive.
        ArchiveError for an entry that would leave the root, or land on or below
        something of an earlier entry that it cannot replace."""
        for info in archive.infolist():
            path = entry_path(info.filename)
            if path.split("/")[0] in self.reserved:
                raise ArchiveError(f"entry {info.filename!r}: the name is the root's own")
            self._outside_links(info.filename, path)
            target = self.folder / path
            if is_folder(info):
                if path in self.links:  # a later layer's folder where a link was
                    target.unlink()
                    self.links.discard(path)
                if target.exists() and not target.is_dir():
                    raise ArchiveError(f"entry {info.filename!r} is a folder where a file is")
                self._mkdir(info.filename, target)
                continue
            self._mkdir(info.filename, target.parent)
            if target.is_dir() and not target.is_symlink():
                raise ArchiveError(f"entry {info.filename!r} is a file where a folder is")
            if target.is_symlink() or target.exists():
                target.unlink()
                self.links.discard(path)
            try:
                if is_link(info):
                    self._link(archive, info, path, target)
                    continue
                # "x": a new file, never a write through whatever might be at the name
                with archive.open(info) as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
            except _UNREADABLE as err:
                raise ArchiveError(f"entry {info.filename!r} cannot be read: {err}") from None
            target.chmod(file_mode(info, path))

    def _outside_links(self, name: str, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.links:
                raise ArchiveError(f"entry {name!r} would be written through a symbolic link")

    def _mkdir(self, name: str, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ArchiveError(f"entry {name!r} is below a file") from None

    def _link(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, at: Path) -> None:
        if info.file_size > LINK_MAX_BYTES:
            raise ArchiveError(f"entry {info.filename!r}: a symbolic link's target is too long")
        try:
            target = archive.read(info).decode()
        except UnicodeDecodeError:
            raise ArchiveError(
                f"entry {info.filename!r}: a symbolic link's target is not text"
            ) from None
        if not link_stays_inside(path, target, self.root):
            raise ArchiveError(
                f"entry {info.filename!r} is a symbolic link to {target!r}, outside the root"
            )
        os.symlink(target, at)
        self.links.add(path)
