"""The command line's way into a cluster's store of code and layers (the chart's MinIO).

A layer, or code larger than a ConfigMap holds, is written to the store as a .zip under
its digest (`layers/<sha256>.zip`, `code/<sha256>.zip`: the operator's keys) with the
store's credentials, read from its Secret (so it takes a kubeconfig allowed to read the
Secrets of klambda's namespace: an administrator's). The store is reached through
`kubectl port-forward` to its Service, as the command lines of Fission and OpenFaaS reach
their clusters, or at `KLAMBDA_STORE_ENDPOINT` when it is exposed. Why kubectl:
lightkube has no port-forward, and the API server's service proxy rewrites the path
that an S3 signature covers.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from types import TracebackType
from typing import Any

from klambda import codestore, contract

SYSTEM_NAMESPACE_ENV = "KLAMBDA_SYSTEM_NAMESPACE"
SYSTEM_NAMESPACE = "klambda"  # where `make cluster` installs the chart
SERVICE = "klambda-store"  # the chart's `<fullname>-store`, for the release `klambda`
BUCKET = "klambda"
FORWARD_WAIT_S = 20.0


class StoreError(Exception):
    """The store cannot be reached or written; the message says which and why."""


class StoreUpload:
    """`with StoreUpload(kubeconfig) as store: key = store.put("layers", data)`."""

    def __init__(self, kubeconfig: str, namespace: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace or os.environ.get(SYSTEM_NAMESPACE_ENV, SYSTEM_NAMESPACE)
        self.service = os.environ.get("KLAMBDA_STORE_SERVICE", SERVICE)
        self.bucket = os.environ.get("KLAMBDA_STORE_BUCKET", BUCKET)
        self._forward: subprocess.Popen[str] | None = None
        self._client: Any = None

    def __enter__(self) -> StoreUpload:
        access, secret = self._credentials()
        endpoint = os.environ.get("KLAMBDA_STORE_ENDPOINT") or self._port_forward()
        import botocore.config
        import botocore.session

        self._client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=botocore.config.Config(s3={"addressing_style": "path"}, read_timeout=300),
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._forward is not None:
            self._forward.terminate()
            try:
                self._forward.wait(5)
            except subprocess.TimeoutExpired:
                self._forward.kill()

    def _credentials(self) -> tuple[str, str]:
        from lightkube import ApiError, Client, KubeConfig
        from lightkube.resources.core_v1 import Secret

        client = Client(config=KubeConfig.from_file(self.kubeconfig))
        try:
            data = client.get(Secret, self.service, namespace=self.namespace).data or {}
        except ApiError as err:
            raise StoreError(
                f"Secret {self.namespace}/{self.service} (the store's credentials): "
                f"{err.status.message}; is the chart installed with store.enabled, in "
                f"namespace {self.namespace} (${SYSTEM_NAMESPACE_ENV})?"
            ) from None
        try:
            return (
                base64.b64decode(data["accessKey"]).decode(),
                base64.b64decode(data["secretKey"]).decode(),
            )
        except KeyError as err:
            raise StoreError(f"Secret {self.namespace}/{self.service} has no {err}") from None

    def _port_forward(self) -> str:
        kubectl = os.environ.get("KLAMBDA_KUBECTL") or shutil.which("kubectl")
        if not kubectl:
            raise StoreError(
                "kubectl is not on PATH: it forwards a port to the store "
                "(or set KLAMBDA_STORE_ENDPOINT to the store's URL)"
            )
        self._forward = subprocess.Popen(
            [
                kubectl,
                "--kubeconfig",
                self.kubeconfig,
                "-n",
                self.namespace,
                "port-forward",
                f"svc/{self.service}",
                ":9000",
                "--address",
                "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + FORWARD_WAIT_S
        assert self._forward.stdout is not None
        while time.monotonic() < deadline:
            line = self._forward.stdout.readline()
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
            if found:
                return f"http://127.0.0.1:{found.group(1)}"
            if not line and self._forward.poll() is not None:
                break
        self._forward.kill()
        assert self._forward.stderr is not None
        why = self._forward.stderr.read().strip() or "no port within 20 s"
        raise StoreError(f"kubectl port-forward svc/{self.service} -n {self.namespace}: {why}")

    def put(self, kind: str, data: bytes) -> str:
        """Write a .zip under its digest (nothing when it is there); its key."""
        import botocore.exceptions

        codestore.zip_facts(data)  # a .zip, with no entry outside its root
        key = contract.object_key(kind, data)
        try:
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
                return key
            except botocore.exceptions.ClientError as err:
                if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError:
                self._client.create_bucket(Bucket=self.bucket)
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/zip"
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
            raise StoreError(f"writing {key} to the store: {err}") from None
        return key
