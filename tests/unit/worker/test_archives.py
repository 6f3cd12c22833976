"""Archives unpacked into a folder as Lambda unpacks a deployment package and its layers:
a later archive's file wins, modes are kept, links stay inside, nothing goes through one."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from klambda.worker.archives import ArchiveError, Tree

FILE, LINK, FOLDER = 0o100000, 0o120000, 0o040000


def archive(entries: list[tuple[str, bytes, int]]) -> zipfile.ZipFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content, mode in entries:
            i = zipfile.ZipInfo(name)
            i.external_attr = mode << 16
            z.writestr(i, content)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def tree(tmp_path: Path) -> Tree:
    folder = tmp_path / "tree"
    folder.mkdir()
    return Tree(folder, "/opt", frozenset({".klambda-objects"}))


def test_layers_merge_in_order(tmp_path: Path) -> None:
    t = tree(tmp_path)
    t.add(
        archive(
            [
                ("python/", b"", FOLDER | 0o755),
                ("python/lib.py", b"first", FILE | 0o644),
                ("data/a.txt", b"a", FILE | 0o644),
                ("lib/libx.so", b"x", LINK | 0o777),
                ("bin/tool", b"#!/bin/sh\n", FILE | 0o755),
            ]
        )
    )
    t.add(
        archive(
            [
                ("python/lib.py", b"second", FILE | 0o644),
                ("lib/libx.so", b"libx.so.1", FILE | 0o644),  # a file where a link was
                ("lib/libx.so.1", b"", FILE | 0o644),
            ]
        )
    )
    f = t.folder
    assert (f / "python/lib.py").read_bytes() == b"second"
    assert (f / "data/a.txt").read_bytes() == b"a"
    assert not (f / "lib/libx.so").is_symlink()
    assert (f / "bin/tool").stat().st_mode & 0o777 == 0o555
    assert (f / "python/lib.py").stat().st_mode & 0o777 == 0o444


def test_a_link_inside_is_made(tmp_path: Path) -> None:
    t = tree(tmp_path)
    t.add(
        archive(
            [
                ("lib/libx.so.1", b"x", FILE | 0o644),
                ("lib/libx.so", b"libx.so.1", LINK | 0o777),
                ("lib64", b"lib", LINK | 0o777),
            ]
        )
    )
    assert os.readlink(t.folder / "lib/libx.so") == "libx.so.1"
    assert (t.folder / "lib64/libx.so").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("evil", b"/etc/passwd", LINK | 0o777)], "symbolic link to '/etc/passwd', outside"),
        ([("a/evil", b"../../x", LINK | 0o777)], "outside the root"),
        ([("../x", b"", FILE | 0o644)], "would be written outside the root"),
        ([("/x", b"", FILE | 0o644)], "would be written outside the root"),
        (
            [("lib", b"sub", LINK | 0o777), ("lib/x", b"", FILE | 0o644)],
            "would be written through a symbolic link",
        ),
        ([("x", b"", FILE | 0o644), ("x/y", b"", FILE | 0o644)], "is below a file"),
        ([("x/y", b"", FILE | 0o644), ("x", b"", FILE | 0o644)], "is a file where a folder is"),
        ([(".klambda-objects", b"", FILE | 0o644)], "the name is the root's own"),
    ],
)
def test_what_cannot_be_unpacked_safely_is_refused(
    tmp_path: Path, entries: list[tuple[str, bytes, int]], message: str
) -> None:
    with pytest.raises(ArchiveError, match=message):
        tree(tmp_path).add(archive(entries))
    assert not (tmp_path / "x").exists()


def test_an_entry_that_is_not_its_crc_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("data.txt", b"hello world")
    corrupt = out.getvalue().replace(b"hello world", b"hellO world", 1)
    with pytest.raises(ArchiveError, match=r"'data\.txt' cannot be read"):
        tree(tmp_path).add(zipfile.ZipFile(io.BytesIO(corrupt)))
