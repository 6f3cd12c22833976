"""Triggers in cluster mode against a real API server, as local mode serves them: the
routes and topics declared in the `events:` of Functions applied to the API server, served
by a cluster router that forwards to real `klambda worker` processes on the test network
host. The checks are local mode's (tests/integration/triggers), called on the cluster
router; an HTTP API event is also compared whole with the one a local router builds."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from klambda.testing import RouterRunner, eventually

from tests.helpers import ROOT
from tests.integration.cluster.test_cluster_router import (
    apply,
    cluster_router,
    endpoint_slice,
    worker,
)
from tests.integration.queue.natsserver import nats_server
from tests.integration.triggers import test_http_api, test_topics
from tests.integration.triggers.test_http_api import (
    binary_body_event,
    check_not_found,
    check_payload_format_1,
    request,
    route_event,
)
from tests.kube.controlplane import ControlPlane
from tests.netns import network_host


def install_crds(plane: ControlPlane) -> None:
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/functions.klambda.io",
    )  # fmt: skip


def manifest(documents: str, name: str) -> dict[str, Any]:
    """The Function `name` of a multi-document manifest."""
    for doc in yaml.safe_load_all(documents):
        if doc["metadata"]["name"] == name:
            found: dict[str, Any] = doc
            return found
    raise LookupError(name)


def source(fn: dict[str, Any]) -> str:
    code: str = fn["spec"]["code"]["inline"]["app.py"]
    return code


# what differs between two requests, or two routers: who answered, when, the request id
PER_REQUEST = {"requestId", "time", "timeEpoch", "domainName", "domainPrefix"}


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in event["headers"].items() if k != "host"}
    context = {k: v for k, v in event["requestContext"].items() if k not in PER_REQUEST}
    return {**event, "headers": headers, "requestContext": context}


def test_http_api_routes_on_a_cluster_router(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    install_crds(plane)
    items = manifest(test_http_api.FUNCTIONS, "items")
    apply(plane, ns, items)
    local = tmp_path / "local"
    (local / "fns").mkdir(parents=True)
    (local / "fns" / "items.yaml").write_text(yaml.safe_dump(items))
    with (
        network_host() as host,
        worker(host, tmp_path, "$LATEST", "", source=source(items), function="items") as port,
        cluster_router(plane, ns, tmp_path) as r,
        RouterRunner.up(local / "fns", "-q", workdir=local) as here,
    ):
        apply(plane, ns, endpoint_slice("$LATEST", host.address, port, function="items"))
        eventually(
            lambda: request(r, "GET", "/http/items/1")[0] == 200, "the route GET /items/{id}"
        )

        event = route_event(r)
        assert comparable(event) == comparable(route_event(here))
        event = binary_body_event(r)
        assert comparable(event) == comparable(binary_body_event(here))
        check_payload_format_1(r)
        check_not_found(r)

        assert r.metric("klambda_trigger_events_total", trigger="getItem", type="HttpApi") >= 1
        assert (
            r.metric("klambda_trigger_http_responses_total", trigger="getItem", status_class="2xx")
            >= 1
        )
        # the routes follow the API server: a deleted Function's are gone
        plane.kubectl("delete", "function", "items", "-n", ns)
        eventually(
            lambda: request(r, "GET", "/http/items/1")[::2] == (404, b'{"message": "Not Found"}'),
            "GET /items/{id} gone with its function",
        )


# test_topics' functions, but billing tells what it received in its log: a worker's
# environment runs sandboxed (its own uid, a private /tmp) and cannot reach the test's files
BILLING = """\
import json
def handler(event, context):
    print("billing received " + json.dumps(event["Records"][0]["Sns"]))
"""
SAW = "billing received "
WARM = {"Records": [{"Sns": {}}]}


ORDERS = "/klambda/v1/topics/orders/messages"


def subscriptions(r: RouterRunner) -> list[dict[str, Any]]:
    topics = test_topics.get(r, "/klambda/v1/topics")["Topics"]
    return [s for t in topics if t["Name"] == "orders" for s in t["Subscriptions"]]


def received(log: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line.split(SAW, 1)[1])
        for line in log.read_text(errors="replace").splitlines()
        if SAW in line
    ]


def test_topic_fans_out_to_worker_pods(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    install_crds(plane)
    documents = test_topics.FUNCTIONS.format(seen="unused")
    billing, audit = manifest(documents, "billing"), manifest(documents, "audit")
    billing["spec"]["code"]["inline"]["app.py"] = BILLING
    del billing["spec"]["environment"]
    apply(plane, ns, billing)
    apply(plane, ns, audit)
    (tmp_path / "nats").mkdir()
    with nats_server(tmp_path / "nats") as nats:
        router = cluster_router(plane, ns, tmp_path)
        tag = uuid.uuid4().hex[:10]
        queue = f"{nats.url}?stream_prefix=S{tag.upper()}&subject_prefix=s{tag}"
        router.env["KLAMBDA_QUEUE_URL"] = queue
        with (
            network_host() as host,
            worker(host, tmp_path, "$LATEST", "", source=BILLING, function="billing") as p1,
            worker(host, tmp_path, "$LATEST", "", source=source(audit), function="audit") as p2,
            router as r,
        ):
            apply(plane, ns, endpoint_slice("$LATEST", host.address, p1, function="billing"))
            apply(plane, ns, endpoint_slice("$LATEST", host.address, p2, function="audit"))
            # both served, so that no subscriber's event waits for the router to learn its pod
            eventually(lambda: r.invoke("billing", WARM)[0] == 200, "billing served")
            eventually(lambda: r.invoke("audit")[0] == 200, "audit served")
            log = tmp_path / "worker-billing-$LATEST.log"
            warmed = len(received(log))

            test_topics.check_fan_out(r, lambda: received(log)[warmed:])

            # the subscriptions follow the API server: audit's goes with its function
            plane.kubectl("delete", "function", "audit", "-n", ns)
            eventually(
                lambda: [s["Function"] for s in subscriptions(r)] == ["billing"],
                "only billing subscribed to orders",
            )
            status, out = test_topics.post(r, ORDERS, test_topics.PAID)
            assert (status, out["Delivered"], out["Filtered"]) == (200, 1, 0)
            eventually(lambda: len(received(log)) == warmed + 2, "billing's second order")
            plane.kubectl("delete", "function", "billing", "-n", ns)
            eventually(lambda: subscriptions(r) == [], "no subscriber left")
            status, err = test_topics.post(r, ORDERS, test_topics.PAID)
            assert status == 404
            assert "orders" in err["message"]
