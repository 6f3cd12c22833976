"""Versions, a weighted alias and reserved concurrency, served by real worker pods.

Published with the CLI against the cluster (`--kubeconfig`), as a user would: the alias's two
versions each get their own worker pods and both answer; with reserved concurrency 2 and
both environments warm, 10 simultaneous calls give exactly 2 answers and 8 throttles (429,
Lambda's reason), counted by the router across the two pods.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .conftest import FUNCTIONS_NAMESPACE, ROOT, Cluster, wait_for


def _cli(cluster: Cluster, *args: str) -> str:
    out = subprocess.run(
        [str(ROOT / ".venv/bin/klambda"), *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _apply_example(cluster: Cluster, name: str) -> None:
    cluster.kubectl(
        "apply", "-n", FUNCTIONS_NAMESPACE, "-f", str(ROOT / f"examples/functions/{name}.yaml")
    )
    wait_for(
        f"Function {name} to be Active",
        lambda: (
            cluster.get("function", name, "-n", FUNCTIONS_NAMESPACE).get("status", {}).get("state")
            == "Active"
        ),
    )


def _ready_pods(cluster: Cluster, selector: str) -> list[str]:
    pods = cluster.get("pods", "-n", FUNCTIONS_NAMESPACE, "-l", selector)["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        and not p["metadata"].get("deletionTimestamp")
    ]


def test_a_weighted_alias_is_served_by_both_versions_pods(cluster: Cluster) -> None:
    _apply_example(cluster, "hello")
    _cli(cluster, "publish-version", "hello")
    cluster.kubectl(
        "patch", "function", "hello", "-n", FUNCTIONS_NAMESPACE, "--type", "merge",
        "-p", '{"spec": {"environment": {"GREETING": "Hi"}}}',
    )  # fmt: skip
    _cli(cluster, "publish-version", "hello")
    _cli(cluster, "alias", "set", "hello", "prod", "--version", "1", "--weight", "2=0.5")
    wait_for(
        "alias hello.prod to be ready",
        lambda: (
            cluster.get("alias", "hello.prod", "-n", FUNCTIONS_NAMESPACE)
            .get("status", {})
            .get("conditions")
        ),
    )

    answers: Counter[str] = Counter()
    for _ in range(40):
        status, headers, body = cluster.invoke("hello:prod", {"name": "Ada"})
        assert status == 200, body
        answers[f"{headers['X-Amz-Executed-Version']} {json.loads(body)['message']}"] += 1
    assert set(answers) == {"1 Hello, Ada!", "2 Hi, Ada!"}, answers
    for version in ("1", "2"):
        assert _ready_pods(cluster, f"klambda.io/function=hello,klambda.io/version={version}")


def test_reserved_concurrency_throttles_beyond_it_across_pods(cluster: Cluster) -> None:
    _apply_example(cluster, "hasher")
    _cli(cluster, "concurrency", "put", "hasher", "--reserved", "2")
    selector = "klambda.io/function=hasher"

    def two_warm_environments() -> bool:
        # two calls at once need two environments: the operator scales up to them
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: cluster.invoke("hasher", {"rounds": 200000}), range(2)))
        return len(_ready_pods(cluster, selector)) == 2

    wait_for("two warm hasher environments", two_warm_environments, timeout=120, interval=1)

    def call(_: int) -> tuple[int, str]:
        request = urllib.request.Request(
            f"{cluster.http}/2015-03-31/functions/hasher/invocations",
            data=json.dumps({"rounds": 1500000}).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, ""
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()).get("Reason", "")

    with ThreadPoolExecutor(10) as pool:
        outcomes = Counter(pool.map(call, range(10)))
    assert outcomes == {
        (200, ""): 2,
        (429, "ReservedFunctionConcurrentInvocationLimitExceeded"): 8,
    }, outcomes
