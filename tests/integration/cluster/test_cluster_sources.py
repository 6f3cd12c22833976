"""Event source mappings in cluster mode against a real API server and a real nats-server:
a Queue, a Stream and their EventSourceMappings applied as objects, messages and records
sent to either of two cluster routers, polled by the one router that holds the routers'
Lease and handed to a real `klambda worker` on the test network host; a third mapping reads
a real PostgreSQL's row changes (its replication slot used by the holder only). Every
message, record and row change is handled once, the rows in commit order; the holder writes
each mapping's state into its status (what `kubectl get esm` shows); the other router
answers that the mapping is polled elsewhere, and takes over when the holder stops."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from klambda import contract
from klambda.router.pollers import STANDBY
from klambda.testing import RouterRunner, eventually

from tests.integration.cluster.test_cluster_router import (
    apply,
    cluster_router,
    endpoint_slice,
    function_spec,
    worker,
)
from tests.integration.cluster.test_cluster_triggers import install_crds
from tests.integration.queue.natsserver import nats_server
from tests.integration.sources.pgserver import PostgresServer, postgres_server
from tests.kube.controlplane import ControlPlane
from tests.netns import network_host

LEASE_S = 4
SAW = "took "
# the worker's environment is sandboxed (its own uid and /tmp): what it handled is told in
# its log, which the worker writes to the test's file
CODE = """\
import base64, json
def handler(event, context):
    for r in event["Records"]:
        if "body" in r:
            print("took " + json.dumps({"queue": r["body"]}))
        elif "dynamodb" in r:
            print("took " + json.dumps({"row": r["dynamodb"]["NewImage"]["id"]["N"]}))
        else:
            print("took " + json.dumps({"stream": base64.b64decode(r["kinesis"]["data"]).decode()}))
    return {}
"""


def objects(dsn: str) -> list[dict[str, Any]]:
    def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": contract.API_VERSION, "kind": kind, "metadata": {"name": name},
                "spec": spec}  # fmt: skip

    return [
        obj("Function", "process", function_spec()),
        obj("Queue", "orders", {"visibilityTimeoutSeconds": 10}),
        obj("Stream", "clicks", {"shardCount": 2}),
        obj("EventSourceMapping", "orders-to-process",
            {"function": "process", "source": {"queue": "orders"}, "batchSize": 5}),
        obj("EventSourceMapping", "clicks-to-process",
            {"function": "process", "source": {"stream": "clicks"},
             "startingPosition": "TRIM_HORIZON", "batchSize": 5}),
        obj("EventSourceMapping", "orders-changes",
            {"function": "process", "startingPosition": "TRIM_HORIZON", "batchSize": 5,
             "source": {"postgres": {"dsn": dsn, "tables": ["public.orders"]}}}),
    ]  # fmt: skip


def post(r: RouterRunner, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(r.url + path, method="POST", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def mappings(r: RouterRunner) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(r.url + "/klambda/v1/event-source-mappings", timeout=10) as resp:
        rows = json.loads(resp.read())["EventSourceMappings"]
    return {m["Name"]: m for m in rows}


def send(r: RouterRunner, n: int, pg: PostgresServer) -> None:
    status, _ = post(r, "/klambda/v1/work-queues/orders/messages", {"MessageBody": f"m{n}"})
    assert status == 200
    data = base64.b64encode(f"r{n}".encode()).decode()
    status, _ = post(r, "/klambda/v1/streams/clicks/records",
                     {"PartitionKey": f"k{n % 3}", "Data": data})  # fmt: skip
    assert status == 200
    pg.sql(f"INSERT INTO orders VALUES ({n})")


def test_the_lease_holder_polls_queues_and_streams_and_reports_in_status(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    install_crds(plane)
    (tmp_path / "nats").mkdir()
    with nats_server(tmp_path / "nats") as nats, postgres_server() as pg, network_host() as host:
        pg.sql("CREATE TABLE orders (id int PRIMARY KEY)")
        for obj in objects(pg.dsn):
            apply(plane, ns, obj)
        tag = uuid.uuid4().hex[:10]
        env = {
            "KLAMBDA_QUEUE_URL": f"{nats.url}?stream_prefix=S{tag.upper()}&subject_prefix=s{tag}",
            "KLAMBDA_SCHEDULE_LEASE_SECONDS": str(LEASE_S),
        }

        def router() -> RouterRunner:
            r = cluster_router(plane, ns, tmp_path)
            r.env.update(env)
            return r

        log = tmp_path / "worker-process-$LATEST.log"

        def took() -> list[dict[str, str]]:
            text = log.read_text(errors="replace") if log.exists() else ""
            return [json.loads(x.split(SAW, 1)[1]) for x in text.splitlines() if SAW in x]

        def holder() -> str | None:
            lease = plane.get_json("lease", contract.SCHEDULE_LEASE, "-n", ns)
            return lease["spec"].get("holderIdentity") or None

        with worker(host, tmp_path, "$LATEST", "", source=CODE, function="process") as port:
            apply(plane, ns, endpoint_slice("$LATEST", host.address, port, function="process"))
            a, b = router(), router()
            with a, b:
                eventually(lambda: a.invoke("process", {"Records": []})[0] == 200, "served")
                eventually(holder, "a router to hold the Lease", timeout=4 * LEASE_S)
                for n in range(20):
                    send(a if n % 2 else b, n, pg)

                def all_taken() -> bool:
                    got = took()
                    return len(got) >= 60

                eventually(all_taken, "the twenty messages, records and rows", timeout=60)
                got = took()
                assert sorted(x["queue"] for x in got if "queue" in x) == sorted(
                    f"m{n}" for n in range(20)
                )
                assert sorted(x["stream"] for x in got if "stream" in x) == sorted(
                    f"r{n}" for n in range(20)
                )
                # the rows in commit order
                assert [x["row"] for x in got if "row" in x] == [str(n) for n in range(20)]
                # one router polls: the other says so
                states = [mappings(a), mappings(b)]
                polling = [s for s in states if s["orders-to-process"]["Records"]]
                standing = [s for s in states if not s["orders-to-process"]["Records"]]
                assert len(polling) == len(standing) == 1, states
                assert standing[0]["orders-to-process"]["StateTransitionReason"] == STANDBY
                assert standing[0]["clicks-to-process"]["StateTransitionReason"] == STANDBY
                assert polling[0]["orders-to-process"]["Records"] == {"succeeded": 20}
                assert polling[0]["clicks-to-process"]["Records"] == {"succeeded": 20}
                assert standing[0]["orders-changes"]["StateTransitionReason"] == STANDBY

                # the holder writes the mappings' state into their status
                def status(name: str) -> dict[str, Any] | None:
                    obj = plane.get_json("eventsourcemappings", name, "-n", ns)
                    s: dict[str, Any] = obj.get("status") or {}
                    return s if s.get("lastProcessingResult") == "OK" else None

                for name in ("orders-to-process", "clicks-to-process", "orders-changes"):
                    s = eventually(lambda n=name: status(n), f"{name}'s status")  # type: ignore[misc]
                    assert s["state"] == "Enabled"
                    assert s["lastModified"]
                columns = plane.kubectl("get", "esm", "-n", ns).stdout
                assert "orders-to-process" in columns
                assert "OK" in columns

                # the holder stops (releasing the Lease): the other router goes on
                first, other = (a, b) if polling[0] is states[0] else (b, a)
                first.stop()
                for n in range(20, 30):
                    send(other, n, pg)
                eventually(lambda: len(took()) >= 90, "the next ten of each", timeout=60)
                after = took()
                assert len(after) == 90, "a message, record or row was handled twice"
                assert [x["row"] for x in after if "row" in x] == [str(n) for n in range(30)]
                now = mappings(other)
                assert now["orders-to-process"]["StateTransitionReason"] is None
                assert now["clicks-to-process"]["Records"] == {"succeeded": 10}
