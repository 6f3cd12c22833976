"""Container-image functions in local mode: a user's image built FROM klambda's
Lambda-style base (scripts/images/lambda-base.sh) runs unchanged through the Docker engine,
with Lambda's timeout and memory outcomes; without an engine the function says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from klambda.testing import RouterRunner

ROOT = Path(__file__).resolve().parents[3]
APP = """\
import os, time

def handler(event, context):
    if event.get("mode") == "sleep":
        time.sleep(30)
    if event.get("mode") == "memory":
        hog = []
        while True:
            hog.append(b"x" * (8 * 1024 * 1024))
    return {"event": event, "function": context.function_name, "cwd": os.getcwd(),
            "task_root": os.environ["LAMBDA_TASK_ROOT"]}


def other(event, context):
    return {"other": True}
"""


def _fn(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": "python3.11",
            "handler": "app.handler",
            "memoryMB": 128,
            "timeoutSeconds": 3,
            "code": {"image": image},
            **extra,
        },
    }


@pytest.fixture(scope="module")
def user_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**os.environ, "PY": sys.executable}
    base = subprocess.run(
        [str(ROOT / "scripts/images/lambda-base.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env=env,
    ).stdout.strip()
    ctx = tmp_path_factory.mktemp("image")
    (ctx / "app.py").write_text(APP)
    (ctx / "Dockerfile").write_text(
        f'FROM {base}\nCOPY app.py ${{LAMBDA_TASK_ROOT}}/\nCMD ["app.handler"]\n'
    )
    ref = f"klambda-test/user-fn:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-q", "-t", ref, str(ctx)], check=True, timeout=300)
    yield ref
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


@pytest.fixture(scope="module")
def router(user_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("images")
    folder = tmp / "functions"
    folder.mkdir()
    docs = [
        _fn("img", user_image),
        _fn("img-config", user_image, imageConfig={"command": ["app.other"]}),
    ]
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    with RouterRunner.up(folder, workdir=tmp) as r:
        yield r


def _invoke(r: RouterRunner, name: str, payload: Any) -> tuple[dict[str, str], Any]:
    status, headers, body = r.invoke(name, payload)
    assert status == 200, body
    return headers, json.loads(body)


def _containers(function: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=klambda.io/function={function}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_user_image_runs_unchanged(router: RouterRunner) -> None:
    headers, body = _invoke(router, "img", {"n": 1})
    assert "x-amz-function-error" not in headers, body
    assert body == {
        "event": {"n": 1},
        "function": "img",
        "cwd": "/var/task",
        "task_root": "/var/task",
    }
    assert _invoke(router, "img-config", {})[1] == {"other": True}  # ImageConfig's CMD


def test_timeout_and_memory_in_a_container(router: RouterRunner) -> None:
    headers, err = _invoke(router, "img", {"mode": "sleep"})
    assert headers["x-amz-function-error"] == "Unhandled"
    assert err["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 3.00 seconds" in err["errorMessage"]
    _h, err = _invoke(router, "img", {"mode": "memory"})
    assert err["errorType"] == "Runtime.OutOfMemory", err
    assert _invoke(router, "img", {"n": 2})[1]["event"] == {"n": 2}
    # the timed-out and the killed environments' containers are gone; one warm one is left
    assert len(_containers("img")) == 1


def test_without_an_engine_the_function_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    docs = [_fn("img", "klambda-test/user-fn:none")]
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    # a PATH with no docker on it
    env = {"PATH": str(Path(sys.executable).parent)}
    with RouterRunner.up(folder, workdir=tmp_path, env=env) as r:
        status, _h, body = r.invoke("img", {})
    assert status >= 400
    assert "spec.code.image: images run locally through the Docker engine" in body.decode()
