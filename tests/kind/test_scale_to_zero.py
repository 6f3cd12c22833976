"""Scale to zero after the idle window, and provisioned concurrency that stays warm.

The release's operator runs with a short idle window for this module (`helm upgrade --set
operator.idleSeconds=20`, put back to the chart's default after it). An on-demand function
called once loses its pod once idle, and its next call is a cold start on a new pod that
answers. A version with provisioned concurrency keeps its pod through the same window,
and its first call finds the environment initialised: no Init Duration.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, ROOT, Cluster, wait_for

IDLE_S = 20
DEFAULT_IDLE_S = 600  # the chart's operator.idleSeconds
# the operator looks again every resync (10 s); the worker stops on SIGTERM at once
SCALED_DOWN_WITHIN_S = IDLE_S + 60

CODE = (
    "import os\n"
    "def handler(event, context):\n"
    "    return {'host': os.uname().nodename, 'version': context.function_version}\n"
)


@pytest.fixture(scope="module")
def short_idle(cluster: Cluster) -> Iterator[int]:
    cluster.upgrade(f"operator.idleSeconds={IDLE_S}")
    try:
        yield IDLE_S
    finally:
        cluster.upgrade(f"operator.idleSeconds={DEFAULT_IDLE_S}")


def _function(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": name},
            "spec": {
                "runtime": "python3.11",
                "handler": "app.handler",
                "code": {"inline": {"app.py": CODE}},
            },
        }
    )


def _apply(cluster: Cluster, name: str) -> None:
    cluster.kubectl("apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-", stdin=_function(name))

    def active() -> bool:
        fn = cluster.get("function", name, "-n", FUNCTIONS_NAMESPACE)
        return bool(fn.get("status", {}).get("state") == "Active")

    wait_for(f"Function {name} to be Active", active)


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


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _call(cluster: Cluster, qualified: str) -> tuple[str, str, str]:
    """(the pod that answered, the executed version, the REPORT line) of one call."""
    status, headers, body = cluster.invoke(qualified, {}, tail=True)
    assert status == 200, body
    answer = json.loads(body)
    tail = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
    return answer["host"], headers["X-Amz-Executed-Version"], report


def _scaled_to_zero(cluster: Cluster, function: str) -> None:
    wait_for(
        f"{function}'s pods to go after {IDLE_S} s idle",
        lambda: not cluster.pods(f"klambda.io/function={function}"),
        timeout=SCALED_DOWN_WITHIN_S,
        interval=2,
    )


def test_an_idle_function_scales_to_zero_and_its_next_call_brings_it_back(
    cluster: Cluster, short_idle: int
) -> None:
    _apply(cluster, "sleeper")
    first, _, report = _call(cluster, "sleeper")
    assert "Init Duration" in report, report
    assert [p["metadata"]["name"] for p in cluster.function_pods("sleeper")] == [first]

    _scaled_to_zero(cluster, "sleeper")
    deployment = cluster.get("deployment", "sleeper-latest", "-n", FUNCTIONS_NAMESPACE)
    assert deployment["spec"]["replicas"] == 0

    # the next call is a cold start again, on a new pod, and answers
    again, version, report = _call(cluster, "sleeper")
    assert version == "$LATEST"
    assert again != first
    assert "Init Duration" in report, report
    assert [p["metadata"]["name"] for p in cluster.function_pods("sleeper")] == [again]


def test_provisioned_concurrency_stays_warm_while_on_demand_scales_to_zero(
    cluster: Cluster, short_idle: int
) -> None:
    _apply(cluster, "steady")
    _cli(cluster, "publish-version", "steady")
    _cli(cluster, "alias", "set", "steady", "live", "--version", "1")
    _cli(cluster, "provisioned", "put", "steady:live", "--count", "1")
    provisioned = "klambda.io/function=steady,klambda.io/version=1"

    def one_ready_pod() -> str | None:
        pods = cluster.pods(provisioned)
        return pods[0]["metadata"]["name"] if len(pods) == 1 and _ready(pods[0]) else None

    pod = wait_for("the provisioned environment's pod", one_ready_pod, timeout=120)
    _apply(cluster, "bursty")
    answered, _, _ = _call(cluster, "bursty")
    assert [p["metadata"]["name"] for p in cluster.function_pods("bursty")] == [answered]

    # everything on demand goes; the provisioned pod stays, never restarted
    _scaled_to_zero(cluster, "bursty")
    (kept,) = cluster.pods(provisioned)
    assert kept["metadata"]["name"] == pod
    assert _ready(kept)
    assert [s["restartCount"] for s in kept["status"]["containerStatuses"]] == [0]

    # its first call finds the environment initialised before it: no Init Duration
    host, version, report = _call(cluster, "steady:live")
    assert (host, version) == (pod, "1")
    assert "Init Duration" not in report, report
    assert cluster.pods("klambda.io/function=bursty") == []
