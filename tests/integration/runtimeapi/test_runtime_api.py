"""Functions whose runtime speaks Lambda's Runtime API (awslambdaric, AWS's tutorial
custom runtime in bash) beside the same handler on the fork path: the same results, error
types, timeouts, memory limit and START/END/REPORT lines, through a real router."""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner

from tests.integration.runtimeapi import functions

PYTHON_WAYS = ("fork", "ric")
ALL_WAYS = ("fork", "ric", "tutorial")


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("runtimeapi")
    folder = functions.write(tmp / "functions")
    # full CPU: filling 128 MB and timing out take the same time on every path
    with RouterRunner.up(folder, "--no-cpu-limits", workdir=tmp) as r:
        yield r


def invoke(r: RouterRunner, name: str, payload: Any) -> tuple[dict[str, str], Any, str]:
    status, headers, body = r.invoke(name, payload, **{"X-Amz-Log-Type": "Tail"})
    assert status == 200, body
    log = base64.b64decode(headers.get("x-amz-log-result", "")).decode()
    return headers, json.loads(body), log


def report_shape(log: str) -> str:
    """The REPORT line with its numbers and request id blanked: what must agree."""
    line = next(x for x in log.splitlines() if x.startswith("REPORT"))
    line = re.sub(r"RequestId: \S+", "RequestId: ID", line)
    return re.sub(r"(Duration|Init Duration|Max Memory Used): [\d.]+", r"\1: N", line)


def test_results_and_context(router: RouterRunner) -> None:
    for name in PYTHON_WAYS:
        headers, body, log = invoke(router, name, {"n": 1})
        assert "x-amz-function-error" not in headers
        assert body["request_id"] == headers["x-amzn-requestid"]
        assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        assert 0 < body["remaining"] <= 3000
        assert "handling None" in log
        assert log.splitlines()[0].startswith("START RequestId:")
        assert any(line.startswith("END RequestId:") for line in log.splitlines())
    headers, body, log = invoke(router, "tutorial", {"n": 1})
    assert body["echo"] == {"n": 1}
    assert '{"n": 1}' in log  # the handler's stderr line


def test_warm_environment_is_reused(router: RouterRunner) -> None:
    for name in ALL_WAYS:
        pids = {invoke(router, name, {})[1]["pid"] for _ in range(5)}
        assert len(pids) == 1, name


def test_handler_exception_has_the_same_error_type(router: RouterRunner) -> None:
    shapes = {}
    for name in PYTHON_WAYS:
        headers, err, log = invoke(router, name, {"mode": "raise"})
        assert headers["x-amz-function-error"] == "Unhandled"
        assert err["errorType"] == "KeyError"
        assert err["errorMessage"] == "'missing'"
        assert "Status: error\tError Type: KeyError" in log
        shapes[name] = report_shape(log)
    assert shapes["fork"] == shapes["ric"]


def _fault(router: RouterRunner, mode: str) -> dict[str, tuple[dict[str, Any], str]]:
    seen = {}
    for name in ALL_WAYS:
        pid = invoke(router, name, {})[1]["pid"]
        headers, err, log = invoke(router, name, {"mode": mode})
        assert headers.get("x-amz-function-error") == "Unhandled", (name, err, log)
        seen[name] = (err, log)
        # the environment was recycled: the next call gets a new one
        assert invoke(router, name, {})[1]["pid"] != pid, name
    return seen


def test_timeout_kills_and_recycles_the_environment(router: RouterRunner) -> None:
    seen = _fault(router, "sleep")
    for name, (err, log) in seen.items():
        assert err["errorType"] == "Sandbox.Timedout", name
        assert "Task timed out after 3.00 seconds" in err["errorMessage"]
        assert "Task timed out after 3.00 seconds" in log
        assert "Duration: 3000.00 ms" in log
        assert "Status: timeout" in log
    assert len({report_shape(log) for _err, log in seen.values()}) == 1


def test_runtime_exit_is_runtime_exit_error(router: RouterRunner) -> None:
    seen = _fault(router, "exit")
    for name, (err, log) in seen.items():
        assert err["errorType"] == "Runtime.ExitError", name
        assert "Runtime exited with error: exit status 3" in err["errorMessage"], name
        assert "Status: error\tError Type: Runtime.ExitError" in log
    assert len({report_shape(log) for _err, log in seen.values()}) == 1


def test_memory_size_is_enforced_as_out_of_memory(router: RouterRunner) -> None:
    seen = _fault(router, "memory")
    for name, (err, log) in seen.items():
        assert err["errorType"] == "Runtime.OutOfMemory", (name, err)
        assert "Runtime exited with error: signal: killed" in err["errorMessage"]
        assert "Memory Size: 128 MB\tMax Memory Used: 128 MB" in log, log
        assert "Status: error\tError Type: Runtime.OutOfMemory" in log
    assert len({report_shape(log) for _err, log in seen.values()}) == 1


def test_response_too_large(router: RouterRunner) -> None:
    for name in PYTHON_WAYS:
        _h, err, _log = invoke(router, name, {"mode": "big"})
        assert err["errorType"] == "Function.ResponseSizeTooLarge", name
        assert "6291456" in err["errorMessage"]


@pytest.mark.parametrize(
    ("name", "error_type", "message"),
    [
        (
            "ric-broken",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'no_such_module_anywhere'",
        ),
        ("no-bootstrap", "Runtime.InvalidEntrypoint", "Couldn't find valid bootstrap(s)"),
    ],
)
def test_init_errors(router: RouterRunner, name: str, error_type: str, message: str) -> None:
    headers, err, log = invoke(router, name, {})
    assert headers["x-amz-function-error"] == "Unhandled"
    assert err["errorType"] == error_type
    assert message in err["errorMessage"]
    assert f"Status: error\tError Type: {error_type}" in log


def test_metrics_count_runtime_api_invocations(router: RouterRunner) -> None:
    before = router.metric("klambda_invocations_total", function="ric")
    invoke(router, "ric", {})
    assert router.metric("klambda_invocations_total", function="ric") == before + 1
    assert router.metric("klambda_cold_starts_total", function="tutorial") >= 1


def test_runtime_api_is_refused_for_unknown_request_ids(tmp_path: Path) -> None:
    # a direct check of the listener: a post about no current invocation is a 400
    import asyncio
    import urllib.error
    import urllib.request

    from klambda.worker.runtimeapi import RuntimeApi

    async def main() -> int:
        api = RuntimeApi()
        address = await api.start()
        url = f"http://{address}/2018-06-01/runtime/invocation/nope/response"

        def post() -> int:
            try:
                urllib.request.urlopen(urllib.request.Request(url, b"{}", method="POST"))
            except urllib.error.HTTPError as e:
                return e.code
            return 200

        code = await asyncio.to_thread(post)
        await api.close()
        return code

    assert asyncio.run(main()) == 400


def test_the_tutorial_example_runs_as_written(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "custom-runtime"
    with RouterRunner.up(example, workdir=tmp_path) as r:
        status, headers, body = r.invoke("tutorial", {"n": 1}, **{"X-Amz-Log-Type": "Tail"})
    assert status == 200
    assert body.decode().strip() == "Echoing request: '{\"n\": 1}'"
    log = base64.b64decode(headers["x-amz-log-result"]).decode()
    assert '{"n": 1}' in log  # the handler's line on stderr
    assert "Init Duration:" in log


def test_boto3_creates_and_invokes_a_custom_runtime(tmp_path: Path) -> None:
    import io
    import zipfile

    import boto3

    example = Path(__file__).resolve().parents[3] / "examples" / "custom-runtime" / "tutorial"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("bootstrap", "function.sh"):
            z.write(example / name, name)  # the bootstrap's mode travels in the zip
    (tmp_path / "fns").mkdir()
    with RouterRunner.up(tmp_path / "fns", workdir=tmp_path) as r:
        lam = boto3.client(
            "lambda",
            endpoint_url=r.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        created = lam.create_function(
            FunctionName="sh",
            Runtime="provided.al2023",
            Handler="function.handler",
            Role="arn:aws:iam::000000000000:role/x",
            Code={"ZipFile": buf.getvalue()},
        )
        assert created["Runtime"] == "provided.al2023"
        resp = lam.invoke(FunctionName="sh", Payload=b'{"n": 2}')
        assert "FunctionError" not in resp
        assert resp["Payload"].read().decode().strip() == "Echoing request: '{\"n\": 2}'"


def test_closing_a_listener_with_a_runtime_waiting_is_immediate() -> None:
    # an idle environment's runtime waits in `.../next`; reclaiming it must not wait for
    # that request (aiohttp's default gives handlers 60 s)
    import asyncio
    import time

    from klambda.worker.runtimeapi import RuntimeApi

    async def main() -> float:
        api = RuntimeApi()
        address = await api.start()
        waiter = await asyncio.create_subprocess_exec(
            "curl",
            "-sS",
            f"http://{address}/2018-06-01/runtime/invocation/next",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(api.ready.wait(), 10)
            t0 = time.perf_counter()
            await api.close()
            return time.perf_counter() - t0
        finally:
            waiter.kill()
            await waiter.wait()

    assert asyncio.run(main()) < 5


def _daemons(mark: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes() == f"sleep\0{mark}\0".encode():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_a_daemon_that_left_the_process_group_goes_with_its_environment(
    tmp_path: Path,
) -> None:
    # the bootstrap starts a daemon in a session of its own, then serves as the tutorial's
    mark = f"{os.getpid()}.{uuid.uuid4().int % 1000}"  # a sleep of its own to look for
    boot = functions.TUTORIAL_BOOTSTRAP.replace(
        "# Processing\n", f"# Processing\nsetsid sleep {mark} &\n", 1
    )
    doc = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "daemon"},
        "spec": {
            "runtime": "provided.al2023",
            "handler": "function.handler",
            "timeoutSeconds": 2,
            "code": {"inline": {"bootstrap": boot, "function.sh": functions.TUTORIAL_FUNCTION}},
        },
    }
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "f.yaml").write_text(json.dumps(doc))
    with RouterRunner.up(tmp_path / "fns", workdir=tmp_path) as r:
        invoke(r, "daemon", {"n": 1})
        assert len(_daemons(mark)) == 1
        # the timeout recycles the environment: the daemon does not outlive it
        _h, err, _log = invoke(r, "daemon", {"mode": "sleep"})
        assert err["errorType"] == "Sandbox.Timedout"
        assert _daemons(mark) == []
