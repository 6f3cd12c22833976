"""A Layer's versions and a function's layers as store objects (pure)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from klambda import codestore
from klambda_operator import layers
from klambda_operator.store import Stored, object_key


def stored(files: dict[str, bytes]) -> Stored:
    facts = codestore.zip_facts(codestore.zip_files(files))
    return Stored(object_key("layers", facts.sha256_hex), facts)


def test_new_content_is_the_next_version_and_known_content_its_own() -> None:
    one, two = stored({"python/a.py": b"A = 1\n"}), stored({"python/a.py": b"A = 2\n"})
    versions, number = layers.with_version([], one, "first", "t1")
    assert number == 1
    assert versions == [
        {
            "version": 1,
            "sha256": one.facts.code_sha256,
            "size": 6,
            "codeSize": one.facts.size,
            "object": one.key,
            "description": "first",
            "created": "t1",
        }
    ]
    versions, number = layers.with_version(versions, two, "second", "t2")
    assert number == 2
    again, number = layers.with_version(versions, one, "ignored", "t3")
    assert number == 1
    assert again == versions  # nothing changed


def test_refs_resolve_in_order_or_name_the_first_problem() -> None:
    one = stored({"python/a.py": b"A = 1\n"})
    libs: dict[str, Any] = {
        "status": {
            "latestVersion": 1,
            "versions": [{"version": 1, "object": one.key, "size": 6, "sha256": "x"}],
        }
    }
    found, problem = layers.find(
        ["libs:1", "arn:aws:lambda:us-east-1:000000000000:layer:libs:1"], {"libs": libs}
    )
    assert problem is None
    assert [(f.key, f.unzipped) for f in found] == [(one.key, 6), (one.key, 6)]
    assert layers.find(["libs:2"], {"libs": libs})[1] == (
        "spec.layers[0]: Layer 'libs' has no version 2 (latest: 1)"
    )
    assert layers.find(["libs:1", "gone:1"], {"libs": libs})[1] == (
        "spec.layers[1]: Layer 'gone' does not exist"
    )
    assert "is not a layer version" in (layers.find(["libs"], {})[1] or "")


def test_zip_facts_and_a_folder_zip_that_keeps_modes(tmp_path: Any) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "data.txt").write_bytes(b"12345")
    data = codestore.zip_tree(tmp_path)
    assert data == codestore.zip_tree(tmp_path)  # deterministic
    facts = codestore.zip_facts(data)
    assert facts.unzipped == len(b"#!/bin/sh\n") + 5
    assert facts.size == len(data)

    modes = {
        i.filename: i.external_attr >> 16 for i in zipfile.ZipFile(io.BytesIO(data)).infolist()
    }
    assert modes["bin/tool"] & 0o111
    assert not modes["data.txt"] & 0o111
    with pytest.raises(codestore.ZipError, match=r"is not a \.zip archive"):
        codestore.zip_facts(b"not a zip")
