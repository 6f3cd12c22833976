"""A real MinIO server (an S3-compatible server built from the Go module proxy by
scripts/build-minio.sh) on a free loopback port: the cluster's code store, or a bucket
whose notifications go to a webhook (the router's `/klambda/v1/s3/events`). A missing
binary is built, never skipped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from klambda.testing import eventually, free_port, still_running

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "klambda", "klambda-secret"
TARGET = "KLAMBDA"  # the webhook target's id: its ARN is arn:minio:sqs::KLAMBDA:webhook


@dataclass
class MinioServer:
    url: str
    log: Path

    @property
    def target_arn(self) -> str:
        return f"arn:minio:sqs::{TARGET}:webhook"


def _live(url: str) -> bool:
    with urllib.request.urlopen(url + "/minio/health/live", timeout=2) as resp:
        return bool(resp.status == 200)


@contextlib.contextmanager
def minio_server(tmp: Path, webhook: str | None = None) -> Iterator[MinioServer]:
    exe = subprocess.run(
        ["bash", str(ROOT / "scripts/build-minio.sh")],
        capture_output=True, text=True, check=True, timeout=3600,
    ).stdout.strip()  # fmt: skip
    port, console = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / f"minio-{port}.log"
    env = {
        **os.environ,
        "MINIO_ROOT_USER": USER,
        "MINIO_ROOT_PASSWORD": PASSWORD,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    if webhook is not None:
        env[f"MINIO_NOTIFY_WEBHOOK_ENABLE_{TARGET}"] = "on"
        env[f"MINIO_NOTIFY_WEBHOOK_ENDPOINT_{TARGET}"] = webhook
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [exe, "server", str(tmp / "minio-data"), "--address", f"127.0.0.1:{port}",
             "--console-address", f"127.0.0.1:{console}", "--quiet"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        eventually(
            lambda: still_running(proc, log) and _live(url), f"MinIO on port {port}", timeout=60
        )
        yield MinioServer(url, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
