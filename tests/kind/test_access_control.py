"""Access control on the installed chart: `helm upgrade --set router.auth=true`, as a user
turns it on (the kind values leave it off), and the matrix of who gets in.

Callers reach the router's NodePort from the host. Nothing, an unknown key, a wrong secret
and a ServiceAccount token that may read but not invoke are refused with Lambda's error
shapes (403 UnrecognizedClientException, InvalidSignatureException, AccessDeniedException);
a SigV4 key of the Secret `klambda-access-keys` whose user is bound to the chart's invoker
ClusterRole, and a ServiceAccount bound to it, invoke. The same SubjectAccessReviews as
tests/integration/access, here decided by the kind cluster's API server. The release is put
back to `router.auth=false` afterwards. Calls sent all through the rollout that turned it on
are answered or refused, never reset.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import grpc
import pytest
from botocore.config import Config
from klambda.proto import invoker_pb2, invoker_pb2_grpc

from tests.integration.access.test_cluster_auth import KEYS, RBAC, refusal

from .conftest import FUNCTIONS_NAMESPACE, RELEASE_NAMESPACE, Cluster, wait_for

INVOKER = f"{RELEASE_NAMESPACE}-klambda-invoker"  # <namespace>-<release>-invoker
VIEWER = f"{RELEASE_NAMESPACE}-klambda-viewer"
ACCOUNTS = ("invoker-sa", "reader-sa")
FUNCTION = "guarded"


def _binding(name: str, role: str, subject: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": FUNCTIONS_NAMESPACE},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    }


def _objects() -> list[dict[str, Any]]:
    sa = {"kind": "ServiceAccount", "namespace": FUNCTIONS_NAMESPACE}
    return [
        # a function of its own: other tests want hello's first call to be a cold start
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": FUNCTION},
            "spec": {
                "runtime": "python3.11",
                "handler": "app.handler",
                "code": {
                    "inline": {
                        "app.py": "def handler(event, context):\n"
                        "    return {'message': f\"Hello, {event.get('name', 'world')}!\"}\n"
                    }
                },
            },
        },
        *(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
            for name in ACCOUNTS
        ),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "klambda-access-keys"},
            "data": {k: base64.b64encode(json.dumps(v).encode()).decode() for k, v in KEYS.items()},
        },
        _binding("invoker-sa-invokes", INVOKER, {**sa, "name": "invoker-sa"}),
        # reads, never invokes: the viewer role has no `invoke` verb
        _binding("reader-sa-reads", VIEWER, {**sa, "name": "reader-sa"}),
        _binding("alice-invokes", INVOKER, {"kind": "User", "name": "alice", "apiGroup": RBAC}),
    ]


@dataclass
class Rollout:
    """What calls sent all through the upgrade's rollout of the router got: HTTP statuses,
    or the connection error's name."""

    outcomes: Counter[str] = field(default_factory=Counter)


def _calls_through(cluster: Cluster, rollout: Rollout, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            status, _, _ = cluster.invoke(FUNCTION, {"name": "Ada"})
            rollout.outcomes[str(status)] += 1
        except OSError as err:  # URLError, a reset: the router's pod went under a call
            rollout.outcomes[type(getattr(err, "reason", err)).__name__] += 1
        time.sleep(0.02)


@pytest.fixture(scope="module")
def secured(cluster: Cluster) -> Iterator[tuple[Cluster, Rollout]]:
    objects = json.dumps({"apiVersion": "v1", "kind": "List", "items": _objects()})
    cluster.kubectl("get", "clusterrole", INVOKER, VIEWER)  # the chart's, by these names
    cluster.kubectl("apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-", stdin=objects)
    rollout = Rollout()
    try:
        wait_for(
            f"{FUNCTION} to answer", lambda: cluster.invoke(FUNCTION, {})[0] == 200, timeout=120
        )
        stop = threading.Event()
        caller = threading.Thread(target=_calls_through, args=(cluster, rollout, stop))
        caller.start()
        try:
            cluster.upgrade("router.auth=true")
            time.sleep(2)
        finally:
            stop.set()
            caller.join()
        yield cluster, rollout
    finally:
        cluster.upgrade("router.auth=false")
        # `helm upgrade --wait` returns once the new router pods are ready; until kube-proxy
        # drops the old ones from the NodePort a call may still reach one that asks for an
        # identity, and the next module's calls carry none
        wait_for(
            "the router to answer calls without an identity again",
            lambda: all(cluster.invoke(FUNCTION, {})[0] == 200 for _ in range(5)),
            timeout=120,
        )
        cluster.kubectl(
            "delete", "-n", FUNCTIONS_NAMESPACE, "--ignore-not-found", "-f", "-", stdin=objects
        )


def _token(cluster: Cluster, account: str) -> str:
    return cluster.kubectl(
        "create", "token", account, "-n", FUNCTIONS_NAMESPACE, "--duration=10m"
    ).strip()


def _lambda(cluster: Cluster, key: str, secret: str) -> Any:
    return boto3.client(
        "lambda", endpoint_url=cluster.http, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 0}),
    )  # fmt: skip


def _error(headers: dict[str, str]) -> str:
    return next((v for k, v in headers.items() if k.lower() == "x-amzn-errortype"), "")


def test_the_rollout_that_turned_it_on_dropped_no_connection(
    secured: tuple[Cluster, Rollout],
) -> None:
    # answered (200) by the old pod, refused (403, no credentials) by the new one; never a
    # connection reset while the old one went
    _, rollout = secured
    assert set(rollout.outcomes) == {"200", "403"}, rollout.outcomes


def test_only_callers_with_rbacs_invoke_verb_get_in(secured: tuple[Cluster, Rollout]) -> None:
    cluster, _ = secured
    invoker = {"Authorization": f"Bearer {_token(cluster, 'invoker-sa')}"}

    # a ServiceAccount bound to the invoker role, by its token (the first call may wait for
    # the router's new pod and a cold start)
    def invoked() -> bool:
        status, _, body = cluster.invoke(FUNCTION, {"name": "Ada"}, headers=invoker)
        return status == 200 and json.loads(body) == {"message": "Hello, Ada!"}

    wait_for("the invoker ServiceAccount's call", invoked, timeout=120, interval=2)

    # nothing at all, and a token the API server does not know
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        status, h, body = cluster.invoke(FUNCTION, {}, headers=headers)
        assert (status, _error(h)) == (403, "UnrecognizedClientException"), body
        assert "message" in json.loads(body)

    # a ServiceAccount that may read the function but has no invoke verb
    reader = {"Authorization": f"Bearer {_token(cluster, 'reader-sa')}"}
    status, h, body = cluster.invoke(FUNCTION, {}, headers=reader)
    assert (status, _error(h)) == (403, "AccessDeniedException"), body
    assert "reader-sa is not authorized to perform: invoke" in json.loads(body)["message"]
    got = _lambda_get(cluster, reader)
    assert got["Configuration"]["FunctionName"] == FUNCTION

    # SigV4: a key of the Secret whose user is bound invokes; a wrong secret, an unknown
    # key and a key whose user has no binding do not
    out = _lambda(cluster, "AKIDALICE", "alice-secret").invoke(
        FunctionName=FUNCTION, Payload=b'{"name": "Bo"}'
    )
    assert json.loads(out["Payload"].read()) == {"message": "Hello, Bo!"}
    wrong = _lambda(cluster, "AKIDALICE", "not-her-secret")
    assert refusal(lambda: wrong.invoke(FunctionName=FUNCTION)) == (
        403,
        "InvalidSignatureException",
    )
    unknown = _lambda(cluster, "AKIDNOBODY", "x")
    assert refusal(lambda: unknown.invoke(FunctionName=FUNCTION)) == (
        403,
        "UnrecognizedClientException",
    )
    unbound = _lambda(cluster, "AKIDBOB", "bob-secret")
    assert refusal(lambda: unbound.invoke(FunctionName=FUNCTION)) == (403, "AccessDeniedException")

    # gRPC through its NodePort: the bearer token in the metadata
    with grpc.insecure_channel(cluster.grpc) as channel:
        stub = invoker_pb2_grpc.InvokerStub(channel)
        request = invoker_pb2.InvokeRequest(function_name=FUNCTION, payload=b'{"name": "Cy"}')
        reply = stub.Invoke(request, metadata=[("authorization", invoker["Authorization"])])
        assert json.loads(reply.payload) == {"message": "Hello, Cy!"}
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(request)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(request, metadata=[("authorization", reader["Authorization"])])
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _lambda_get(cluster: Cluster, headers: dict[str, str]) -> Any:
    """GetFunction with a bearer token: what the viewer role allows."""
    request = urllib.request.Request(
        f"{cluster.http}/2015-03-31/functions/{FUNCTION}", headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())
