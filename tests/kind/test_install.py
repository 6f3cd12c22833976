"""`helm install` of the chart with the kind values, as `make cluster` does it, on a real node.

Every pod the chart creates must become Ready (probes, NATS on its PersistentVolume from
kind's StorageClass), under the "restricted" Pod Security Standard enforced on the
namespace, and no container may run as root: checked in the node itself, from the uid of
each container's process.
"""

from __future__ import annotations

from .conftest import RELEASE_NAMESPACE, Cluster


def _ready(pod: dict) -> bool:  # type: ignore[type-arg]
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_every_pod_of_the_release_is_ready(cluster: Cluster) -> None:
    pods = cluster.get("pods", "-n", RELEASE_NAMESPACE)["items"]
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert components == {"operator", "router", "nats", "store"}
    assert [p["metadata"]["name"] for p in pods if not _ready(p)] == []
    claims = cluster.get("pvc", "-n", RELEASE_NAMESPACE)["items"]
    # NATS's JetStream and the store of code and layers keep their data on volumes
    assert [c["status"]["phase"] for c in claims] == ["Bound", "Bound"]


def test_the_namespace_enforces_the_restricted_pod_security_standard(cluster: Cluster) -> None:
    labels = cluster.get("namespace", RELEASE_NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # and it is enforced: a pod that may run as root is refused
    refused = cluster.run_kubectl(
        "run", "as-root", "-n", RELEASE_NAMESPACE, "--image=klambda/runtime:0.1.0",
        "--image-pull-policy=Never", "--restart=Never", "--dry-run=server",
        "--overrides", '{"spec": {"securityContext": {"runAsUser": 0}}}',
    )  # fmt: skip
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr


def test_no_container_runs_as_root(cluster: Cluster) -> None:
    uids = cluster.process_uids(RELEASE_NAMESPACE)
    assert len(uids) >= 3
    for cid, ids in uids.items():
        assert len(ids) == 2, (cid, ids)
        assert "0" not in ids, (cid, ids)
