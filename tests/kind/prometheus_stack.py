"""prometheus-operator and a Prometheus in the kind cluster, as a user's monitoring stack.

What kube-prometheus-stack gives a user, reduced to its parts: the monitoring.coreos.com
CRDs, prometheus-operator (its own ClusterRole) and one `Prometheus` that selects
ServiceMonitors and PrometheusRules by a label in every namespace. The binaries, images,
CRDs and ClusterRoles are built and copied by ``scripts/cluster/images.sh --monitoring``
(prometheus-operator and Prometheus from the Go module proxy); the objects below are
built here as plain dicts and applied with kubectl.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "monitoring"
PROMETHEUS = "main"  # the Prometheus object; its pod is prometheus-main-0
#: the label the chart's ServiceMonitor and PrometheusRule carry for this Prometheus
SELECTOR = {"release": "klambda-monitoring"}
#: scrape and rule evaluation, short so that the test sees its traffic within seconds
INTERVAL = "2s"

_OPERATOR_LABELS = {"app.kubernetes.io/name": "prometheus-operator"}
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def _service_account(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": NAMESPACE},
    }


def _binding(name: str) -> dict[str, Any]:
    """The ClusterRole of the same name (the operator's module's) to the ServiceAccount."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
    }


def operator(image: str, reloader_image: str) -> list[dict[str, Any]]:
    """prometheus-operator's ServiceAccount, binding and Deployment (as its own example)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "prometheus-operator", "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _OPERATOR_LABELS},
            "template": {
                "metadata": {"labels": _OPERATOR_LABELS},
                "spec": {
                    "serviceAccountName": "prometheus-operator",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "prometheus-operator",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": [
                                f"--prometheus-config-reloader={reloader_image}",
                                "--log-level=info",
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                            "securityContext": _RESTRICTED_CONTAINER,
                        }
                    ],
                },
            },
        },
    }
    return [_service_account("prometheus-operator"), _binding("prometheus-operator"), deployment]


def prometheus(image: str, version: str) -> list[dict[str, Any]]:
    """A Prometheus selecting, in every namespace, the ServiceMonitors and PrometheusRules
    labelled SELECTOR (kube-prometheus-stack selects by its release label the same way)."""
    every_namespace: dict[str, Any] = {}
    spec = {
        "image": image,
        "version": version,
        "imagePullPolicy": "Never",
        "replicas": 1,
        "serviceAccountName": "prometheus",
        # Endpoints is deprecated since Kubernetes 1.33
        "serviceDiscoveryRole": "EndpointSlice",
        "scrapeInterval": INTERVAL,
        "evaluationInterval": INTERVAL,
        "serviceMonitorSelector": {"matchLabels": SELECTOR},
        "serviceMonitorNamespaceSelector": every_namespace,
        "ruleSelector": {"matchLabels": SELECTOR},
        "ruleNamespaceSelector": every_namespace,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "fsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "namespace": NAMESPACE},
        "spec": spec,
    }
    return [_service_account("prometheus"), _binding("prometheus"), resource]


def chart_values(throttled_for: str) -> list[str]:
    """`helm upgrade --set`s that turn on the chart's ServiceMonitor and PrometheusRule for
    this Prometheus, with KlambdaFunctionThrottled's `for` shortened."""
    (key, value), *_ = SELECTOR.items()
    return [
        "monitoring.serviceMonitor.enabled=true",
        f"monitoring.serviceMonitor.labels.{key}={value}",
        f"monitoring.serviceMonitor.interval={INTERVAL}",
        f"monitoring.serviceMonitor.scrapeTimeout={INTERVAL}",
        "monitoring.prometheusRule.enabled=true",
        f"monitoring.prometheusRule.labels.{key}={value}",
        f"monitoring.prometheusRule.overrides.KlambdaFunctionThrottled.for={throttled_for}",
    ]


CHART_DEFAULTS = [
    "monitoring.serviceMonitor.enabled=false",
    "monitoring.prometheusRule.enabled=false",
]
