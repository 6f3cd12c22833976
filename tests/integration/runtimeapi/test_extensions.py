"""External extensions through Lambda's Extensions API: a bash extension in the shape of
AWS's sample (register, loop on `event/next`, note each event), delivered in a layer as
`extensions/<name>` beside AWS's tutorial runtime, through a real router; and the
listener's answers to calls Lambda refuses."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession
from klambda.testing import RouterRunner, eventually

from tests.integration.runtimeapi.functions import TUTORIAL_BOOTSTRAP, TUTORIAL_FUNCTION

# AWS's sample extension in bash, reduced: register for both events, then wait for each
# event with curl in the background (so a SIGTERM would end the wait), write it down, and
# leave at SHUTDOWN
EXTENSION = """\
#!/bin/bash
set -euo pipefail

OWN_FILENAME="$(basename "$0")"
LAMBDA_EXTENSION_NAME="$OWN_FILENAME" # an external extension's name is its file's
TMPFILE="$(mktemp)"
OUT="${EXTENSION_OUT:-/dev/null}"

echo "[${LAMBDA_EXTENSION_NAME}] Registering at http://${AWS_LAMBDA_RUNTIME_API}"
HEADERS="$(mktemp)"
curl -sS -LD "$HEADERS" -XPOST \\
  "http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension/register" \\
  --header "Lambda-Extension-Name: ${LAMBDA_EXTENSION_NAME}" \\
  -d '{ "events": ["INVOKE", "SHUTDOWN"]}' > "$TMPFILE"
EXTENSION_ID=$(grep -Fi Lambda-Extension-Identifier "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
echo "[${LAMBDA_EXTENSION_NAME}] Registered: $(<"$TMPFILE")"

while true
do
  curl -sS -L -XGET "http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension/event/next" \\
    --header "Lambda-Extension-Identifier: ${EXTENSION_ID}" > "$TMPFILE" &
  PID=$!
  wait "$PID"
  EVENT_DATA=$(<"$TMPFILE")
  echo "$EVENT_DATA" >> "$OUT"
  echo "[${LAMBDA_EXTENSION_NAME}] Received event: ${EVENT_DATA}"
  if [[ $EVENT_DATA == *"SHUTDOWN"* ]]; then
    echo "[${LAMBDA_EXTENSION_NAME}] Exiting"
    exit 0
  fi
done
"""

# leaves before it registers
QUITTER = '#!/bin/bash\necho "[quitter] not today"\nexit 0\n'

# registers, then finds it cannot start
INIT_ERROR = """\
#!/bin/bash
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
ID=$(curl -sS -D - -o /dev/null -XPOST "$API/register" \\
  --header "Lambda-Extension-Name: $(basename "$0")" -d '{"events": ["INVOKE"]}' \\
  | grep -Fi Lambda-Extension-Identifier | tr -d '[:space:]' | cut -d: -f2)
curl -sS -XPOST "$API/init/error" --header "Lambda-Extension-Identifier: $ID" \\
  --header "Lambda-Extension-Function-Error-Type: Extension.ConfigMissing" \\
  -d '{"errorMessage": "no config", "errorType": "Extension.ConfigMissing"}'
sleep 30
"""

# gives up at the first call, while the handler still runs
EXIT_ERROR = """\
#!/bin/bash
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
ID=$(curl -sS -D - -o /dev/null -XPOST "$API/register" \\
  --header "Lambda-Extension-Name: $(basename "$0")" -d '{"events": ["INVOKE"]}' \\
  | grep -Fi Lambda-Extension-Identifier | tr -d '[:space:]' | cut -d: -f2)
curl -sS "$API/event/next" --header "Lambda-Extension-Identifier: $ID" > /dev/null
curl -sS -XPOST "$API/exit/error" --header "Lambda-Extension-Identifier: $ID" \\
  --header "Lambda-Extension-Function-Error-Type: Extension.GaveUp" -d '{}'
exit 1
"""
# long enough for the bash extension to ask for its next event after a call
SETTLE_S = 0.5

SLOW_FUNCTION = 'function handler () {\n  sleep 2\n  echo "{}"\n}\n'


def _layer(name: str, files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Layer",
        "metadata": {"name": name},
        "spec": {"content": {"inline": files}},
    }


def _fn(
    name: str, layers: list[str], out: Path | None = None, function: str = TUTORIAL_FUNCTION
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "runtime": "provided.al2023",
        "handler": "function.handler",
        "memoryMB": 128,
        "timeoutSeconds": 3,
        "layers": layers,
        "code": {"inline": {"bootstrap": TUTORIAL_BOOTSTRAP, "function.sh": function}},
    }
    if out is not None:
        spec["environment"] = {"EXTENSION_OUT": str(out)}
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": spec,
    }


def _write(folder: Path, out: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [
        _layer("logger", {"extensions/logger": EXTENSION}),
        _layer("quitter", {"extensions/quitter": QUITTER}),
        _layer("broken", {"extensions/broken": INIT_ERROR}),
        _fn("with-logger", ["logger:1"], out),
        _fn("with-quitter", ["quitter:1"]),
        _fn("with-broken", ["broken:1"]),
        _layer("giving-up", {"extensions/giving-up": EXIT_ERROR}),
        _fn("with-giving-up", ["giving-up:1"], function=SLOW_FUNCTION),
    ]
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def _events(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _logs(router: RouterRunner, name: str) -> str:
    with urllib.request.urlopen(f"{router.url}/klambda/v1/logs/{name}", timeout=10) as resp:
        return str(resp.read().decode())


def invoke(router: RouterRunner, name: str, payload: Any) -> tuple[dict[str, str], Any, str]:
    status, headers, body = router.invoke(name, payload, **{"X-Amz-Log-Type": "Tail"})
    assert status == 200, body
    log = base64.b64decode(headers.get("x-amz-log-result", "")).decode()
    return headers, json.loads(body), log


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("extension-out") / "events.jsonl"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, out: Path) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("extensions")
    folder = _write(tmp / "functions", out)
    with RouterRunner.up(folder, "--no-cpu-limits", workdir=tmp) as r:
        yield r


def test_each_invoke_event_carries_its_calls_request_id(router: RouterRunner, out: Path) -> None:
    ids = []
    for n in range(3):
        headers, body, _log = invoke(router, "with-logger", {"n": n})
        assert body["echo"] == {"n": n}
        ids.append(headers["x-amzn-requestid"])

    def noted() -> list[dict[str, Any]]:
        return [e for e in _events(out) if e.get("requestId") in ids]

    eventually(lambda: len(noted()) == 3, "the extension to note the three INVOKE events")
    got = noted()
    assert [e["requestId"] for e in got] == ids
    for e in got:
        assert e["eventType"] == "INVOKE"
        assert e["invokedFunctionArn"].endswith(":function:with-logger")
        assert e["deadlineMs"] > time.time() * 1000 - 60_000
        assert e["tracing"]["type"] == "X-Amzn-Trace-Id"


def test_its_lines_are_the_functions_log_lines(router: RouterRunner) -> None:
    headers, _body, _log = invoke(router, "with-logger", {"n": "log"})
    rid = headers["x-amzn-requestid"]

    def noted() -> str | None:
        text = _logs(router, "with-logger")
        mine = [x for x in text.splitlines() if x.startswith("[logger] Received") and rid in x]
        return text if mine else None

    log = eventually(noted, "the extension's line about the call in the function's log")
    assert "[logger] Registered:" in log
    assert "EXTENSION\tName: logger\tState: Ready\tEvents: [INVOKE,SHUTDOWN]" in log


def test_the_next_call_finds_its_environment_warm(router: RouterRunner) -> None:
    # the extension's part of a call ends when it asks for its next event; a call sent
    # before that rightly starts another environment, so wait a little between calls and
    # look for two in a row in the same environment, the second without an init
    pids = [invoke(router, "with-logger", {})[1]["pid"]]

    def warm_again() -> bool:
        time.sleep(SETTLE_S)
        _headers, body, log = invoke(router, "with-logger", {})
        pids.append(body["pid"])
        return pids[-1] == pids[-2] and "Init Duration" not in log

    eventually(warm_again, "a call in the last call's environment, warm", timeout=20)


def test_a_timeout_sends_shutdown_with_reason_timeout(router: RouterRunner, out: Path) -> None:
    _headers, err, log = invoke(router, "with-logger", {"mode": "sleep"})
    assert err["errorType"] == "Sandbox.Timedout"
    assert "Status: timeout" in log
    shutdown = eventually(
        lambda: [e for e in _events(out) if e["eventType"] == "SHUTDOWN"],
        "the extension to note a SHUTDOWN",
    )
    assert shutdown[-1]["shutdownReason"] == "timeout"
    assert shutdown[-1]["deadlineMs"] <= time.time() * 1000 + 2000
    assert invoke(router, "with-logger", {"n": 2})[1]["echo"] == {"n": 2}


def test_an_extension_that_exits_at_once_fails_init(router: RouterRunner) -> None:
    headers, err, log = invoke(router, "with-quitter", {})
    assert headers["x-amz-function-error"] == "Unhandled"
    assert err["errorType"] == "Extension.Crash"
    assert "quitter" in err["errorMessage"]
    assert "Status: error\tError Type: Extension.Crash" in log
    text = _logs(router, "with-quitter")
    assert "[quitter] not today" in text
    assert (
        "EXTENSION\tName: quitter\tState: Exited\tEvents: []\tError Type: Extension.Crash" in text
    )


def test_an_init_error_fails_init_naming_the_extensions_type(router: RouterRunner) -> None:
    t0 = time.perf_counter()
    headers, err, _log = invoke(router, "with-broken", {})
    assert time.perf_counter() - t0 < 10  # at once, not at the init limit
    assert headers["x-amz-function-error"] == "Unhandled"
    assert err["errorType"] == "Extension.InitError"
    assert "Extension.ConfigMissing" in err["errorMessage"]
    assert "no config" in err["errorMessage"]
    text = _logs(router, "with-broken")
    assert "State: InitError\tEvents: [INVOKE]\tError Type: Extension.ConfigMissing" in text


def test_an_exit_error_during_a_call_fails_the_call(router: RouterRunner) -> None:
    t0 = time.perf_counter()
    headers, err, log = invoke(router, "with-giving-up", {})
    assert time.perf_counter() - t0 < 2  # before the handler's answer
    assert headers["x-amz-function-error"] == "Unhandled"
    assert err["errorType"] == "Extension.ExitError"
    assert "Extension.GaveUp" in err["errorMessage"]
    assert "EXTENSION\tName: giving-up\tState: ExitError\tEvents: [INVOKE]" in log
    assert "Status: error\tError Type: Extension.ExitError" in log


def test_stopping_the_router_sends_shutdown(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    folder = _write(tmp_path / "functions", out)
    with RouterRunner.up(folder, workdir=tmp_path) as r:
        invoke(r, "with-logger", {"n": 1})
    shutdown = [e for e in _events(out) if e["eventType"] == "SHUTDOWN"]
    assert [e["shutdownReason"] for e in shutdown] == ["spindown"]


# -- the listener's answers ----------------------------------------------------------------


def test_calls_lambda_refuses_are_refused_as_lambda_refuses_them() -> None:
    from klambda.worker.extensionsapi import ExtensionsApi
    from klambda.worker.runtimeapi import RuntimeApi

    async def main() -> None:
        ext = ExtensionsApi("f", "$LATEST", "function.handler", "000000000000")
        ext.expect("known")
        api = RuntimeApi(ext)
        base = f"http://{await api.start()}/2020-01-01/extension"
        try:
            async with ClientSession() as http:

                async def call(
                    method: str, path: str, body: Any = None, **headers: str
                ) -> tuple[int, dict[str, Any], dict[str, str]]:
                    data = None if body is None else json.dumps(body)
                    async with http.request(
                        method, base + path, data=data, headers=headers
                    ) as resp:
                        return resp.status, await resp.json(), dict(resp.headers)

                status, got, _ = await call("POST", "/register", {"events": ["INVOKE"]})
                assert (status, got["errorType"]) == (403, "Extension.InvalidExtensionName")
                status, got, _ = await call(
                    "POST", "/register", {"events": ["BOGUS"]}, **{"Lambda-Extension-Name": "known"}
                )
                assert (status, got["errorType"]) == (403, "Extension.InvalidEventType")
                status, got, headers = await call(
                    "POST",
                    "/register",
                    {"events": ["INVOKE", "SHUTDOWN"]},
                    **{
                        "Lambda-Extension-Name": "known",
                        "Lambda-Extension-Accept-Feature": "accountId",
                    },
                )
                assert status == 200
                assert got == {
                    "functionName": "f",
                    "functionVersion": "$LATEST",
                    "handler": "function.handler",
                    "accountId": "000000000000",
                }
                ident = headers["Lambda-Extension-Identifier"]
                status, got, _ = await call(
                    "POST", "/register", {"events": []}, **{"Lambda-Extension-Name": "known"}
                )
                assert (status, got["errorType"]) == (403, "Extension.InvalidExtensionState")
                # an internal extension may ask for INVOKE alone
                status, got, _ = await call(
                    "POST",
                    "/register",
                    {"events": ["SHUTDOWN"]},
                    **{"Lambda-Extension-Name": "inside"},
                )
                assert (status, got["errorType"]) == (403, "Extension.InvalidEventType")
                status, got, _ = await call(
                    "POST",
                    "/register",
                    {"events": ["INVOKE"]},
                    **{"Lambda-Extension-Name": "inside"},
                )
                assert status == 200
                assert not ext.roster.all_ready()  # init waits for it to ask for an event
                status, got, _ = await call("GET", "/event/next")
                assert (status, got["errorType"]) == (403, "Extension.MissingExtensionIdentifier")
                status, got, _ = await call(
                    "GET", "/event/next", **{"Lambda-Extension-Identifier": "not-a-uuid"}
                )
                assert (status, got["errorType"]) == (403, "Extension.InvalidExtensionIdentifier")
                status, got, _ = await call(
                    "GET",
                    "/event/next",
                    **{"Lambda-Extension-Identifier": "9b1b0f0e-2a51-4b8e-8d5e-0c1f6f9b2b77"},
                )
                assert (status, got["errorType"]) == (403, "Extension.UnknownExtensionIdentifier")
                status, got, _ = await call(
                    "POST", "/init/error", {}, **{"Lambda-Extension-Identifier": ident}
                )
                assert (status, got["errorType"]) == (403, "Extension.MissingHeader")
                # the runtime's first `.next` ends registration
                waiting = asyncio.ensure_future(
                    http.get(f"http://{api.address}/2018-06-01/runtime/invocation/next")
                )
                await asyncio.wait_for(api.ready.wait(), 10)
                status, got, _ = await call(
                    "POST", "/register", {"events": ["INVOKE"]}, **{"Lambda-Extension-Name": "late"}
                )
                assert (status, got["errorType"]) == (403, "Extension.RegistrationClosed")
                waiting.cancel()
        finally:
            await api.close()

    asyncio.run(main())
