"""The warm pool as a router sees it: pool pods from EndpointSlices, each taken once."""

from __future__ import annotations

from typing import Any

from klambda import contract
from klambda.router.cluster import endpoints_of, pool_endpoints_of
from klambda.router.pool import PoolPod, WarmPool


def pool_slice(runtime: str, *pods: tuple[str, str, bool], port: int = 9000) -> dict[str, Any]:
    return {
        "metadata": {"labels": {contract.LABEL_POOL: runtime}},
        "ports": [{"name": "grpc", "port": port}],
        "endpoints": [
            {
                "addresses": [f"198.18.0.{i}"],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": name, "uid": uid},
            }
            for i, (name, uid, ready) in enumerate(pods, start=1)
        ],
    }


def test_pool_pods_from_slices() -> None:
    slices = [
        pool_slice("python3.11", ("p-a", "u1", True), ("p-b", "u2", False)),
        pool_slice("python3.11", ("p-c", "u3", True), port=9100),
        pool_slice("python3.12"),  # a pool with no ready pod is still a pool
        {"metadata": {"labels": {contract.LABEL_FUNCTION: "hello"}}, "endpoints": []},
    ]
    got = pool_endpoints_of(slices)
    assert got == {
        "python3.11": [
            PoolPod("p-a", "u1", "198.18.0.1:9000"),
            PoolPod("p-c", "u3", "198.18.0.1:9100"),
        ],
        "python3.12": [],
    }
    assert endpoints_of(slices) == {}  # pool slices are nobody's version


def test_a_pool_pod_is_taken_once_and_forgotten_when_gone() -> None:
    a, b = PoolPod("p-a", "u1", "x:1"), PoolPod("p-b", "u2", "x:2")
    pool = WarmPool()
    assert not pool.has_pool("python3.11")
    assert pool.take("python3.11") is None
    pool.update({"python3.11": [a, b], "python3.12": []})
    assert pool.has_pool("python3.12")
    assert pool.take("python3.12") is None
    assert pool.take("python3.11") == a
    assert pool.take("python3.11") == b
    assert pool.take("python3.11") is None
    pool.give_back(b)  # throttled before it was used
    assert pool.available("python3.11") == 1
    pool.update({"python3.11": [b]})  # a left the pool (relabelled)
    assert pool.taken == set()
    pool.update({"python3.11": [a, b]})  # the slices lag: a is listed again, and taken
    assert pool.take("python3.11") == a
