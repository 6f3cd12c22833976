"""`helm install` of the chart into a real API server, then what each ServiceAccount may do.

The control plane (tests/kube) has no kubelet: pods stay Pending, but the API server admits or
refuses every object (schemas, Pod Security admission, ValidatingAdmissionPolicies, RBAC),
and the replica-set controller creates the operator's and router's pods through Pod
Security admission. The chart is installed with the kind and full monitoring values into a
namespace that enforces the "restricted" Pod Security Standard, with a second namespace for
functions. RBAC is checked with tokens minted for the chart's ServiceAccounts.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from klambda import contract
from klambda.testing import eventually
from lightkube import ApiError, Client, KubeConfig
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from tests.e2e.helm.chart import CHART, ROOT, Access, mismatches
from tests.kube.controlplane import ControlPlane, ControlPlaneError

from .conftest import FN_SA, Release, create_namespace

pytestmark = pytest.mark.kube


def stored(release: Release, doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc["metadata"]
    ns = ["-n", meta["namespace"]] if "namespace" in meta else []
    kind = f"{doc['kind'].lower()}.{doc['apiVersion'].split('/')[0]}"
    if "/" not in doc["apiVersion"]:
        kind = doc["kind"].lower()
    result: dict[str, Any] = release.plane.get_json(kind, meta["name"], *ns)
    return result


def test_every_object_is_stored_as_rendered(release: Release) -> None:
    kinds = {d["kind"] for d in release.manifest}
    assert kinds >= {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "NetworkPolicy",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "Ingress",
        "HTTPRoute",
    }, "the monitoring and Gateway APIs and admission policies are served: nothing left out"
    for doc in release.manifest:
        obj = stored(release, doc)
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
        if doc["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "HTTPRoute"):
            # the CRDs prune what they do not declare: a misspelt field would vanish here
            assert obj["spec"] == doc["spec"], doc["kind"]
        if doc["kind"] == "Ingress":  # the API server's own schema and validation
            assert obj["spec"] == doc["spec"]
            paths = obj["spec"]["rules"][0]["http"]["paths"]
            assert [p["path"] for p in paths] == ["/http", "/url"]
    router = next(d for d in release.manifest if d["metadata"]["name"] == "kl-klambda-router")
    service = stored(release, {**router, "kind": "Service", "apiVersion": "v1"})
    assert {p["name"]: p["nodePort"] for p in service["spec"]["ports"]} == {
        "http": 30080,
        "grpc": 30051,
    }


def test_pods_are_admitted_under_the_restricted_pod_security_standard(release: Release) -> None:
    assert "PodSecurity" not in release.install_output

    def created() -> set[str]:
        pods = release.plane.get_json("pods", "-n", release.namespace)["items"]
        return {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}

    try:
        eventually(lambda: {"operator", "router"} <= created(), "the operator and router pods")
    except AssertionError as err:
        events = release.plane.kubectl("get", "events", "-n", release.namespace).stdout
        pytest.fail(f"{err}; pods: {created()}; events:\n{events}")


def test_operator_may_do_its_job(release: Release) -> None:
    fns = release.functions
    expect: dict[Access, bool] = {}
    for ns in ("", fns):
        for verb in ("get", "list", "watch", "patch"):
            for res in ("functions", "versions", "aliases"):
                expect[Access(verb, res, "klambda.io", ns)] = True
                expect[Access("update", res, "klambda.io", ns)] = False
        for verb in ("get", "patch"):
            for res in ("functions", "versions", "aliases"):
                expect[Access(verb, res, "klambda.io", ns, "status")] = True
        # DatabaseProxies: read, their state written; their children are owned by them
        for verb in ("get", "list", "watch"):
            expect[Access(verb, "databaseproxies", "klambda.io", ns)] = True
        for verb in ("get", "patch"):
            expect[Access(verb, "databaseproxies", "klambda.io", ns, "status")] = True
        for verb in ("create", "update", "patch", "delete"):
            expect[Access(verb, "databaseproxies", "klambda.io", ns)] = False
        for verb in ("create", "get", "list", "watch", "patch"):
            expect[Access(verb, "deployments", "apps", ns)] = True
            expect[Access(verb, "services", "", ns)] = True
            expect[Access(verb, "configmaps", "", ns)] = True
        expect[Access("delete", "configmaps", "", ns)] = True
        # specialised pool pods: resized, deleted when idle (the admission policy allows
        # nothing else)
        for verb in ("get", "list", "watch", "delete"):
            expect[Access(verb, "pods", "", ns)] = True
        expect[Access("patch", "pods", "", ns, "resize")] = True
        # an unused warm pool's Deployment and Service (the admission policy allows nothing
        # else: test_operator_deletes_only_pool_workloads)
        expect[Access("delete", "deployments", "apps", ns)] = True
        expect[Access("delete", "services", "", ns)] = True
        expect[Access("create", "events", "", ns)] = True
        expect[Access("patch", "events", "", ns)] = False
    expect[Access("list", "namespaces")] = False
    for verb in ("get", "list", "watch"):
        expect[Access(verb, "customresourcedefinitions", "apiextensions.k8s.io")] = True
    kubeconfig = release.sa_kubeconfig("kl-klambda-operator")
    assert not mismatches(release.plane, kubeconfig, expect)


def test_operator_may_do_nothing_else(release: Release) -> None:
    fns = release.functions
    expect = {
        q: False
        for ns in ("", fns, release.namespace)
        for q in (
            Access("get", "secrets", "", ns),
            Access("list", "secrets", "", ns),
            Access("create", "pods", "", ns),
            Access("create", "pods", "", ns, "exec"),
            Access("create", "serviceaccounts", "", ns, "token"),
            Access("create", "serviceaccounts", "", ns),
            Access("create", "functions", "klambda.io", ns),
            Access("delete", "functions", "klambda.io", ns),
            Access("create", "roles", "rbac.authorization.k8s.io", ns),
            Access("create", "rolebindings", "rbac.authorization.k8s.io", ns),
            Access("create", "networkpolicies", "networking.k8s.io", ns),
            Access("update", "deployments", "apps", ns),
            Access("create", "statefulsets", "apps", ns),
        )
    }
    expect[Access("create", "clusterroles", "rbac.authorization.k8s.io")] = False
    expect[Access("escalate", "clusterroles", "rbac.authorization.k8s.io")] = False
    expect[Access("impersonate", "serviceaccounts")] = False
    expect[Access("delete", "namespaces")] = False
    expect[Access("create", "customresourcedefinitions", "apiextensions.k8s.io")] = False
    expect[Access("create", "validatingadmissionpolicies", "admissionregistration.k8s.io")] = False
    kubeconfig = release.sa_kubeconfig("kl-klambda-operator")
    assert not mismatches(release.plane, kubeconfig, expect)
    denied = release.as_sa("kl-klambda-operator", "get", "secrets", "-n", fns)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr


def worker_deployment(name: str, pod: dict[str, Any]) -> str:
    labels = {"klambda.io/function": name}
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "worker", "image": "klambda/runtime:0.1.0"}],
                        **pod,
                    },
                },
            },
        }
    )


@pytest.mark.parametrize(
    ("pod", "refusal"),
    [
        ({"serviceAccountName": FN_SA, "automountServiceAccountToken": False}, None),
        ({"automountServiceAccountToken": False}, "worker pods run as the ServiceAccount"),
        ({"serviceAccountName": "default", "automountServiceAccountToken": False}, "run as the"),
        ({"serviceAccountName": FN_SA}, "automountServiceAccountToken false"),
        (
            {"serviceAccountName": FN_SA, "automountServiceAccountToken": False, "hostPID": True},
            "may not use the node's",
        ),
        (
            {
                "serviceAccountName": FN_SA,
                "automountServiceAccountToken": False,
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            },
            "hostPath",
        ),
    ],
    ids=["worker", "default-sa", "named-default", "token", "host-pid", "host-path"],
)
def test_operator_creates_only_worker_deployments(
    release: Release, pod: dict[str, Any], refusal: str | None
) -> None:
    """RBAC lets `create deployments` run a pod as any ServiceAccount; the admission
    policy keeps the operator's to the function pods' one, without a token."""
    kubeconfig = release.sa_kubeconfig("kl-klambda-operator")
    out = release.plane.kubectl(
        "create", "-n", release.functions, "--dry-run=server", "-f", "-", "-o", "name",
        kubeconfig=kubeconfig, input=worker_deployment("hello-latest", pod), check=False,
    )  # fmt: skip
    if refusal is None:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode != 0
        assert "ValidatingAdmissionPolicy" in out.stderr
        assert refusal in out.stderr


def test_router_may_read_the_registry_and_report_demand(release: Release) -> None:
    """In the namespace it serves, and nowhere else."""
    fns = release.functions
    expect: dict[Access, bool] = {}
    for ns in ("", fns, release.namespace):
        served = ns == fns
        for verb in ("get", "list", "watch"):
            for res in ("functions", "versions", "aliases"):
                expect[Access(verb, res, "klambda.io", ns)] = served
            expect[Access(verb, "endpointslices", "discovery.k8s.io", ns)] = served
            # the event source mappings' sources, polled by the Lease's holder
            for res in ("queues", "streams", "eventsourcemappings"):
                expect[Access(verb, res, "klambda.io", ns)] = served
            # the database proxies, whose address listed functions get
            expect[Access(verb, "databaseproxies", "klambda.io", ns)] = served
        # which writes each mapping's state, and changes nothing else of it
        expect[Access("patch", "eventsourcemappings", "klambda.io", ns, "status")] = served
        expect[Access("patch", "eventsourcemappings", "klambda.io", ns)] = False
        expect[Access("create", "queues", "klambda.io", ns)] = False
        expect[Access("patch", "functions", "klambda.io", ns)] = served
        expect[Access("patch", "versions", "klambda.io", ns)] = served
        # provisioned autoscaling (the admission policy narrows it to provisionedConcurrency)
        expect[Access("patch", "aliases", "klambda.io", ns)] = served
        # cold starts from the warm pool: code snapshots, and the claim of a pool pod
        expect[Access("get", "configmaps", "", ns)] = served
        expect[Access("patch", "pods", "", ns)] = served
        # the schedules' Lease, and no other
        lease = contract.SCHEDULE_LEASE
        expect[Access("create", "leases", "coordination.k8s.io", ns)] = served
        expect[Access("get", "leases", "coordination.k8s.io", ns, name=lease)] = served
        expect[Access("update", "leases", "coordination.k8s.io", ns, name=lease)] = served
        for q in (
            Access("get", "leases", "coordination.k8s.io", ns, name="kube-scheduler"),
            Access("update", "leases", "coordination.k8s.io", ns, name="kube-scheduler"),
            Access("delete", "leases", "coordination.k8s.io", ns, name=lease),
            Access("create", "functions", "klambda.io", ns),
            Access("delete", "functions", "klambda.io", ns),
            Access("update", "functions", "klambda.io", ns),
            Access("patch", "functions", "klambda.io", ns, "status"),
            Access("get", "secrets", "", ns),
            Access("list", "configmaps", "", ns),
            Access("list", "pods", "", ns),
            Access("delete", "pods", "", ns),
            Access("patch", "pods", "", ns, "status"),
            Access("patch", "pods", "", ns, "resize"),
            Access("create", "deployments", "apps", ns),
            Access("patch", "endpointslices", "discovery.k8s.io", ns),
            Access("patch", "databaseproxies", "klambda.io", ns),
            Access("patch", "databaseproxies", "klambda.io", ns, "status"),
        ):
            expect[q] = False
    # who callers are and what they may do: the API server answers (--auth)
    expect[Access("create", "tokenreviews", "authentication.k8s.io")] = True
    expect[Access("create", "subjectaccessreviews", "authorization.k8s.io")] = True
    kubeconfig = release.sa_kubeconfig("kl-klambda-router")
    assert not mismatches(release.plane, kubeconfig, expect)


def test_router_may_change_only_the_demand_annotations(release: Release) -> None:
    fns = release.functions
    release.plane.kubectl("apply", "-n", fns, "-f", str(ROOT / "examples/functions/hello.yaml"))
    router = "kl-klambda-router"

    def as_router(*args: str) -> Any:
        return release.as_sa(router, *args, "-n", fns)

    ok = as_router("annotate", "function", "hello", "klambda.io/demand=3", "--overwrite")
    assert ok.returncode == 0, ok.stderr
    ok = as_router("annotate", "function", "hello", "klambda.io/last-invoked=2026-01-01T00:00:00Z")
    assert ok.returncode == 0, ok.stderr
    spec = '{"spec": {"memoryMB": 512}}'
    refused = {
        "spec": as_router("patch", "function", "hello", "--type=merge", "-p", spec),
        "annotation": as_router("annotate", "function", "hello", "team=x"),
        "label": as_router("label", "function", "hello", "x=y"),
    }
    for what, out in refused.items():
        assert out.returncode != 0, what
        assert "ValidatingAdmissionPolicy" in out.stderr, (what, out.stderr)
    fn = release.plane.get_json("function", "hello", "-n", fns)
    assert fn["spec"]["memoryMB"] == 128
    assert fn["metadata"]["annotations"]["klambda.io/demand"] == "3"
    assert "team" not in fn["metadata"]["annotations"]
    # an admin is not bound by the router's policy
    release.plane.kubectl("annotate", "-n", fns, "function", "hello", "team=x")


def test_router_may_set_provisioned_concurrency_only_where_autoscaling_asks(
    release: Release,
) -> None:
    fns = release.functions
    release.plane.kubectl("apply", "-n", fns, "-f", str(ROOT / "examples/functions/hello.yaml"))
    alias = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": "hello.scaled"},
        "spec": {"function": "hello", "version": "$LATEST"},
    }
    release.plane.kubectl("apply", "-n", fns, "-f", "-", input=json.dumps(alias))

    def as_router(*args: str) -> Any:
        return release.as_sa("kl-klambda-router", *args, "-n", fns)

    count = '{"spec": {"provisionedConcurrency": 2}}'
    refused = as_router("patch", "alias", "hello.scaled", "--type=merge", "-p", count)
    assert refused.returncode != 0
    assert "ValidatingAdmissionPolicy" in refused.stderr, refused.stderr
    policy = {"provisionedAutoscaling": {"minCapacity": 1, "maxCapacity": 4}}
    release.plane.kubectl(
        "patch", "-n", fns, "alias", "hello.scaled", "--type=merge",
        "-p", json.dumps({"spec": policy}),
    )  # fmt: skip
    ok = as_router("patch", "alias", "hello.scaled", "--type=merge", "-p", count)
    assert ok.returncode == 0, ok.stderr
    other = '{"spec": {"description": "x", "provisionedConcurrency": 3}}'
    refused = as_router("patch", "alias", "hello.scaled", "--type=merge", "-p", other)
    assert refused.returncode != 0
    got = release.plane.get_json("alias", "hello.scaled", "-n", fns)
    assert got["spec"]["provisionedConcurrency"] == 2
    assert got["spec"].get("description", "") == ""


def test_function_pods_have_no_api_access(release: Release) -> None:
    for ns in (release.functions,):
        sa = release.plane.get_json("serviceaccount", FN_SA, "-n", ns)
        assert sa["automountServiceAccountToken"] is False
        bindings = release.plane.get_json("rolebindings,clusterrolebindings", "-A")["items"]
        subjects = [s for b in bindings for s in b.get("subjects") or [] if s.get("name") == FN_SA]
        assert not subjects
        questions = [
            Access(verb, res, group, where)
            for where in ("", ns)
            for verb, res, group in (
                ("get", "functions", "klambda.io"),
                ("list", "functions", "klambda.io"),
                ("get", "secrets", ""),
                ("get", "configmaps", ""),
                ("list", "pods", ""),
                ("create", "pods", ""),
                ("list", "endpointslices", "discovery.k8s.io"),
                ("create", "events", ""),
                ("list", "namespaces", ""),
            )
        ]
        kubeconfig = release.sa_kubeconfig(FN_SA, ns)
        assert not mismatches(release.plane, kubeconfig, dict.fromkeys(questions, False))
        listing = release.plane.kubectl("auth", "can-i", "--list", "-n", ns, kubeconfig=kubeconfig)
        resources = {
            line.split()[0]
            for line in listing.stdout.splitlines()[1:]
            if line.strip() and not line.startswith(" ")
        }
        # what every authenticated user may do: ask who it is and what it may do
        assert resources <= {
            "selfsubjectreviews.authentication.k8s.io",
            "selfsubjectaccessreviews.authorization.k8s.io",
            "selfsubjectrulesreviews.authorization.k8s.io",
        }, listing.stdout


def test_network_policies_select_the_routers_real_pods(release: Release) -> None:
    plane = release.plane
    pods = plane.get_json(
        "pods", "-n", release.namespace, "-l", "app.kubernetes.io/component=router"
    )["items"]
    assert pods, "the router's pod was not created"
    router_labels = pods[0]["metadata"]["labels"]
    ns_labels = plane.get_json("namespace", release.namespace)["metadata"]["labels"]
    for ns in (release.functions,):
        policy = plane.get_json("networkpolicy", "kl-klambda-workers", "-n", ns)
        [peer] = policy["spec"]["ingress"][0]["from"]
        assert peer["podSelector"]["matchLabels"].items() <= router_labels.items()
        assert peer["namespaceSelector"]["matchLabels"].items() <= ns_labels.items()
    service = plane.get_json("service", "kl-klambda-router", "-n", release.namespace)
    assert service["spec"]["selector"].items() <= router_labels.items()


def test_the_log_engine_is_stored_and_pointed_at(release: Release) -> None:
    plane, ns = release.plane, release.namespace
    engine = plane.get_json("statefulset", "kl-klambda-logs", "-n", ns)
    [container] = engine["spec"]["template"]["spec"]["containers"]
    assert "-retentionPeriod=30d" in container["command"]
    service = plane.get_json("service", "kl-klambda-logs", "-n", ns)
    assert service["spec"]["selector"].items() <= (
        engine["spec"]["template"]["metadata"]["labels"].items()
    )
    url = f"http://kl-klambda-logs.{ns}.svc:9428"
    for name, var in (
        ("kl-klambda-router", "KLAMBDA_LOG_ENGINE_URL"),
        ("kl-klambda-operator", "KLAMBDA_OPERATOR_LOG_ENGINE_URL"),
    ):
        deployment = plane.get_json("deployment", name, "-n", ns)
        env = {
            e["name"]: e.get("value")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env[var] == url, name
    policy = plane.get_json("networkpolicy", "kl-klambda-logs", "-n", ns)
    peers = policy["spec"]["ingress"][0]["from"]
    assert [p["namespaceSelector"]["matchLabels"] for p in peers[1:]] == [
        {"kubernetes.io/metadata.name": release.functions}
    ] * 2


def pool_pod(name: str, labels: dict[str, str]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "serviceAccountName": FN_SA,
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "worker",
                        "image": "klambda/runtime:0.1.0",
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }
    )


def test_router_may_only_claim_pool_pods_and_operator_only_delete_claimed_ones(
    release: Release,
) -> None:
    """RBAC grants patch and delete on every pod of the namespace; the admission policies
    keep the router to claims of pool pods and the operator to claimed (specialised) ones."""
    fns, plane = release.functions, release.plane
    plane.kubectl("apply", "-n", fns, "-f", str(ROOT / "examples/functions/hello.yaml"))
    pool = {"klambda.io/pool": "python3.11", "klambda.io/component": "pool"}
    for name, labels in (("pool-a", pool), ("pool-b", pool), ("other", {"app": "x"})):
        plane.kubectl("create", "-n", fns, "-f", "-", input=pool_pod(name, labels))
    fn = plane.get_json("function", "hello", "-n", fns)
    uid = plane.get_json("pod", "pool-a", "-n", fns)["metadata"]["uid"]
    claim = {
        "metadata": {
            "uid": uid,
            "labels": {
                "klambda.io/pool": None,
                "klambda.io/component": "specialised",
                "klambda.io/function": "hello",
                "klambda.io/version": "latest",
            },
            "annotations": {"klambda.io/claimed-at": "2026-01-01T00:00:00Z"},
            "ownerReferences": [
                {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "name": "hello",
                 "uid": fn["metadata"]["uid"], "controller": True}
            ],
        }
    }  # fmt: skip

    # a merge patch with the router's own token, as the router sends it (kubectl patch
    # would read the pod first, which the router may not)
    router = Client(config=KubeConfig.from_file(release.sa_kubeconfig("kl-klambda-router")))

    def as_router(name: str, patch: dict[str, Any]) -> str | None:
        try:
            router.patch(Pod, name, patch, namespace=fns, patch_type=PatchType.MERGE)
        except ApiError as err:
            return str(err.status.message)
        return None

    assert as_router("pool-a", claim) is None
    labels_only = {k: v for k, v in claim["metadata"].items() if k != "uid"}
    refused = {
        "not a pool pod": as_router("other", {"metadata": {"labels": {"app": "y"}}}),
        "stays in the pool": as_router("pool-b", {"metadata": {"labels": {"team": "x"}}}),
        "a foreign label": as_router(
            "pool-b", {"metadata": {"labels": {**claim["metadata"]["labels"], "team": "x"}}}
        ),
        "a spec change": as_router(
            "pool-b", {"spec": {"activeDeadlineSeconds": 5}, "metadata": labels_only}
        ),
    }
    for what, message in refused.items():
        assert message is not None, what
        assert "ValidatingAdmissionPolicy" in message, (what, message)
    router.close()

    def as_operator(*args: str) -> Any:
        return release.as_sa("kl-klambda-operator", *args, "-n", fns)

    for name in ("pool-b", "other"):
        out = as_operator("delete", "pod", name, "--wait=false")
        assert out.returncode != 0, name
        assert "only specialised pool pods" in out.stderr, out.stderr
    out = as_operator("delete", "pod", "pool-a", "--wait=false")
    assert out.returncode == 0, out.stderr


def test_operator_deletes_only_pool_workloads(release: Release) -> None:
    """RBAC grants the operator delete on Deployments and Services (an unused warm pool's);
    the admission policy refuses any other."""
    fns, plane = release.functions, release.plane
    pool = {"klambda.io/component": "pool", "app.kubernetes.io/managed-by": "klambda-operator"}
    for name, labels in (("pool-svc", pool), ("their-svc", {"app": "theirs"})):
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": labels},
            "spec": {"clusterIP": "None", "ports": [{"port": 9000}]},
        }
        plane.kubectl("create", "-n", fns, "-f", "-", input=json.dumps(service))
    out = release.as_sa("kl-klambda-operator", "delete", "service", "their-svc", "-n", fns)
    assert out.returncode != 0
    assert "only the warm pools'" in out.stderr, out.stderr
    out = release.as_sa("kl-klambda-operator", "delete", "service", "pool-svc", "-n", fns)
    assert out.returncode == 0, out.stderr


def test_uninstall_and_reinstall_are_clean(kube_control_plane: ControlPlane) -> None:
    """Cluster-scoped objects carry the namespace in their names: a second release of the
    same name in another namespace does not collide, and uninstall removes them."""
    plane = kube_control_plane
    ns = f"klambda-{uuid.uuid4().hex[:8]}"
    create_namespace(plane, ns)
    try:
        plane.helm("install", "kl", str(CHART), "-n", ns, "--set", "functions.namespace=")
        roles = plane.get_json("clusterroles", "-l", "app.kubernetes.io/instance=kl")["items"]
        assert f"{ns}-kl-klambda-operator" in {r["metadata"]["name"] for r in roles}
        # functions.namespace "" is the release's own
        plane.kubectl("get", "role", f"{ns}-kl-klambda-router", "-n", ns)
        plane.kubectl("get", "serviceaccount", "klambda-function", "-n", ns)
        plane.helm("uninstall", "kl", "-n", ns)
        with pytest.raises(ControlPlaneError):
            plane.kubectl("get", "clusterrole", f"{ns}-kl-klambda-operator")
    finally:
        plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_control_api_lets_the_router_write_functions(kube_control_plane: ControlPlane) -> None:
    """router.controlApi: the router's Role may create, replace and delete Functions, and its
    admission policy lets it change their specs (and nothing more than before elsewhere)."""
    plane = kube_control_plane
    ns = f"klambda-{uuid.uuid4().hex[:8]}"
    create_namespace(plane, ns)
    try:
        plane.helm(
            "install", "kc", str(CHART), "-n", ns, "--set", "functions.namespace=",
            "--set", "router.controlApi=true",
        )  # fmt: skip
        router = f"--as=system:serviceaccount:{ns}:kc-klambda-router"
        for verb in ("create", "update", "delete"):
            out = plane.kubectl("auth", "can-i", verb, "functions.klambda.io", "-n", ns, router)
            assert out.stdout.strip() == "yes", verb
        plane.kubectl("apply", "-n", ns, "-f", str(ROOT / "examples/functions/hello.yaml"))
        spec = '{"spec": {"memoryMB": 512}}'
        out = plane.kubectl(
            "patch", "function", "hello", "-n", ns, "--type=merge", "-p", spec, router,
            check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert plane.get_json("function", "hello", "-n", ns)["spec"]["memoryMB"] == 512
        # the policy still holds elsewhere: an Alias's spec without autoscaling is not its
        alias = {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Alias",
            "metadata": {"name": "hello.live"},
            "spec": {"function": "hello", "version": "$LATEST"},
        }
        plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(alias))

        def refused() -> str | None:
            change = json.dumps({"spec": {"description": uuid.uuid4().hex}})  # never a no-op
            out = plane.kubectl(
                "patch", "alias", "hello.live", "-n", ns, "--type=merge", "-p", change, router,
                check=False,
            )  # fmt: skip
            return out.stderr if out.returncode != 0 else None

        # the API server takes in a new admission policy and its binding shortly after
        # they are created, not at once
        stderr = eventually(refused, "the router's alias patch refused", timeout=30, interval=0.5)
        assert "ValidatingAdmissionPolicy" in stderr, stderr
        plane.helm("uninstall", "kc", "-n", ns)
    finally:
        plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)
