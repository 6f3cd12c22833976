"""Schedules in cluster mode against a real API server: of two routers, the one holding the
schedules' Lease fires each tick of `rate(1 minute)`, once; routers restarted inside the
minute fire nothing more, since the Lease's annotation records the tick; the next tick is
fired once again."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from klambda import contract
from klambda.testing import RouterRunner, eventually

from tests.helpers import ROOT
from tests.integration.cluster.test_cluster_router import apply, cluster_router, function_spec
from tests.integration.queue.natsserver import nats_server
from tests.kube.controlplane import ControlPlane

LEASE_S = 6


def fired(routers: list[RouterRunner]) -> float:
    return sum(r.metric("klambda_trigger_events_total", trigger="everyMinute") for r in routers)


def last_fire(r: RouterRunner) -> str | None:
    url = r.url + "/klambda/v1/triggers?function=ticker"
    with urllib.request.urlopen(url, timeout=10) as resp:
        (state,) = json.loads(resp.read())["Triggers"]
    value = state.get("lastFire")
    return None if value is None else str(value)


def lease(plane: ControlPlane, ns: str) -> dict[str, Any]:
    value: dict[str, Any] = plane.get_json("lease", contract.SCHEDULE_LEASE, "-n", ns)
    return value


def lease_ticks(plane: ControlPlane, ns: str) -> dict[str, float]:
    annotations = lease(plane, ns)["metadata"].get("annotations") or {}
    ticks: dict[str, float] = json.loads(annotations.get(contract.ANNOTATION_SCHEDULE_TICKS, "{}"))
    return ticks


def test_two_routers_fire_each_tick_once_and_restarts_fire_it_no_more(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/functions.klambda.io",
    )  # fmt: skip
    spec = {
        **function_spec(),
        "events": {"everyMinute": {"type": "Schedule", "schedule": "rate(1 minute)"}},
    }
    apply(
        plane,
        ns,
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": "ticker"},
            "spec": spec,
        },
    )
    (tmp_path / "nats").mkdir()
    with nats_server(tmp_path / "nats") as nats:
        tag = uuid.uuid4().hex[:10]
        env = {
            "KLAMBDA_QUEUE_URL": f"{nats.url}?stream_prefix=S{tag.upper()}&subject_prefix=s{tag}",
            "KLAMBDA_SCHEDULE_LEASE_SECONDS": str(LEASE_S),
        }

        def router() -> RouterRunner:
            r = cluster_router(plane, ns, tmp_path)
            r.env.update(env)
            return r

        # start early in a minute, so that the restarts below happen inside the first tick's
        while not 5 < time.time() % 60 < 40:
            time.sleep(0.5)
        with router() as a, router() as b:
            eventually(lambda: fired([a, b]) >= 1, "the first tick", timeout=80, interval=0.5)
            tick_at = time.time()
            time.sleep(2)  # a second router firing the same tick would have done so by now
            assert fired([a, b]) == 1
            tick = eventually(lambda: last_fire(a) or last_fire(b), "lastFire")
            assert tick.endswith(":00Z")
            ticks = lease_ticks(plane, ns)
            assert list(ticks) == ["ticker/everyMinute"]
            first = ticks["ticker/everyMinute"]
            assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first)) == tick
            assert lease(plane, ns)["spec"].get("holderIdentity")
        # both stopped (the holder released the Lease): two new routers, the same minute
        with router() as c, router() as d:
            eventually(
                lambda: lease(plane, ns)["spec"].get("holderIdentity"),
                "a new router to hold the schedules",
                timeout=3 * LEASE_S,
            )
            time.sleep(LEASE_S)
            assert time.time() - tick_at < 55, "the restarts took too long to test the minute"
            assert fired([c, d]) == 0
            assert lease_ticks(plane, ns)["ticker/everyMinute"] == first
            # the next tick, once, by whichever holds the Lease now
            eventually(lambda: fired([c, d]) >= 1, "the next tick", timeout=75, interval=0.5)
            time.sleep(2)
            assert fired([c, d]) == 1
            assert lease_ticks(plane, ns)["ticker/everyMinute"] == first + 60
