"""The chart without a cluster: lint, schema, rendering, the gated monitoring objects, the
files it embeds, and the CRD copies."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helm.chart import (
    CHART,
    GATEWAY_API,
    KIND_VALUES,
    MONITORING_API,
    MONITORING_VALUES,
    ROOT,
    VAP_API,
    by_kind,
    helm,
    one,
    pod_specs,
    render,
)

FULL = (
    "-f", str(MONITORING_VALUES), "-f", str(KIND_VALUES), "--set", "logs.engine.enabled=true",
)  # fmt: skip
WITH_APIS = ("--api-versions", MONITORING_API, "--api-versions", VAP_API)
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def test_chart_crds_are_byte_identical_copies_of_crds() -> None:
    source = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    copies = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert copies == source, "run: scripts/check-chart.sh --sync-crds"
    stale = [
        name
        for name in source
        if (ROOT / "crds" / name).read_bytes() != (CHART / "crds" / name).read_bytes()
    ]
    assert not stale, (
        f"charts/klambda/crds is stale ({stale}): run scripts/check-chart.sh --sync-crds"
    )


@pytest.mark.parametrize(
    "values",
    [
        (),
        FULL,
        ("--set", "nats.enabled=false", "--set", "nats.externalUrl=nats://nats.example:4222"),
    ],
    ids=["default", "monitoring+kind", "external-nats"],
)
def test_helm_lint_strict(values: tuple[str, ...]) -> None:
    out = helm("lint", "--strict", str(CHART), *values, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("--set", "router.replica=2"), "additional properties 'replica' not allowed"),
        (("--set", "nats.enabled=false"), "/nats/externalUrl"),
        (("--set", "router.service.type=Ingress"), "/router/service/type"),
        (("--set", "monitoring.prometheusRule.overrides.KlambdaX.for=soon"), "/for"),
        (("--set", "router.httpRoute.enabled=true"), "/router/httpRoute/parentRefs"),
        (("--set", "router.ingress.host=Not A Host"), "/router/ingress/host"),
    ],
)
def test_schema_refuses_bad_values(values: tuple[str, ...], message: str) -> None:
    out = helm("template", "t", str(CHART), "--kube-version", "1.34.0", *values, check=False)
    assert out.returncode != 0
    assert message in out.stderr


def test_default_render() -> None:
    docs = render()
    kinds = {d["kind"] for d in docs}
    assert kinds == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "StatefulSet",
        "ConfigMap",
        "NetworkPolicy",
        "Secret",  # the store's credentials
    }
    # the router reads and annotates only in the namespace it serves
    assert one(docs, "Role", "-router")["metadata"]["namespace"] == "default"
    assert one(docs, "RoleBinding", "-router")["metadata"]["namespace"] == "default"
    assert [r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")] == [
        "klambda-t-klambda-invoker",
        "klambda-t-klambda-viewer",
        "klambda-t-klambda-developer",
        "klambda-t-klambda-operator",
        "klambda-t-klambda-router-access",
    ]
    operator = one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]
    router = one(docs, "Deployment", "-router")["spec"]["template"]["spec"]
    assert operator["containers"][0]["image"] == "klambda/operator:0.1.0"
    assert operator["containers"][0]["command"][:4] == [
        "kopf",
        "run",
        "-m",
        "klambda_operator.handlers",
    ]
    assert router["containers"][0]["image"] == "klambda/runtime:0.1.0"
    assert router["containers"][0]["command"] == ["klambda", "router", "--cluster"]
    env = {e["name"]: e.get("value") for e in operator["containers"][0]["env"]}
    assert env["KLAMBDA_OPERATOR_IMAGE"] == "klambda/runtime:0.1.0"
    assert env["KLAMBDA_OPERATOR_DB_PROXY_IMAGE"] == "klambda/pgbouncer:0.1.0"
    assert env["KLAMBDA_OPERATOR_FUNCTION_SERVICE_ACCOUNT"] == "klambda-function"
    assert env["KLAMBDA_OPERATOR_IDLE_SECONDS"] == "600"
    # the store of code and layers: its address for the operator and, through it, the
    # worker pods; its credentials from its Secret, whose password is made at install
    assert env["KLAMBDA_OPERATOR_STORE_ENDPOINT"] == "http://t-klambda-store.klambda.svc:9000"
    assert env["KLAMBDA_OPERATOR_STORE_BUCKET"] == "klambda"
    secret = one(docs, "Secret", "-store")
    assert set(secret["data"]) == {"accessKey", "secretKey"}
    assert len(base64.b64decode(secret["data"]["secretKey"])) == 40
    assert secret["data"]["secretKey"] != one(render(), "Secret", "-store")["data"]["secretKey"]
    store = one(docs, "StatefulSet", "-store")["spec"]["template"]["spec"]["containers"][0]
    # the tag scripts/cluster/images.sh gives the MinIO that scripts/build-minio.sh builds
    build = (ROOT / "scripts/build-minio.sh").read_text()
    version = re.search(r"KLAMBDA_MINIO_VERSION:-v[0-9.]+-[0-9]+-([0-9a-f]{12})\}", build)
    assert version is not None
    assert store["image"] == f"klambda/minio:{version.group(1)}"
    assert store["securityContext"]["readOnlyRootFilesystem"] is True
    assert not by_kind(render("--set", "store.enabled=false"), "Secret")
    # a rollout drops no request: the router serves until the endpoints have forgotten it
    assert router["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    env = {e["name"]: e.get("value") for e in router["containers"][0]["env"]}
    assert env["KLAMBDA_QUEUE_URL"] == "nats://t-klambda-nats.klambda.svc:4222"
    assert router["containers"][0]["args"] == [
        "--namespace=default",
        "--http-port=8080",
        "--grpc-port=50051",
        "--account-concurrency=1000",
        "--wait-for-worker=60",  # a cold node's pod start, not only a warm pool's
        "--auth",  # callers need an identity and RBAC's permission
    ]
    # three ServiceAccounts for three roles; only the function pods' has no token
    accounts = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in by_kind(docs, "ServiceAccount")
    }
    assert set(accounts) == {
        ("klambda", "t-klambda-operator"),
        ("klambda", "t-klambda-router"),
        ("default", "klambda-function"),
    }
    assert operator["serviceAccountName"] != router["serviceAccountName"]
    for (_ns, name), sa in accounts.items():
        assert sa.get("automountServiceAccountToken") is (
            False if name == "klambda-function" else None
        )
    service = one(docs, "Service", "-router")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"http": 8080, "grpc": 50051}
    assert service["spec"]["type"] == "ClusterIP"
    nats = one(docs, "StatefulSet", "-nats")
    claim = nats["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "jetstream" in one(docs, "ConfigMap", "-nats")["data"]["nats.conf"]


@pytest.mark.parametrize("values", [(), FULL], ids=["default", "monitoring+kind"])
def test_every_pod_meets_the_restricted_pod_security_standard(values: tuple[str, ...]) -> None:
    specs = pod_specs(render(*values))
    logs = {"t-klambda-logs"} if values else set()  # the log engine, on request
    assert set(specs) == {
        "t-klambda-operator", "t-klambda-router", "t-klambda-nats", "t-klambda-store", *logs
    }  # fmt: skip
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert c["resources"]["limits"]["memory"], name
        assert not spec.get("hostNetwork"), name
        assert not spec.get("hostPID"), name


def test_monitoring_objects_need_the_prometheus_operator_api() -> None:
    without = {d["kind"] for d in render(*FULL)}
    assert not without & MONITORING_KINDS
    assert "ValidatingAdmissionPolicy" not in without
    docs = render(*FULL, *WITH_APIS)
    assert {d["kind"] for d in docs} >= MONITORING_KINDS | {"ValidatingAdmissionPolicy"}
    # the dashboard is a plain ConfigMap: rendered either way
    for rendered in (render(*FULL), docs):
        dash = one(rendered, "ConfigMap", "-dashboard")
        assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    router_labels = one(docs, "Service", "-router")["metadata"]["labels"]
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert router_labels[key] == value


ROUTES = (
    "--set", "router.ingress.enabled=true", "--set", "router.ingress.className=nginx",
    "--set", "router.ingress.host=fn.example.com",
    "--set", "router.httpRoute.enabled=true", "--set", "router.httpRoute.parentRefs[0].name=edge",
    "--set", "router.httpRoute.hostnames[0]=fn.example.com",
)  # fmt: skip


def test_routes_to_the_routers_http_port_ingress_and_gated_httproute() -> None:
    """/http/ (the HTTP API) and /url/ (function URLs) reach the router's HTTP port; Lambda's
    API and /metrics are not routed; the HTTPRoute needs the Gateway API."""
    assert not {"Ingress", "HTTPRoute"} & {d["kind"] for d in render("--api-versions", GATEWAY_API)}
    without = render(*ROUTES)
    assert "HTTPRoute" not in {d["kind"] for d in without}
    docs = render(*ROUTES, "--api-versions", GATEWAY_API)
    service = one(docs, "Service", "-router")
    port = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    ingress = one(docs, "Ingress", "-router")
    assert ingress == one(without, "Ingress", "-router")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "fn.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [
        ("/http", "Prefix"),
        ("/url", "Prefix"),
    ]
    for p in rule["http"]["paths"]:
        assert p["backend"]["service"] == {
            "name": service["metadata"]["name"],
            "port": {"name": "http"},
        }
    route = one(docs, "HTTPRoute", "-router")
    assert route["apiVersion"] == GATEWAY_API
    assert route["spec"]["parentRefs"] == [{"name": "edge"}]
    assert route["spec"]["hostnames"] == ["fn.example.com"]
    (rule,) = route["spec"]["rules"]
    assert [m["path"] for m in rule["matches"]] == [
        {"type": "PathPrefix", "value": "/http"},
        {"type": "PathPrefix", "value": "/url"},
    ]
    assert rule["backendRefs"] == [{"name": service["metadata"]["name"], "port": port["port"]}]


def test_monitoring_is_off_by_default_even_with_the_api() -> None:
    kinds = {d["kind"] for d in render(*WITH_APIS)}
    assert not kinds & MONITORING_KINDS
    assert not [d for d in render(*WITH_APIS) if d["metadata"]["name"].endswith("-dashboard")]


def test_prometheus_rule_is_the_rules_file() -> None:
    rules = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    rule = one(render(*FULL, *WITH_APIS), "PrometheusRule")
    assert rule["spec"] == rules


def test_prometheus_rule_values_drop_and_tune_alerts() -> None:
    values = {
        "monitoring": {
            "prometheusRule": {
                "enabled": True,
                "ruleLabels": {"team": "payments"},
                "disabledAlerts": ["KlambdaIteratorAgeHigh"],
                "overrides": {
                    "KlambdaFunctionThrottled": {"for": "10m", "labels": {"severity": "critical"}}
                },
            }
        }
    }
    docs = render("--set-json", f"monitoring={json.dumps(values['monitoring'])}", *WITH_APIS)
    alerts: dict[str, Any] = {
        r["alert"]: r for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    }
    assert "KlambdaIteratorAgeHigh" not in alerts
    assert alerts["KlambdaFunctionThrottled"]["for"] == "10m"
    assert alerts["KlambdaFunctionThrottled"]["labels"] == {
        "severity": "critical",
        "team": "payments",
    }
    assert alerts["KlambdaFunctionErrorRateHigh"]["labels"] == {
        "severity": "warning",
        "team": "payments",
    }


def test_dashboard_configmap_is_the_dashboard_file() -> None:
    dash = one(render(*FULL), "ConfigMap", "-dashboard")
    shipped = (CHART / "files" / "dashboard.json").read_text()
    assert dash["data"]["klambda.json"] == shipped.rstrip("\n")
    assert json.loads(dash["data"]["klambda.json"])["uid"] == "klambda-functions"


def test_kind_config_maps_the_routers_node_ports_to_the_host() -> None:
    kind = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    mappings = {
        m["containerPort"]: m["hostPort"]
        for node in kind["nodes"]
        for m in node.get("extraPortMappings", [])
    }
    service = one(render("-f", str(KIND_VALUES)), "Service", "-router")
    assert service["spec"]["type"] == "NodePort"
    host = {p["name"]: mappings[p["nodePort"]] for p in service["spec"]["ports"]}
    # not 8080 and 50051: those are `klambda up`'s, and both may run at once
    assert host == {"http": 30080, "grpc": 30051}
    assert kind["networking"]["apiServerPort"] not in (8080, 50051, *host.values())


def test_kind_config_keeps_the_cluster_inside_the_benchmarking_range() -> None:
    kind = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    net = kind["networking"]
    ours = ipaddress.ip_network("198.18.0.0/15")
    pods, services = (ipaddress.ip_network(net[k]) for k in ("podSubnet", "serviceSubnet"))
    taken = [
        ipaddress.ip_network("198.18.0.0/16"),  # docker0 (198.18.200.0/24), tests/netns.py's /30s
        ipaddress.ip_network("198.19.1.0/24"),  # the docker network "kind"
    ]
    for subnet in (pods, services):
        assert subnet.subnet_of(ours)
        assert not any(subnet.overlaps(t) for t in taken), subnet
    assert not pods.overlaps(services)


def test_network_policies_let_only_the_router_reach_workers_and_nats() -> None:
    docs = render("--set", "functions.namespace=team-a")
    router_pod = one(docs, "Deployment", "-router")["spec"]["template"]["metadata"]["labels"]
    workers = [
        d
        for d in by_kind(docs, "NetworkPolicy")
        if d["metadata"]["name"].endswith(("-workers", "-pool"))
    ]
    assert [d["metadata"]["namespace"] for d in workers] == ["team-a", "team-a"]
    # a version's pods, and the warm pool's pods before a router claims them
    selected = {e["key"] for d in workers for e in d["spec"]["podSelector"]["matchExpressions"]}
    assert selected == {"klambda.io/function", "klambda.io/pool"}
    for policy in workers:
        spec = policy["spec"]
        [expression] = spec["podSelector"]["matchExpressions"]
        assert expression["operator"] == "Exists"
        assert spec["policyTypes"] == ["Ingress"]
        [rule] = spec["ingress"]
        [peer] = rule["from"]
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "klambda"
        }
        assert peer["podSelector"]["matchLabels"].items() <= router_pod.items()
    nats = one(docs, "NetworkPolicy", "-nats")
    [rule] = nats["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"].items() <= router_pod.items()


def test_the_pool_settings_reach_the_operator() -> None:
    docs = render(
        "--set", "pool.size=5", "--set", "pool.memoryMB=512", "--set", "pool.cpuMillicores=400"
    )
    env = one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]["env"]
    values = {e["name"]: e.get("value") for e in env}
    assert values["KLAMBDA_OPERATOR_POOL_SIZE"] == "5"
    assert values["KLAMBDA_OPERATOR_POOL_MEMORY_MB"] == "512"
    assert values["KLAMBDA_OPERATOR_POOL_CPU_MILLICORES"] == "400"
    assert "KLAMBDA_OPERATOR_POOL_CPU_MILLICORES" in {
        e["name"]
        for e in one(render(), "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
    }
    refused = helm("template", "kl", str(CHART), "--set", "pool.memoryMB=64", check=False)
    assert refused.returncode != 0
    assert "memoryMB" in refused.stderr


def test_the_workers_cpu_reaches_the_operator_within_its_bounds() -> None:
    def env(*args: str) -> dict[str, str | None]:
        container = one(render(*args), "Deployment", "-operator")["spec"]["template"]["spec"]
        return {e["name"]: e.get("value") for e in container["containers"][0]["env"]}

    assert env()["KLAMBDA_OPERATOR_WORKER_CPU_MILLICORES"] == "100"
    given = env("--set", "functions.workerCpuMillicores=250")
    assert given["KLAMBDA_OPERATOR_WORKER_CPU_MILLICORES"] == "250"
    for bad in ("0", "6001"):
        refused = helm(
            "template",
            "kl",
            str(CHART),
            "--set",
            f"functions.workerCpuMillicores={bad}",
            check=False,
        )
        assert refused.returncode != 0
        assert "workerCpuMillicores" in refused.stderr


@pytest.mark.parametrize(
    ("values", "image"),
    [
        ((), "klambda/pgbouncer:0.1.0"),
        (
            ("--set", "image.registry=reg.example", "--set", "image.tag=v9"),
            "reg.example/klambda/pgbouncer:v9",
        ),
        (("--set", "operator.dbProxyImage=mine/pgbouncer:1.23"), "mine/pgbouncer:1.23"),
    ],
)
def test_the_database_proxy_image_reaches_the_operator(values: tuple[str, ...], image: str) -> None:
    docs = render(*values)
    env = one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e.get("value") for e in env}["KLAMBDA_OPERATOR_DB_PROXY_IMAGE"] == image


def test_no_secret_but_the_stores_and_no_wildcard_rule() -> None:
    docs = render(*FULL, *WITH_APIS, "--set", "operator.peering=true")
    # one Secret: the store's credentials, its password made at install (kept on upgrade),
    # never a value of the chart's
    (secret,) = by_kind(docs, "Secret")
    assert secret["metadata"]["name"] == "t-klambda-store"
    again = render(*FULL, *WITH_APIS, "--set", "operator.peering=true")
    assert one(again, "Secret", "-store")["data"]["secretKey"] != secret["data"]["secretKey"]
    for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (role["metadata"]["name"], rule)
            if "secrets" in rule["resources"]:  # the router's access keys, and only those
                assert role["metadata"]["name"].endswith("-router"), role["metadata"]["name"]
                assert rule == {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": ["klambda-access-keys"],
                    "verbs": ["get"],
                }


def test_no_template_is_left_unused(tmp_path: Path) -> None:
    """Every template renders something with everything on (no dead files)."""
    everything = (*FULL, *WITH_APIS, *ROUTES, "--api-versions", GATEWAY_API)
    docs = render(*everything)
    sources = {Path(p).name for p in (CHART / "templates").glob("*.yaml")}
    out = helm(
        "template", "t", str(CHART), "--kube-version", "1.34.0", *everything, "--debug"
    ).stdout
    rendered = {
        line.split("/templates/")[1].strip()
        for line in out.splitlines()
        if line.startswith("# Source:")
    }
    assert sources == rendered, sources ^ rendered
    assert docs


def test_the_log_engine_on_request() -> None:
    assert not [d for d in render() if d["metadata"]["name"].endswith("-logs")]
    docs = render("--set", "logs.engine.enabled=true", "--set", "logs.engine.retentionPeriod=7d")
    engine = one(docs, "StatefulSet", "-logs")
    [container] = engine["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "victoria-logs",
        "-httpListenAddr=:9428",
        "-storageDataPath=/data",
        "-retentionPeriod=7d",
        "-delete.enable",
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    service = one(docs, "Service", "-logs")
    assert service["spec"]["ports"][0]["port"] == 9428
    url = "http://t-klambda-logs.klambda.svc:9428"
    specs = pod_specs(docs)
    router_env = {
        e["name"]: e.get("value") for e in specs["t-klambda-router"]["containers"][0]["env"]
    }
    operator_env = {
        e["name"]: e.get("value") for e in specs["t-klambda-operator"]["containers"][0]["env"]
    }
    assert router_env["KLAMBDA_LOG_ENGINE_URL"] == url
    assert operator_env["KLAMBDA_OPERATOR_LOG_ENGINE_URL"] == url
    assert one(docs, "NetworkPolicy", "-logs")["spec"]["ingress"][0]["ports"] == [
        {"port": "http", "protocol": "TCP"}
    ]


def test_an_external_log_engine_and_bad_retention() -> None:
    docs = render("--set", "logs.engine.externalUrl=http://vl.example:9428")
    assert not [d for d in docs if d["metadata"]["name"].endswith("-logs")]
    env = pod_specs(docs)["t-klambda-router"]["containers"][0]["env"]
    assert {"name": "KLAMBDA_LOG_ENGINE_URL", "value": "http://vl.example:9428"} in env
    out = helm(
        "template", "t", str(CHART), "--set", "logs.engine.retentionPeriod=forever", check=False
    )
    assert out.returncode != 0
    assert "retentionPeriod" in out.stderr
