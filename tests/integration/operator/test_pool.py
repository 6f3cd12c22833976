"""The warm pools the operator keeps, and which versions scale their own Deployments.

A pool Deployment per runtime the namespace's Functions use (not images), at `pool_size`;
versions whose code a pool pod can run get no on-demand replicas (the router specialises
pool pods for them), provisioned ones keep theirs; images and a disabled pool keep the
dedicated path. Pods stay Pending here (no kubelet): tests/integration/cluster/test_pool.py
runs the pool's workers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from .conftest import Namespace, Operator, condition, function_manifest, version_manifest

POOL11, POOL12 = "klambda-pool-python3-11", "klambda-pool-python3-12"
IMAGE = {"image": "registry.example/hello@sha256:" + "ab" * 32}


def replicas(ns: Namespace, name: str) -> int | None:
    body = ns.get("Deployment", name)
    return body["spec"]["replicas"] if body else None


def demand(ns: Namespace, kind: str, name: str, wanted: int) -> None:
    now = datetime.now(UTC).isoformat()
    ns.kubectl(
        "annotate", "--overwrite", kind, name,
        f"klambda.io/demand={wanted}", f"klambda.io/last-invoked={now}",
    )  # fmt: skip


@pytest.mark.kube
def test_pools_follow_the_runtimes_in_use_and_replace_on_demand_replicas(
    ns: Namespace, start_operator: Callable[..., Operator]
) -> None:
    start_operator(pool_size=3)
    fn = function_manifest("hello")
    ns.apply(fn)
    sha = ns.wait_state("Function", "hello", "Active")["status"]["codeSha256"]
    ns.wait(lambda: replicas(ns, POOL11) == 3, "a pool of 3 for python3.11")
    service = ns.get("Service", POOL11)
    assert service is not None
    assert service["spec"]["selector"] == {"klambda.io/pool": "python3.11"}
    ns.wait(
        lambda: len(ns.list("Pod", labelSelector="klambda.io/pool=python3.11")) == 3,
        "3 pool pods made by the ReplicaSet",
    )

    # a pooled version gets no on-demand replicas: the router takes pool pods instead
    demand(ns, "function", "hello", 4)
    ns.wait(
        lambda: (
            (f := ns.get("Function", "hello"))
            and condition(f, "Scaled")["reason"] == "OnDemandFromPool"
        ),
        "Scaled: OnDemandFromPool",
    )
    assert replicas(ns, "hello-latest") == 0
    # provisioned concurrency keeps its own pods
    ns.apply(version_manifest(fn, 1, sha, provisionedConcurrency=2))
    ns.wait(lambda: replicas(ns, "hello-v1") == 2, "2 provisioned pods of version 1")
    demand(ns, "version", "hello.1", 5)
    ns.wait_state("Version", "hello.1", "Active")
    assert replicas(ns, "hello-v1") == 2

    # an image function scales its own Deployment, and needs no pool of its runtime
    ns.apply(function_manifest("boxed", runtime="python3.12", code=IMAGE))
    ns.wait_state("Function", "boxed", "Active")
    demand(ns, "function", "boxed", 2)
    ns.wait(lambda: replicas(ns, "boxed-latest") == 2, "2 dedicated pods of an image")
    assert ns.get("Deployment", POOL12) is None
    # a zip function of that runtime brings its pool
    ns.apply(function_manifest("py12", runtime="python3.12"))
    ns.wait(lambda: replicas(ns, POOL12) == 3, "a pool for python3.12")

    # a pool deleted by hand comes back; one nobody needs goes
    ns.kubectl("delete", "deployment", POOL11)
    ns.wait(lambda: replicas(ns, POOL11) == 3, "the python3.11 pool made again")
    ns.kubectl("delete", "function", "py12")
    ns.wait(
        lambda: ns.get("Deployment", POOL12) is None and ns.get("Service", POOL12) is None,
        "the unused python3.12 pool and its Service deleted",
    )


@pytest.mark.kube
def test_without_a_pool_versions_scale_their_own_deployments(
    ns: Namespace, start_operator: Callable[..., Operator]
) -> None:
    start_operator(pool_size=0)
    ns.apply(function_manifest("solo"))
    ns.wait_state("Function", "solo", "Active")
    demand(ns, "function", "solo", 2)
    ns.wait(lambda: replicas(ns, "solo-latest") == 2, "2 dedicated pods from demand")
    assert ns.list("Deployment", labelSelector="klambda.io/component=pool") == []
