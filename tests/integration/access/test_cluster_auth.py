"""Cluster mode's access control against a real API server: identities from ServiceAccount
tokens (TokenReview) and SigV4 keys mapped to Kubernetes users, decisions by
SubjectAccessReview on the chart's ClusterRoles; refusals in Lambda's shapes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from klambda import contract
from klambda.contract import IDENTITY_TOKEN_ENV, worker_environment
from klambda.execution import FunctionConfig
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.testing import RouterRunner, eventually, free_port, still_running

from tests.helpers import KLAMBDA, ROOT, call_url
from tests.integration.cluster.test_cluster_router import (
    apply,
    endpoint_slice,
    function_spec,
    worker,
)
from tests.kube.controlplane import ControlPlane
from tests.netns import NetHost, network_host

RBAC = "rbac.authorization.k8s.io"
KEYS = {
    "AKIDALICE": {"secretAccessKey": "alice-secret", "username": "alice"},
    "AKIDBOB": {"secretAccessKey": "bob-secret", "username": "bob"},
    "AKIDCAROL": {"secretAccessKey": "carol-secret", "username": "carol", "groups": ["auditors"]},
    "AKIDDAVE": {"secretAccessKey": "dave-secret", "username": "dave"},
}
# hello's code: what an AWS_IAM function URL's event says of the caller, too
HELLO = """\
def handler(event, context):
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return {"from": "latest", "iam": authorizer.get("iam")}
"""


def chart_roles(plane: ControlPlane) -> dict[str, str]:
    """The chart's ClusterRoles for callers, applied; {"invoker": name, ...}."""
    out = plane.helm(
        "template", "kl", str(ROOT / "charts/klambda"), "--show-only",
        "templates/access-roles.yaml", "--kube-version", "1.34.0",
    ).stdout  # fmt: skip
    names = {}
    for doc in yaml.safe_load_all(out):
        plane.apply(doc)
        names[doc["metadata"]["name"].rsplit("-", 1)[1]] = doc["metadata"]["name"]
    return names


def bind(plane: ControlPlane, ns: str, role: str, subject: dict[str, str]) -> None:
    name = f"{subject['name']}-{role}".replace(":", "-")
    plane.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [subject],
        }
    )


@pytest.fixture
def secured(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> Iterator[tuple[RouterRunner, ControlPlane, str]]:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    apply(
        plane,
        ns,
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": "hello"},
            "spec": {**function_spec(), "functionUrl": {"authType": "AWS_IAM"}},
        },
    )
    roles = chart_roles(plane)
    for sa in ("invoker-sa", "nobody-sa"):
        plane.kubectl("create", "serviceaccount", sa, "-n", ns)
    sa = {"kind": "ServiceAccount", "name": "invoker-sa", "namespace": ns}
    bind(plane, ns, roles["invoker"], sa)
    bind(plane, ns, roles["invoker"], {"kind": "User", "name": "alice", "apiGroup": RBAC})
    bind(plane, ns, roles["viewer"], {"kind": "Group", "name": "auditors", "apiGroup": RBAC})
    plane.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "klambda-access-keys", "namespace": ns},
            "data": {k: base64.b64encode(json.dumps(v).encode()).decode() for k, v in KEYS.items()},
        }
    )
    router = RouterRunner(
        "router", "--namespace", ns, "--kubeconfig", str(plane.kubeconfig),
        "--host", "127.0.0.1", "--wait-for-worker", "3",
        workdir=tmp_path,
    )  # fmt: skip
    with (
        network_host() as host,
        worker(host, tmp_path, "$LATEST", "latest", source=HELLO) as port,
        router as r,
    ):
        apply(plane, ns, endpoint_slice("$LATEST", host.address, port))
        yield r, plane, ns


def token(plane: ControlPlane, ns: str, sa: str) -> str:
    return plane.kubectl("create", "token", sa, "-n", ns, "--duration=10m").stdout.strip()


def lam(r: RouterRunner, key: str, secret: str) -> Any:
    return boto3.client(
        "lambda", endpoint_url=r.url, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 0}),
    )  # fmt: skip


def refusal(call: Any) -> tuple[int, str]:
    """(HTTP status, Lambda's error code) of a boto3 call; (200, "") if it succeeds."""
    try:
        call()
    except ClientError as err:
        resp = err.response
        return resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Code"]
    return 200, ""


def test_callers_need_an_identity_and_rbacs_permission(
    secured: tuple[RouterRunner, ControlPlane, str],
) -> None:
    r, plane, ns = secured
    # a ServiceAccount bound to the invoker role, by its token
    bearer = {"Authorization": f"Bearer {token(plane, ns, 'invoker-sa')}"}
    eventually(lambda: r.invoke("hello", {}, **bearer)[0] == 200, "the worker serving", timeout=20)
    status, _h, body = r.invoke("hello", {}, **bearer)
    assert json.loads(body)["from"] == "latest"
    # ... which may invoke, and nothing more
    status, h, body = r.invoke("hello", {}, **{"X-Amz-Invocation-Type": "DryRun", **bearer})
    assert status == 204
    req = urllib.request.Request(f"{r.url}/2015-03-31/functions/hello", headers=bearer)
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(req, timeout=10)
    assert denied.value.code == 403
    assert denied.value.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert (
        "invoker-sa is not authorized to perform: get on functions 'hello'"
        in json.loads(denied.value.read())["message"]
    )

    # a ServiceAccount with no binding, an invalid token, nothing at all
    status, h, _ = r.invoke("hello", {}, Authorization=f"Bearer {token(plane, ns, 'nobody-sa')}")
    assert (status, h["x-amzn-errortype"]) == (403, "AccessDeniedException")
    status, h, _ = r.invoke("hello", {}, Authorization="Bearer not-a-token")
    assert (status, h["x-amzn-errortype"]) == (403, "UnrecognizedClientException")
    status, h, _ = r.invoke("hello", {})
    assert (status, h["x-amzn-errortype"]) == (403, "UnrecognizedClientException")

    # SigV4 with keys mapped to users: alice may invoke, bob nothing, carol (auditors) read
    out = lam(r, "AKIDALICE", "alice-secret").invoke(FunctionName="hello", Payload=b"{}")
    assert json.loads(out["Payload"].read())["from"] == "latest"
    assert refusal(lambda: lam(r, "AKIDALICE", "not-her-secret").invoke(FunctionName="hello")) == (
        403,
        "InvalidSignatureException",
    )
    assert refusal(lambda: lam(r, "AKIDNOBODY", "x").invoke(FunctionName="hello")) == (
        403,
        "UnrecognizedClientException",
    )
    assert refusal(lambda: lam(r, "AKIDBOB", "bob-secret").invoke(FunctionName="hello")) == (
        403,
        "AccessDeniedException",
    )
    carol = lam(r, "AKIDCAROL", "carol-secret")
    assert [f["FunctionName"] for f in carol.list_functions()["Functions"]] == ["hello"]
    assert carol.get_function(FunctionName="hello")["Configuration"]["FunctionName"] == "hello"
    assert refusal(lambda: carol.invoke(FunctionName="hello")) == (403, "AccessDeniedException")

    # gRPC: the same token in the metadata
    with grpc.insecure_channel(r.grpc_target) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        req_msg = invoker_pb2.InvokeRequest(function_name="hello", payload=b"{}")
        reply = stub.Invoke(req_msg, metadata=[("authorization", bearer["Authorization"])])
        assert json.loads(reply.payload)["from"] == "latest"
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(req_msg)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        nobody = f"Bearer {token(plane, ns, 'nobody-sa')}"
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(req_msg, metadata=[("authorization", nobody)])
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # a binding removed takes effect once the decision cache (10 s) has expired
    plane.kubectl("delete", "rolebinding", "-n", ns, f"alice-{chart_roles(plane)['invoker']}")
    eventually(
        lambda: (
            refusal(lambda: lam(r, "AKIDALICE", "alice-secret").invoke(FunctionName="hello"))
            == (403, "AccessDeniedException")
        ),
        "alice's invoke refused once unbound",
        timeout=20,
    )


def test_an_iam_function_url_takes_signed_callers_allowed_by_rbac(
    secured: tuple[RouterRunner, ControlPlane, str],
) -> None:
    r, plane, ns = secured
    url = f"{r.url}/url/hello/"
    alice = ("AKIDALICE", "alice-secret")
    eventually(lambda: call_url(url, sign=alice)[0] == 200, "hello's URL served", timeout=30)
    # alice is bound to the chart's invoker role, which has `invoke` on functions/url
    status, _h, body = call_url(url, "POST", b"{}", sign=alice)
    assert status == 200, body
    assert json.loads(body)["iam"] == {
        "accessKey": "AKIDALICE",
        "accountId": "000000000000",
        "callerId": "alice",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": "arn:aws:iam::000000000000:user/alice",
        "userId": "alice",
    }
    # dave may invoke hello (InvokeFunction) but not call its URL (InvokeFunctionUrl)
    plane.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "invoke-only", "namespace": ns},
            "rules": [
                {"apiGroups": ["klambda.io"], "resources": ["functions"], "verbs": ["invoke"]}
            ],
        }
    )
    plane.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "dave-invoke-only", "namespace": ns},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "invoke-only"},
            "subjects": [{"kind": "User", "name": "dave", "apiGroup": RBAC}],
        }
    )
    dave = lam(r, "AKIDDAVE", "dave-secret")
    assert json.loads(dave.invoke(FunctionName="hello")["Payload"].read())["from"] == "latest"
    forbidden = {"Message": "Forbidden"}
    refused = {
        "dave": call_url(url, sign=("AKIDDAVE", "dave-secret")),
        "carol (viewer)": call_url(url, sign=("AKIDCAROL", "carol-secret")),
        "bob (unbound)": call_url(url, sign=("AKIDBOB", "bob-secret")),
        "a wrong secret": call_url(url, sign=("AKIDALICE", "not-her-secret")),
        "an unknown key": call_url(url, sign=("AKIDNOBODY", "x")),
        "unsigned": call_url(url),
        "a bearer token": call_url(
            url, headers={"Authorization": f"Bearer {token(plane, ns, 'invoker-sa')}"}
        ),
    }
    assert {who: (got[0], json.loads(got[2])) for who, got in refused.items()} == {
        who: (403, forbidden) for who in refused
    }


IDENTITY_CODE = """\
import json, os
import boto3
from botocore.exceptions import ClientError

def handler(event, context):
    if not event.get("call"):
        return {"leaf": True, "key": os.environ["AWS_ACCESS_KEY_ID"][:4]}
    lam = boto3.client("lambda", endpoint_url=os.environ["ROUTER"])  # the role's credentials
    try:
        out = lam.invoke(FunctionName="hello", Payload=b"{}")
    except ClientError as err:
        return {"refused": err.response["Error"]["Code"]}
    return {"inner": json.loads(out["Payload"].read())}
"""


@contextmanager
def identity_worker(host: NetHost, tmp: Path, token: str, router_url: str) -> Iterator[int]:
    """`klambda worker` for hello, as in a pod of a function whose serviceAccountName has
    this token (the file the kubelet projects)."""
    code, token_file = tmp / f"code-{token[-8:]}", tmp / f"token-{token[-8:]}"
    code.mkdir()
    (code / "app.py").write_text(IDENTITY_CODE)
    token_file.write_text(token)
    cfg = FunctionConfig(
        "hello", "$LATEST", "app.handler", "python3.11", 256, 10, {"ROUTER": router_url},
        str(code), "",
    )  # fmt: skip
    env = {**os.environ, **worker_environment(cfg), IDENTITY_TOKEN_ENV: str(token_file)}
    port = free_port()
    log = tmp / f"worker-{port}.log"
    # two environments: the outer call holds one while the inner one runs
    argv = [*KLAMBDA, "worker", "--function", "hello", "--version", "$LATEST",
            "--host", host.address, "--port", str(port), "--max-environments", "2"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(host.wrap(argv), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        eventually(
            lambda: still_running(proc, log) and b"klambda worker:" in log.read_bytes(),
            "the worker to start",
            timeout=20,
        )
        yield port
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_function_calls_with_its_own_service_accounts_permissions(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/functions.klambda.io"
    )
    spec = {**function_spec(), "serviceAccountName": "allowed-fn"}
    apply(
        plane,
        ns,
        {"apiVersion": "klambda.io/v1alpha1", "kind": "Function",
         "metadata": {"name": "hello"}, "spec": spec},
    )  # fmt: skip
    roles = chart_roles(plane)
    for sa in ("allowed-fn", "plain-fn", "caller"):
        plane.kubectl("create", "serviceaccount", sa, "-n", ns)
    for sa in ("allowed-fn", "caller"):
        bind(plane, ns, roles["invoker"], {"kind": "ServiceAccount", "name": sa, "namespace": ns})
    caller = {"Authorization": f"Bearer {token(plane, ns, 'caller')}"}

    def fn_token(sa: str) -> str:
        return plane.kubectl(
            "create", "token", sa, "-n", ns, "--audience", "klambda", "--duration=10m"
        ).stdout.strip()

    with network_host() as host:
        router = RouterRunner(
            "router", "--namespace", ns, "--kubeconfig", str(plane.kubeconfig),
            "--host", host.gateway, "--wait-for-worker", "5",
            workdir=tmp_path,
        )  # fmt: skip
        # the router listens where the worker's network host reaches it
        router.url = f"http://{host.gateway}:{router.http_port}"
        router.grpc_target = f"{host.gateway}:{router.grpc_port}"
        with router as r:
            for sa, expect in (
                ("allowed-fn", {"inner": {"leaf": True, "key": "KLSA"}}),
                ("plain-fn", {"refused": "AccessDeniedException"}),
            ):
                with identity_worker(host, tmp_path, fn_token(sa), r.url) as port:
                    apply(plane, ns, endpoint_slice("$LATEST", host.address, port))

                    def outer() -> Any:
                        status, _h, body = r.invoke("hello", {"call": True}, **caller)
                        assert status == 200, body
                        return json.loads(body)

                    assert eventually(outer, f"{sa}'s call", timeout=30) == expect
                    # an API-server token is no session token: the audience must be klambda
                    stolen = token(plane, ns, "allowed-fn")
                    key_id, secret = contract.session_credentials(stolen)
                    client = boto3.client(
                        "lambda", endpoint_url=r.url, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        aws_session_token=stolen, config=Config(retries={"max_attempts": 0}),
                    )  # fmt: skip
                    assert refusal(lambda c=client: c.invoke(FunctionName="hello")) == (
                        403,
                        "UnrecognizedClientException",
                    )
