"""Response streaming in cluster mode: a RESPONSE_STREAM function URL and
InvokeWithResponseStream served by a real `klambda worker` process on the test network
host (Worker.InvokeStream) deliver the first chunk while the handler is still sleeping,
as local mode does.

The handler runs sandboxed in the worker (its own uid and a private /tmp, as a worker pod
run as root does), out of reach of the test's files, so it tells when it woke up in its
last chunk: the wall clock, which the host's namespaces share. The first chunk must reach
the client before that moment, however slowly a loaded machine runs either side."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

from klambda.testing import eventually

from tests.integration.cluster.test_cluster_router import (
    apply,
    cluster_router,
    endpoint_slice,
    function_spec,
    worker,
)
from tests.integration.triggers.test_function_urls import lam
from tests.kube.controlplane import ControlPlane
from tests.netns import network_host

STREAM = """\
import time
def handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("run") or event.get("run", "x")
    yield {"statusCode": 200, "headers": {"Content-Type": "text/plain"}}
    yield "first\\n"
    time.sleep(0 if name == "warm" else 2)
    yield f"second {time.time()!r}\\n"
"""


def woke_at(chunk: bytes) -> float:
    """When the handler woke up and wrote its last chunk, `second TIME`."""
    word, _, at = chunk.decode().strip().partition(" ")
    assert word == "second", chunk
    return float(at)


def test_streaming_through_a_worker_pod(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(Path(__file__).parents[3] / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/functions.klambda.io",
    )  # fmt: skip
    spec = {
        **function_spec(),
        "timeoutSeconds": 10,
        "code": {"inline": {"app.py": STREAM}},
        "functionUrl": {"invokeMode": "RESPONSE_STREAM"},
    }
    fn = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": "hello"}}
    apply(plane, ns, {**fn, "spec": spec})
    with (
        network_host() as host,
        worker(host, tmp_path, "$LATEST", "x", source=STREAM) as port,
        cluster_router(plane, ns, tmp_path) as r,
    ):
        apply(plane, ns, endpoint_slice("$LATEST", host.address, port))
        eventually(lambda: r.invoke("hello", {"run": "warm"})[0] == 200, "hello served")

        conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
        conn.request("GET", "/url/hello/?run=url")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain"
        assert resp.read1() == b"first\n"
        got_first = time.time()
        # the handler, in the worker's environment, was still asleep then
        assert got_first < woke_at(resp.read())
        conn.close()

        out = lam(r).invoke_with_response_stream(
            FunctionName="hello", Payload=json.dumps({"run": "boto3"}).encode()
        )
        assert out["StatusCode"] == 200
        events = iter(out["EventStream"])
        # the raw stream, as Lambda sends it: the HTTP prelude, eight NULs, the body
        first = next(events)["PayloadChunk"]["Payload"]
        got_first = time.time()
        assert first.startswith(b'{"statusCode":200')
        assert first.endswith(b"\x00" * 8 + b"first\n")
        second, complete = list(events)
        assert complete == {"InvokeComplete": {}}
        assert got_first < woke_at(second["PayloadChunk"]["Payload"])  # still asleep
