"""The chart's monitoring, consumed by a real prometheus-operator and Prometheus in the cluster.

A user who monitors klambda with kube-prometheus-stack turns on the chart's ServiceMonitor
and PrometheusRule and imports its Grafana dashboard. Here the same path runs for real:
prometheus-operator and Prometheus (both built from their Go modules) in namespace
`monitoring` (tests/kind/prometheus_stack.py), the release upgraded with the
ServiceMonitor and PrometheusRule labelled for that Prometheus. Functions made for this
module are driven so that every panel of the dashboard has data: successes through a
provisioned alias (one call in two spills over), errors, throttles of a function with
reserved concurrency 1 called concurrently, asynchronous events (retried while throttled,
dropped to the DLQ when they fail), HTTP API routes and an SNS topic with a filter policy.

Checked through `kubectl port-forward` to the Prometheus pod: the PrometheusRule's groups are
loaded, the ServiceMonitor's targets (the router's pods) are up, KlambdaFunctionThrottled
fires for the throttled function (its `for` set to 10 s with the chart's
monitoring.prometheusRule.overrides), and every panel query of the committed dashboard,
with Grafana's variables substituted as in tests/integration/monitoring, returns data.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from klambda.testing import answers_http, free_port

from tests.integration.monitoring import dashboard
from tests.integration.monitoring.prometheus import Prometheus

from . import prometheus_stack as stack
from .conftest import FUNCTIONS_NAMESPACE, RELEASE, RELEASE_NAMESPACE, ROOT, Cluster, wait_for

THROTTLED_FOR = "10s"
LOAD_SECONDS = 16.0
OK, FAILS, THROTTLED = "mon-ok", "mon-fails", "mon-throttled"
TOPIC = "mon-orders"
STREAM = "mon-clicks"

# Panel queries over metrics that nothing in a cluster can export, each checked to be empty
# (when a metric appears, the test fails until its panel is checked for data like the rest).
ABSENT_IN_A_CLUSTER = {
    "klambda_dead_letter_errors_total": (
        "counted when a write to a dead-letter queue or destination fails, which the chart's "
        "healthy NATS never does; the promtool unit tests cover KlambdaDeadLetterErrors"
    ),
}

SLEEPS = (
    "import time\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleep', 0) if isinstance(event, dict) else 0)\n"
    "    return {'ok': True}\n"
)
FAILS_CODE = "def handler(event, context):\n    raise ValueError('fails on purpose')\n"


def _function(name: str, code: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": "python3.11",
            "handler": "app.handler",
            "timeoutSeconds": 10,
            "code": {"inline": {"app.py": code}},
            **spec,
        },
    }


FUNCTIONS = [
    _function(
        OK,
        SLEEPS,
        memoryMB=256,
        events={
            "okRoute": {"type": "HttpApi", "path": f"/{OK}"},
            "orders": {"type": "SNS", "topic": TOPIC, "filterPolicy": {"kind": ["paid"]}},
        },
    ),
    _function(
        FAILS,
        FAILS_CODE,
        retryAttempts=0,
        events={"failsRoute": {"type": "HttpApi", "path": f"/{FAILS}"}},
    ),
    _function(THROTTLED, SLEEPS, reservedConcurrency=1),
    # a stream read by mon-ok, polled by the router that holds the Lease: its iterator age
    {"apiVersion": "klambda.io/v1alpha1", "kind": "Stream", "metadata": {"name": STREAM},
     "spec": {"shardCount": 1}},
    {"apiVersion": "klambda.io/v1alpha1", "kind": "EventSourceMapping",
     "metadata": {"name": f"{STREAM}-to-ok"},
     "spec": {"function": OK, "source": {"stream": STREAM}, "startingPosition": "TRIM_HORIZON"}},
]  # fmt: skip


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


def _apply(cluster: Cluster, objects: list[dict[str, Any]], *args: str) -> None:
    cluster.kubectl(
        "apply",
        *args,
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )


def _ready_pods(cluster: Cluster, namespace: str, selector: str) -> list[str]:
    pods = cluster.get("pods", "-n", namespace, "-l", selector)["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]


def _stack_parts() -> tuple[dict[str, str], str]:
    """The monitoring images (component -> reference) and the operator's manifests folder,
    built and cached by `make cluster-images` (scripts/cluster/images.sh --monitoring)."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/cluster/images.sh"), "--monitoring"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    parts = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    manifests = parts.pop("manifests")
    return parts, manifests


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    images, manifests = _stack_parts()
    loaded = subprocess.run(
        [str(cluster.bin_dir / "kind"), "load", "docker-image", "--name", cluster.name,
         *images.values()],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    # the CRDs are too large for a client-side apply's last-applied annotation
    cluster.kubectl("apply", "--server-side", "-f", f"{manifests}/crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "-f", f"{manifests}/crds"
    )
    cluster.kubectl("apply", "-f", f"{manifests}/rbac")
    cluster.kubectl("create", "namespace", stack.NAMESPACE)
    try:
        _apply(
            cluster,
            stack.operator(images["prometheus-operator"], images["prometheus-config-reloader"]),
        )
        tag = images["prometheus"].rsplit(":", 1)[1]
        _apply(cluster, stack.prometheus(images["prometheus"], "v" + tag.split("-")[0]))
        cluster.upgrade(*stack.chart_values(THROTTLED_FOR))
        pod = f"prometheus-{stack.PROMETHEUS}-0"
        wait_for(
            f"the Prometheus pod {pod} to be ready",
            lambda: _ready_pods(
                cluster,
                stack.NAMESPACE,
                f"app.kubernetes.io/name=prometheus,app.kubernetes.io/instance={stack.PROMETHEUS}",
            ),
            timeout=240,
            interval=2,
        )
        port = free_port()
        log = tmp_path_factory.mktemp("prometheus") / "port-forward.log"
        with log.open("ab") as out:
            forward = subprocess.Popen(
                [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig),
                 "port-forward", "-n", stack.NAMESPACE, f"pod/{pod}", f"{port}:9090",
                 "--address", "127.0.0.1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                f"Prometheus through kubectl port-forward at {url}",
                lambda: forward.poll() is None and answers_http(url + "/-/ready"),
                timeout=60,
            )
            yield Prometheus(url, log)
        finally:
            forward.terminate()
            forward.wait(10)
    finally:
        # the stack goes with this module, and the release is as the other modules expect it
        cluster.upgrade(*stack.CHART_DEFAULTS)
        # the Prometheus first, while its operator is there to remove its finalizer
        cluster.kubectl(
            "delete",
            "prometheus",
            stack.PROMETHEUS,
            "-n",
            stack.NAMESPACE,
            "--timeout=60s",
            check=False,
        )
        cluster.kubectl("delete", "namespace", stack.NAMESPACE, "--wait=false", check=False)
        cluster.kubectl("delete", "-f", f"{manifests}/rbac", "--ignore-not-found", check=False)
        cluster.kubectl(
            "delete",
            "clusterrolebinding",
            "prometheus",
            "prometheus-operator",
            "--ignore-not-found",
            check=False,
        )


def _http(cluster: Cluster, method: str, path: str, body: Any = None) -> int:
    """A plain HTTP request to the router's NodePort (HTTP API routes, topics)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(cluster.http + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _provision_live_alias(cluster: Cluster) -> None:
    """mon-ok version 1 behind alias `live`, with one provisioned environment."""
    _cli(cluster, "publish-version", OK)
    _cli(cluster, "alias", "set", OK, "live", "--version", "1")
    _cli(cluster, "provisioned", "put", f"{OK}:live", "--count", "1")
    wait_for(
        "the provisioned environment of mon-ok:live",
        lambda: _ready_pods(
            cluster, FUNCTIONS_NAMESPACE, f"klambda.io/function={OK},klambda.io/version=1"
        ),
        timeout=180,
        interval=2,
    )


def _throttle(cluster: Cluster) -> Counter[tuple[int, str]]:
    """One call holds mon-throttled's only slot (reserved concurrency 1) for 4 s; three more
    calls and an asynchronous event meanwhile are refused (the event is retried later)."""

    def call(sleep: float) -> tuple[int, str]:
        status, _h, body = cluster.invoke(THROTTLED, {"sleep": sleep})
        return status, (json.loads(body).get("Reason", "") if status != 200 else "")

    with ThreadPoolExecutor(4) as pool:
        holder = pool.submit(call, 4.0)
        time.sleep(1.0)
        refused = Counter(pool.map(call, [0.0] * 3))
        status, _h, body = cluster.invoke(THROTTLED, {}, headers={"X-Amz-Invocation-Type": "Event"})
        assert status == 202, body
        refused[holder.result()] += 1
    return refused


def _drive_load(cluster: Cluster, seconds: float) -> list[Counter[tuple[int, str]]]:
    """Successes (two at once on mon-ok:live: one spills over), errors, asynchronous
    events, HTTP API routes, SNS messages (one filtered out), and throttles beside them."""
    stop = time.monotonic() + seconds
    throttles: list[Counter[tuple[int, str]]] = []

    def keep_throttling() -> None:
        while time.monotonic() < stop:
            throttles.append(_throttle(cluster))

    beside = threading.Thread(target=keep_throttling)
    beside.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            while time.monotonic() < stop:
                live = list(
                    pool.map(lambda _: cluster.invoke(f"{OK}:live", {"sleep": 0.3}), range(2))
                )
                assert [s for s, _h, _b in live] == [200, 200], live
                assert cluster.invoke(OK, {})[0] == 200
                status, headers, _b = cluster.invoke(FAILS, {})
                assert (status, _header(headers, "X-Amz-Function-Error")) == (200, "Unhandled")
                for fn in (OK, FAILS):
                    event = cluster.invoke(fn, {}, headers={"X-Amz-Invocation-Type": "Event"})
                    assert event[0] == 202, event
                assert _http(cluster, "GET", f"/http/{OK}") == 200
                assert _http(cluster, "GET", f"/http/{FAILS}") >= 500
                record = {"PartitionKey": "k", "Data": "eyJwYWdlIjogIi8ifQ=="}
                put = f"/klambda/v1/streams/{STREAM}/records"
                assert _http(cluster, "POST", put, record) == 200
                for kind in ("paid", "refunded"):  # the second is filtered out
                    attrs = {"kind": {"DataType": "String", "StringValue": kind}}
                    message = {"Message": "m", "MessageAttributes": attrs}
                    assert (
                        _http(cluster, "POST", f"/klambda/v1/topics/{TOPIC}/messages", message)
                        == 200
                    )
                time.sleep(0.2)
    finally:
        beside.join()
    return throttles


@pytest.fixture(scope="module")
def loaded(cluster: Cluster, prometheus: Prometheus) -> Iterator[list[Counter[tuple[int, str]]]]:
    _apply(cluster, FUNCTIONS, "-n", FUNCTIONS_NAMESPACE)
    try:
        for name in (OK, FAILS, THROTTLED):
            wait_for(
                f"Function {name} to be Active",
                lambda name=name: (
                    cluster.get("function", name, "-n", FUNCTIONS_NAMESPACE)
                    .get("status", {})
                    .get("state")
                    == "Active"
                ),
            )
        _provision_live_alias(cluster)
        # every function warm (its cold start now rather than inside the throttle's window)
        for name in (OK, FAILS, THROTTLED):
            assert cluster.invoke(name, {})[0] == 200
        yield _drive_load(cluster, LOAD_SECONDS)
    finally:
        for kind, name in (("eventsourcemapping", f"{STREAM}-to-ok"), ("stream", STREAM)):
            cluster.kubectl("delete", kind, name, "-n", FUNCTIONS_NAMESPACE,
                            "--ignore-not-found", "--wait=false", check=False)  # fmt: skip
        for name in (OK, FAILS, THROTTLED):
            cluster.kubectl(
                "delete",
                "function",
                name,
                "-n",
                FUNCTIONS_NAMESPACE,
                "--ignore-not-found",
                "--wait=false",
                check=False,
            )


def _absent_reason(promql: str) -> str | None:
    return next((why for metric, why in ABSENT_IN_A_CLUSTER.items() if metric in promql), None)


def test_the_prometheus_rule_is_loaded(prometheus: Prometheus) -> None:
    """Prometheus evaluates the chart's rule groups, from the PrometheusRule's file."""
    shipped = {
        g["name"]: {r["alert"] for r in g["rules"]} for g in dashboard.load_rules()["groups"]
    }

    def loaded_groups() -> dict[str, Any]:
        groups = prometheus.api("/api/v1/rules")["groups"]
        return {g["name"]: g for g in groups if f"{RELEASE_NAMESPACE}-{RELEASE}-" in g["file"]}

    groups = wait_for(
        "klambda's rule groups in Prometheus",
        lambda: loaded_groups().keys() >= shipped.keys() and loaded_groups(),
        timeout=120,
        interval=2,
    )
    for name, alerts in shipped.items():
        assert {r["name"] for r in groups[name]["rules"]} == alerts, name
        assert all(r["health"] != "err" for r in groups[name]["rules"]), groups[name]
    throttled = next(
        r for r in groups["klambda.functions"]["rules"] if r["name"] == "KlambdaFunctionThrottled"
    )
    assert throttled["duration"] == 10  # the override of its `for`, in seconds


def test_the_service_monitor_targets_are_up(cluster: Cluster, prometheus: Prometheus) -> None:
    """Every router pod is a target of the ServiceMonitor, and scraped."""
    pool = f"serviceMonitor/{RELEASE_NAMESPACE}/{RELEASE}-router/0"
    routers = set(_ready_pods(cluster, RELEASE_NAMESPACE, "app.kubernetes.io/component=router"))
    assert routers

    def up() -> set[str]:
        active = [
            t for t in prometheus.api("/api/v1/targets")["activeTargets"] if t["scrapePool"] == pool
        ]
        return {t["labels"]["pod"] for t in active if t["health"] == "up"}

    assert (
        wait_for(
            f"the router's pods up in {pool}",
            lambda: up() == routers and up(),
            timeout=120,
            interval=2,
        )
        == routers
    )
    assert prometheus.query(
        f'up{{namespace="{RELEASE_NAMESPACE}", service="{RELEASE}-router"}} == 1'
    )


def test_every_dashboard_panel_has_data(
    cluster: Cluster, prometheus: Prometheus, loaded: list[Counter[tuple[int, str]]]
) -> None:
    targets = dashboard.targets()
    assert all(any(m in t.promql for t in targets) for m in ABSENT_IN_A_CLUSTER)

    def empty_panels() -> list[str]:
        return [
            f"{t.panel} [{t.ref}]: {t.promql}"
            for t in targets
            if not _absent_reason(t.promql) and not prometheus.finite_values(t.promql)
        ]

    def every_panel_has_data() -> bool:
        return not empty_panels()

    # the panels' rates are over a minute: they are read first, right after the load (cold
    # starts included), and the same traffic goes on while they are read
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            _drive_load(cluster, 4.0)

    beside = threading.Thread(target=traffic)
    beside.start()
    try:
        wait_for("data in every panel", every_panel_has_data, timeout=90, interval=3)
    except AssertionError:
        raise AssertionError("panels without data:\n" + "\n".join(empty_panels())) from None
    finally:
        stop.set()
        beside.join()
    appeared = [
        t.promql for t in targets if _absent_reason(t.promql) and prometheus.query(t.promql)
    ]
    assert not appeared, f"these have data now: check them like the other panels: {appeared}"
    # and the data is this module's traffic
    by_function = "sum by (function) (klambda_{}_total)"
    throttled = {s["metric"]["function"] for s in prometheus.query(by_function.format("throttles"))}
    assert THROTTLED in throttled
    # (every invocation creates its spillover series at 0: only mon-ok:live's grew)
    spilled = prometheus.query(
        "sum by (function, alias) (klambda_provisioned_spillover_invocations_total) > 0"
    )
    assert {(s["metric"]["function"], s["metric"].get("alias")) for s in spilled} == {(OK, "live")}
    assert prometheus.finite_values(f'sum(klambda_dlq_depth{{function="{FAILS}"}}) > 0')


def test_a_throttle_fires_klambda_function_throttled(
    prometheus: Prometheus, loaded: list[Counter[tuple[int, str]]]
) -> None:
    # (an event retried after a throttle may hold the slot when a burst starts)
    refused = (429, "ReservedFunctionConcurrentInvocationLimitExceeded")
    assert loaded
    assert all(c.keys() <= {(200, ""), refused} and c[refused] >= 3 for c in loaded), loaded

    def firing() -> set[str]:
        return {
            a["labels"]["function"]
            for a in prometheus.alerts()
            if a["labels"]["alertname"] == "KlambdaFunctionThrottled" and a["state"] == "firing"
        }

    assert wait_for("KlambdaFunctionThrottled to fire", firing, timeout=120, interval=2) == {
        THROTTLED
    }
    alert = next(
        a for a in prometheus.alerts() if a["labels"]["alertname"] == "KlambdaFunctionThrottled"
    )
    assert alert["labels"]["namespace"] == RELEASE_NAMESPACE  # added by the ServiceMonitor
    assert alert["labels"]["severity"] == "warning"
