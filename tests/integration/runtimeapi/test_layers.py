"""Layers in local mode: a library and a data file in two layers, applied in order (the
later one wins), on the fork path and through the Runtime API (where /opt is the layers'
own mount); `klambda layer publish`; the 250 MB limit across code and layers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from klambda.testing import RouterRunner

from tests.integration.runtimeapi.functions import ric_bootstrap

KLAMBDA = [sys.executable, "-m", "klambda.cli.main"]

# the fork path finds /opt's files beside the packages (its /opt is the merged folder)
FORK_APP = """\
import pathlib, sys
import greet

def handler(event, context):
    opt = pathlib.Path(greet.__file__).parents[1]
    return {"word": greet.WORD, "data": (opt / "data.txt").read_text().strip()}
"""
# a handler as written for Lambda: /opt/data.txt
RIC_APP = """\
import greet

def handler(event, context):
    with open("/opt/data.txt") as f:
        return {"word": greet.WORD, "data": f.read().strip()}
"""


def _fn(name: str, runtime: str, layers: list[str], files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": runtime,
            "handler": "app.handler",
            "layers": layers,
            "code": {"inline": files},
        },
    }


def _layer(name: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Layer",
        "metadata": {"name": name},
        "spec": {"content": content},
    }


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("layers")
    folder = tmp / "functions"
    (folder / "data-layer").mkdir(parents=True)
    (folder / "data-layer" / "data.txt").write_text("from data\n")
    ric = {"bootstrap": ric_bootstrap(sys.executable), "app.py": RIC_APP}
    docs = [
        _layer(
            "lib",
            {"inline": {"python/greet.py": 'WORD = "hello"\n', "data.txt": "from lib\n"}},
        ),
        _layer("data", {"path": "./data-layer"}),
        _fn("fork-layers", "python3.11", ["lib:1", "data:1"], {"app.py": FORK_APP}),
        _fn("fork-reversed", "python3.11", ["data:1", "lib:1"], {"app.py": FORK_APP}),
        _fn("ric-layers", "provided.al2023", ["lib:1", "data:1"], ric),
        _fn(
            "ric-reversed",
            "provided.al2023",
            ["arn:aws:lambda:us-east-1:000000000000:layer:data:1", "lib:1"],
            ric,
        ),
    ]
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    with RouterRunner.up(folder, workdir=tmp) as r:
        yield r


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("fork-layers", "from data"),
        ("fork-reversed", "from lib"),
        ("ric-layers", "from data"),
        ("ric-reversed", "from lib"),
    ],
)
def test_layers_in_order_the_later_wins(router: RouterRunner, name: str, data: str) -> None:
    status, _h, body = router.invoke(name, {})
    assert status == 200, body
    assert json.loads(body) == {"word": "hello", "data": data}


def test_publish_is_content_addressed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "python").mkdir(parents=True)
    (src / "python" / "m.py").write_text("X = 1\n")
    state = tmp_path / "state"

    def publish(source: Path) -> str:
        out = subprocess.run(
            [*KLAMBDA, "layer", "publish", "mylib", str(source), "--state", str(state)],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split("\t")[0]

    assert publish(src) == "mylib:1"
    assert publish(src) == "mylib:1"  # the same files: the same version
    archive = tmp_path / "v2.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("python/m.py", "X = 2\n")
    assert publish(archive) == "mylib:2"
    listed = subprocess.run(
        [*KLAMBDA, "layer", "list", "mylib", "--state", str(state)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["mylib:1", "mylib:2"]


def _zeros_zip(path: Path, megabytes: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("blob", "w") as f:
        chunk = bytes(1024 * 1024)
        for _ in range(megabytes):
            f.write(chunk)


def test_code_and_layers_over_250_mb_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    _zeros_zip(folder / "a.zip", 130)
    _zeros_zip(folder / "b.zip", 130)
    docs = [
        _layer("big-a", {"path": "./a.zip"}),
        _layer("big-b", {"path": "./b.zip"}),
        _fn("too-big", "python3.11", ["big-a:1", "big-b:1"], {"app.py": FORK_APP}),
    ]
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    out = subprocess.run(
        [*KLAMBDA, "up", str(folder), "--state", str(tmp_path / "state"), "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode != 0
    expected = (
        "Function/too-big: spec.layers: Function code combined with layers exceeds the "
        r"maximum allowed size of 262144000 bytes. The actual size is (\d+) bytes."
    )
    found = re.search(expected, out.stderr + out.stdout)
    assert found, out.stderr + out.stdout
    # the two layers' 260 MiB and the function's own few files
    assert 2 * 130 * 1024 * 1024 < int(found[1]) < 2 * 130 * 1024 * 1024 + 100_000
