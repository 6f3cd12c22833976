"""A shared file system (EFS's role): a ReadWriteMany claim mounted into the pods of two
functions, each of which sees what the other wrote.

The claim is bound to a hostPath PersistentVolume of the one node (kind has no shared
storage class; on a real cluster it would be NFS, EFS or CephFS): the PV is what a cluster
administrator provides, the Functions only name the claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, Cluster, wait_for

APP = """\
import os, socket

def handler(event, context):
    path = os.path.join("/mnt/shared", event["file"])
    if event.get("write"):
        with open(path, "w") as f:
            f.write(event["write"])
    with open(path) as f:
        return {"read": f.read(), "host": socket.gethostname()}
"""


def _function(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": "python3.11",
            "handler": "app.handler",
            "timeoutSeconds": 10,
            "fileSystemConfigs": [{"claimName": "shared-fs", "localMountPath": "/mnt/shared"}],
            "code": {"inline": {"app.py": APP}},
        },
    }


@pytest.fixture
def claim(cluster: Cluster) -> Iterator[str]:
    folder = f"/var/klambda-shared-{uuid.uuid4().hex[:8]}"
    # writable by the functions' uid (10001): a hostPath gets no fsGroup
    cluster.on_node("mkdir", "-m", "0777", "-p", folder)
    pv = f"klambda-shared-{uuid.uuid4().hex[:8]}"
    objects = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": folder, "type": "Directory"},
                "claimRef": {"namespace": FUNCTIONS_NAMESPACE, "name": "shared-fs"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "shared-fs", "namespace": FUNCTIONS_NAMESPACE},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps({"kind": "List", "apiVersion": "v1",
                                                         "items": objects}))  # fmt: skip
    yield pv
    cluster.kubectl("delete", "functions", "-n", FUNCTIONS_NAMESPACE, "--ignore-not-found",
                    "--wait=false", "fs-writer", "fs-reader", check=False)  # fmt: skip
    cluster.kubectl("delete", "pvc", "shared-fs", "-n", FUNCTIONS_NAMESPACE, "--wait=false",
                    check=False)  # fmt: skip
    cluster.kubectl("delete", "pv", pv, "--wait=false", check=False)
    cluster.on_node("rm", "-rf", folder)


def test_two_functions_share_a_read_write_many_claim(cluster: Cluster, claim: str) -> None:
    for name in ("fs-writer", "fs-reader"):
        cluster.kubectl("apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-",
                        stdin=json.dumps(_function(name)))  # fmt: skip

    def answer(function: str, event: dict[str, str]) -> dict[str, Any] | None:
        status, _headers, body = cluster.invoke(function, event)
        got = json.loads(body or b"null")
        return got if status == 200 and isinstance(got, dict) and "read" in got else None

    wrote = wait_for(
        "fs-writer to write",
        lambda: answer("fs-writer", {"file": "a.txt", "write": "from the writer"}),
        timeout=240,
        interval=3,
    )
    read = wait_for(
        "fs-reader to read", lambda: answer("fs-reader", {"file": "a.txt"}), timeout=240, interval=3
    )
    assert read["read"] == "from the writer"
    assert read["host"] != wrote["host"]  # two pods, one file system
    status, _headers, body = cluster.invoke("fs-reader", {"file": "b.txt", "write": "and back"})
    assert status == 200, body
    status, _headers, body = cluster.invoke("fs-writer", {"file": "b.txt"})
    assert status == 200, body
    assert json.loads(body) == {"read": "and back", "host": wrote["host"]}
