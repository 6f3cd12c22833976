"""Provisioned autoscaling in local mode, time compressed by settings (a decision every
0.2 s, a 1 s evaluation window, a 3 s scale-in cooldown): sustained utilization raises an
alias's provisioned concurrency, idleness lowers it to the minimum after the cooldown."""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import CLI, RouterRunner, eventually

FUNCTION = textwrap.dedent(
    """
    apiVersion: klambda.io/v1alpha1
    kind: Function
    metadata: {name: busy}
    spec:
      runtime: python3.11
      handler: app.handler
      code:
        inline:
          app.py: |
            import time
            def handler(event, context):
                time.sleep(event.get("sleep", 0.3))
                return "ok"
    """
)
COOLDOWN = 3.0


def call(url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("autoscaling")
    functions = tmp / "functions"
    functions.mkdir()
    (functions / "busy.yaml").write_text(FUNCTION)
    env = {
        "KLAMBDA_AUTOSCALE_PERIOD_SECONDS": "0.2",
        "KLAMBDA_AUTOSCALE_EVALUATION_SECONDS": "1",
        "KLAMBDA_ECHO_LOGS": "0",
    }
    with RouterRunner.up(functions, workdir=tmp, env=env) as r:
        yield r


def klambda(router: RouterRunner, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--endpoint", router.url], capture_output=True, text=True, timeout=60
    )


def provisioned(router: RouterRunner) -> int:
    path = "/2019-09-30/functions/busy/provisioned-concurrency?Qualifier=live"
    return int(call(router.url, "GET", path)["RequestedProvisionedConcurrentExecutions"])


def test_sustained_utilization_raises_provisioned_and_idleness_lowers_it(
    router: RouterRunner, tmp_path: Path
) -> None:
    url = router.url
    call(url, "POST", "/2015-03-31/functions/busy/versions", {})
    call(
        url, "POST", "/2015-03-31/functions/busy/aliases", {"Name": "live", "FunctionVersion": "1"}
    )
    out = klambda(
        router,
        "provisioned",
        "autoscale",
        "busy:live",
        "--min",
        "1",
        "--max",
        "4",
        "--target",
        "0.5",
        "--scale-in-cooldown",
        str(COOLDOWN),
    )
    assert out.returncode == 0, out.stderr
    assert "between 1 and 4 at 0.5 utilization" in out.stdout
    # below the minimum: brought up to it at once
    eventually(lambda: provisioned(router) == 1, "the minimum of 1 provisioned environment")

    # sustained load: 4 callers, each keeping one invocation of 0.3 s running (bounded)
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        deadline = time.monotonic() + 40
        while not stop.is_set() and time.monotonic() < deadline:
            status, _, _ = router.invoke("busy:live", {"sleep": 0.3})
            statuses.append(status)

    callers = [threading.Thread(target=load) for _ in range(4)]
    for c in callers:
        c.start()
    try:
        eventually(lambda: provisioned(router) == 4, "provisioned to reach the max 4", timeout=30)
        status = json.loads(klambda(router, "provisioned", "autoscaling", "busy:live").stdout)
        assert status["lastScaling"]["provisionedConcurrency"] == 4
        assert "utilization" in status["lastScaling"]["reason"]
    finally:
        stop.set()
        for c in callers:
            c.join()
    idle_since = time.monotonic()
    assert statuses
    assert all(s == 200 for s in statuses)

    # idle: nothing before the cooldown, then down to the minimum
    seen = []
    while time.monotonic() - idle_since < COOLDOWN - 0.5:
        seen.append(provisioned(router))
        time.sleep(0.2)
    assert set(seen) == {4}
    eventually(lambda: provisioned(router) == 1, "provisioned back to the minimum", timeout=15)
    lowered_after = time.monotonic() - idle_since
    assert lowered_after >= COOLDOWN - 0.5
    status = json.loads(klambda(router, "provisioned", "autoscaling", "busy:live").stdout)
    assert status["lastScaling"]["provisionedConcurrency"] == 1
    assert status["policy"]["maxCapacity"] == 4

    # the console shows the policy and what it did last
    page = urllib.request.urlopen(url + "/console/functions/busy", timeout=10).read().decode()
    assert "live: 1 provisioned, 1-4, target utilization 0.5" in page

    out = klambda(router, "provisioned", "autoscale", "busy:live", "--off")
    assert out.returncode == 0, out.stderr
    assert "no provisioned autoscaling" in out.stdout


def test_a_bad_policy_is_refused_naming_the_field(router: RouterRunner) -> None:
    out = klambda(router, "provisioned", "autoscale", "busy:live", "--min", "5", "--max", "2")
    assert out.returncode == 2
    assert "minCapacity 5 is above maxCapacity 2" in out.stderr
    out = klambda(
        router, "provisioned", "autoscale", "busy:live", "--schedule", "night=cron(0 20 * *)"
    )
    assert out.returncode == 2
    assert "cron(0 20 * *)" in out.stderr
