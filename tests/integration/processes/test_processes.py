"""`klambda up --processes 2`: two router processes on the same ports, and throttling as
exact as one process's. Real processes, real sockets: each call opens its own connection,
so the kernel spreads them over both processes (SO_REUSEPORT)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.testing import RouterRunner, eventually

MANIFESTS = """
apiVersion: klambda.io/v1alpha1
kind: Function
metadata:
  name: sleepy
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 30
  reservedConcurrency: 5
  code:
    inline:
      app.py: |
        import os, time
        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return {"zygote": os.getppid()}
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata:
  name: evented
spec:
  runtime: python3.11
  handler: app.handler
  retryAttempts: 0
  code:
    inline:
      app.py: |
        def handler(event, context):
            return event
"""

CALLS = 20
RESERVED = 5


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("processes")
    (tmp / "functions").mkdir()
    (tmp / "functions" / "sleepy.yaml").write_text(MANIFESTS)
    with RouterRunner.up(
        tmp / "functions", "--processes", "2", "--quiet", workdir=tmp, startup_timeout=60
    ) as r:
        eventually(lambda: len(processes(r)) == 2, "the second router process", timeout=60)
        yield r


def processes(r: RouterRunner) -> list[int]:
    assert r.state is not None
    try:
        return list(json.loads((r.state / "endpoint.json").read_text())["processes"])
    except (OSError, ValueError, KeyError):
        return []


def parent(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def rest_call(r: RouterRunner, sleep: float) -> tuple[str, int | None]:
    """One call on a connection of its own: ("ok", the router process that ran it),
    ("throttled", None) or ("error: ...", None)."""
    req = urllib.request.Request(
        f"{r.url}/2015-03-31/functions/sleepy/invocations",
        data=json.dumps({"sleep": sleep}).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return "ok", parent(json.loads(resp.read())["zygote"])
    except urllib.error.HTTPError as err:
        kind = err.headers.get("x-amzn-ErrorType")
        return (
            "throttled"
            if (err.code, kind) == (429, "TooManyRequestsException")
            else f"error: {err.code} {kind}"
        ), None
    except OSError as err:  # the process that had it was killed
        return f"error: {err}", None


def grpc_call(r: RouterRunner, sleep: float) -> tuple[str, int | None]:
    # a connection of its own: channels share the process's connections unless told not to
    with grpc.insecure_channel(
        r.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        stub = invoker_pb2_grpc.InvokerStub(channel)
        try:
            res = stub.Invoke(
                invoker_pb2.InvokeRequest(
                    function_name="sleepy", payload=json.dumps({"sleep": sleep}).encode()
                ),
                timeout=60,
            )
        except grpc.RpcError as err:
            trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
            if (
                err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
                and trailers.get("x-amzn-errortype") == "TooManyRequestsException"
            ):
                return "throttled", None
            return f"error: {err.code()}", None  # type: ignore[attr-defined]
        return "ok", parent(json.loads(res.payload)["zygote"])


def burst(
    call: Callable[[RouterRunner, float], tuple[str, int | None]],
    r: RouterRunner,
    sleep: float = 1.5,
    stagger: float = 0.0,
) -> list[tuple[str, int | None]]:
    """CALLS calls at once, each sleeping `sleep` seconds: released together, or one every
    `stagger` seconds (all of them still running at the same time)."""
    gate = threading.Barrier(CALLS)

    def one(n: int) -> tuple[str, int | None]:
        gate.wait()
        time.sleep(n * stagger)
        return call(r, sleep)

    with ThreadPoolExecutor(CALLS) as pool:
        return list(pool.map(one, range(CALLS)))


def exactly_reserved(results: list[tuple[str, int | None]]) -> set[int]:
    """Asserts 5 ran and 15 were throttled; the router processes the 5 ran on."""
    outcomes = Counter(kind for kind, _ in results)
    assert outcomes == {"ok": RESERVED, "throttled": CALLS - RESERVED}, outcomes
    return {pid for kind, pid in results if kind == "ok" and pid is not None}


CALLERS = [rest_call, grpc_call]


@pytest.mark.parametrize("call", CALLERS, ids=["rest", "grpc"])
def test_reserved_5_of_20_simultaneous(
    router: RouterRunner, call: Callable[[RouterRunner, float], tuple[str, int | None]]
) -> None:
    """Released together, the calls land on both processes (a connection each); which
    process takes the five slots is whichever reads its requests first."""
    for _round in range(3):
        assert exactly_reserved(burst(call, router)) <= set(processes(router))


@pytest.mark.parametrize("call", CALLERS, ids=["rest", "grpc"])
def test_reserved_5_of_20_running_on_both_processes(
    router: RouterRunner, call: Callable[[RouterRunner, float], tuple[str, int | None]]
) -> None:
    """Started 20 ms apart (all 20 still overlap), the five that run are spread over both
    processes, and still only five run."""
    routers = set(processes(router))
    for _round in range(8):
        ran = exactly_reserved(burst(call, router, stagger=0.02))
        assert ran <= routers
        if ran == routers:
            return
    raise AssertionError(f"the five running calls never spread over {routers}")


def test_a_process_killed_with_calls_running_leaks_no_slot(router: RouterRunner) -> None:
    before = processes(router)
    follower = before[1]
    for _attempt in range(5):
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(burst, rest_call, router, 4.0)
            time.sleep(1.5)  # the five admitted are sleeping, the throttled answered
            os.kill(follower, signal.SIGKILL)
            results = running.result()
        lost = [kind for kind, _ in results if kind.startswith("error")]
        killed = follower
        follower = eventually(
            lambda killed=killed: (
                (p := processes(router)) and len(p) == 2 and p[1] != killed and p[1]
            ),
            "the leader to start another router process in its place",
            timeout=60,
        )
        if lost:  # calls admitted on the killed process held slots when it died
            break
    assert lost, "no call was running on the killed process in 5 attempts"
    exactly_reserved(burst(rest_call, router, 0.5))
    assert "starting it again" in router.output()


def test_a_follower_s_log_records_reach_the_store(router: RouterRunner) -> None:
    """Found through the leader's log store (the query may reach either process: a
    follower passes it on)."""
    follower = processes(router)[1]
    for _ in range(200):
        status, headers, body = router.invoke("sleepy", {"sleep": 0})
        assert status == 200
        if parent(json.loads(body)["zygote"]) == follower:
            break
    else:
        raise AssertionError("200 calls, none on the follower")
    rid = headers["x-amzn-requestid"]

    def stored() -> bool:
        query = {
            "queryString": f'filter @requestId = "{rid}" | stats count(*) as n',
            "functions": ["sleepy"],
            "since": "1h",
        }
        req = urllib.request.Request(
            f"{router.url}/klambda/v1/logs/query", data=json.dumps(query).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            rows = json.loads(resp.read())["results"]
        return bool(rows) and int(rows[0][0]["value"]) >= 3  # START, END, REPORT

    eventually(stored, f"the store to hold {rid}'s records", timeout=30)


def control(r: RouterRunner, method: str, path: str, body: object) -> int:
    req = urllib.request.Request(r.url + path, data=json.dumps(body).encode(), method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def test_changes_through_the_api_hold_in_every_process(router: RouterRunner) -> None:
    """A version, an alias and a new reservation made through either process (the request
    may land on the follower, which passes it to the leader) are served by both."""
    assert control(router, "POST", "/2015-03-31/functions/sleepy/versions", {}) == 201
    alias = {"Name": "live", "FunctionVersion": "1"}
    assert control(router, "POST", "/2015-03-31/functions/sleepy/aliases", alias) == 201
    ran: set[int] = set()
    for _ in range(40):
        status, headers, body = router.invoke("sleepy:live", {"sleep": 0})
        assert status == 200, body
        assert headers["x-amz-executed-version"] == "1"
        ran.add(parent(json.loads(body)["zygote"]))
    assert ran == set(processes(router))
    reserve = {"ReservedConcurrentExecutions": 2}
    assert control(router, "PUT", "/2017-10-31/functions/sleepy/concurrency", reserve) == 200
    try:
        outcomes = Counter(kind for kind, _ in burst(rest_call, router, 1.0, stagger=0.02))
        assert outcomes == {"ok": 2, "throttled": CALLS - 2}, outcomes
    finally:
        reserve = {"ReservedConcurrentExecutions": RESERVED}
        control(router, "PUT", "/2017-10-31/functions/sleepy/concurrency", reserve)


def on_the_follower(r: RouterRunner) -> http.client.HTTPConnection:
    """A keep-alive connection the kernel gave to the follower (its requests stay there)."""
    follower = processes(r)[1]
    host, port = r.url.removeprefix("http://").split(":")
    for _ in range(200):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/2015-03-31/functions/sleepy/invocations", body=b"{}")
        answer = conn.getresponse()
        assert answer.status == 200
        if parent(json.loads(answer.read())["zygote"]) == follower:
            return conn
        conn.close()
    raise AssertionError("200 connections, none on the follower")


def test_events_sent_to_the_follower_are_accepted_there_and_run_by_the_leader(
    router: RouterRunner,
) -> None:
    """The follower answers 202 itself (the event in the leader's queue file, the leader's
    `/metrics` never sees it received) and the leader's dispatcher runs every one."""
    ran0 = router.metric("klambda_invocations_total", function="evented")
    conn = on_the_follower(router)
    sent = 20
    try:
        for n in range(sent):
            conn.request(
                "POST",
                "/2015-03-31/functions/evented/invocations",
                body=json.dumps({"n": n}).encode(),
                headers={"X-Amz-Invocation-Type": "Event"},
            )
            answer = conn.getresponse()
            assert answer.status == 202, answer.read()
            assert answer.getheader("x-amzn-RequestId")
            answer.read()
    finally:
        conn.close()
    eventually(
        lambda: router.metric("klambda_invocations_total", function="evented") - ran0 == sent,
        f"the leader to run the {sent} events",
        timeout=30,
    )
    # the leader counts the events it accepted itself: none of these
    assert router.metric("klambda_async_events_received_total", function="evented") == 0
