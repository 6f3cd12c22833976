"""File systems in local mode: a folder of the state mounted at each function's
localMountPath (in the environment's own mount namespace), shared by every environment
naming the claim; the host's /mnt is left alone."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from klambda.testing import RouterRunner

from tests.integration.runtimeapi.functions import ric_bootstrap

APP = """\
import os, time

def handler(event, context):
    root = os.environ["MOUNT"]
    if event.get("write"):
        with open(os.path.join(root, event["write"]), "w") as f:
            f.write(str(os.getpid()))
    time.sleep(event.get("hold", 0))
    return {"pid": os.getpid(), "files": sorted(os.listdir(root))}
"""


def _fn(name: str, runtime: str, mount: str) -> dict[str, Any]:
    files = {"app.py": APP}
    if runtime.startswith("provided"):
        files["bootstrap"] = ric_bootstrap(sys.executable)
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": runtime,
            "handler": "app.handler",
            "timeoutSeconds": 10,
            "environment": {"MOUNT": mount},
            "fileSystemConfigs": [{"claimName": "shared", "localMountPath": mount}],
            "code": {"inline": files},
        },
    }


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("fs")
    folder = tmp / "functions"
    folder.mkdir()
    docs = [
        _fn("writer", "provided.al2023", "/mnt/klambda-test-shared"),
        _fn("reader", "provided.al2023", "/mnt/klambda-test-other"),
        _fn("forked", "python3.11", "/mnt/klambda-test-shared"),
    ]
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    with RouterRunner.up(folder, workdir=tmp) as r:
        yield r


def _call(r: RouterRunner, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    status, headers, body = r.invoke(name, payload)
    assert status == 200, body
    assert "x-amz-function-error" not in headers, body
    out: dict[str, Any] = json.loads(body)
    return out


def test_environments_see_each_others_writes(router: RouterRunner) -> None:
    # two environments of one function at once, each writing its own file
    with ThreadPoolExecutor(2) as pool:
        both = list(
            pool.map(
                lambda f: _call(router, "writer", {"write": f, "hold": 1.5}), ["a.txt", "b.txt"]
            )
        )
    assert both[0]["pid"] != both[1]["pid"]
    assert {"a.txt", "b.txt"} <= set(_call(router, "writer", {})["files"])
    # another function, the same claim at another path
    seen = _call(router, "reader", {"write": "c.txt"})
    assert {"a.txt", "b.txt", "c.txt"} <= set(seen["files"])
    assert {"c.txt"} <= set(_call(router, "writer", {})["files"])
    assert not Path("/mnt/klambda-test-shared").exists()  # the host's /mnt is untouched


def test_the_fork_path_says_why_it_cannot_mount(router: RouterRunner) -> None:
    status, _h, body = router.invoke("forked", {})
    assert status >= 400
    assert "spec.fileSystemConfigs" in body.decode()
