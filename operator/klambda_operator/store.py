"""The cluster's store of code and layers: an S3 server (the chart's MinIO), written by the
operator and the command line, read by worker pods.

Objects are content-addressed: `code/<sha256>.zip` and `layers/<sha256>.zip`, the hex
SHA-256 of the .zip's bytes, written once and never changed, so a key is its own check
(a worker verifies what it downloads against the key) and a Version or layer version can
name its exact bytes. A .zip given under any other key (a function's `spec.code.s3Key`, a
Layer's `spec.content.s3Key`) is read once, digested and copied under its digest, as
Lambda copies a function's S3 object at CreateFunction.

The bucket lets anyone get `code/*` and `layers/*` (no listing, no writing): worker pods
run user code, so they hold no credentials of the store; knowing an object's digest is
what it takes to read it. The operator makes the bucket and that policy the first time it
needs the store.

botocore is synchronous: each call runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from klambda import codestore, contract
from klambda.api import limits

from klambda_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

KINDS = (contract.OBJECT_CODE, contract.OBJECT_LAYER)


def object_key(kind: str, sha256_hex: str) -> str:
    """The content-addressed key of a .zip: `code/<hex>.zip` or `layers/<hex>.zip`."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return str(contract.ObjectKey(kind, sha256_hex))


def read_policy(bucket: str) -> dict[str, Any]:
    """Anyone may get the content-addressed objects; nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{kind}/*" for kind in KINDS],
            }
        ],
    }


class StoreError(Exception):
    """The store cannot give what was asked; the message names the key and why."""


@dataclass(frozen=True)
class Stored:
    """A .zip in the store under its digest."""

    key: str
    facts: codestore.ZipFacts


@dataclass
class Store:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    _client: Any = None
    _ready: bool = False
    # facts of objects already read, by (key, ETag): a reconcile does not read them again
    _known: dict[tuple[str, str], codestore.ZipFacts] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> Store | None:
        if not settings.store_endpoint:
            return None
        return cls(
            settings.store_endpoint,
            settings.store_bucket,
            settings.store_access_key,
            settings.store_secret_key,
        )

    def client(self) -> Any:
        if self._client is None:
            import botocore.config
            import botocore.session

            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                config=botocore.config.Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 2},
                    connect_timeout=5,
                    read_timeout=60,
                ),
            )
        return self._client

    async def _call(self, name: str, **kwargs: Any) -> Any:
        import botocore.exceptions

        try:
            return await asyncio.to_thread(getattr(self.client(), name), **kwargs)
        except botocore.exceptions.BotoCoreError as err:  # not there, or not answering
            raise StoreError(f"the store at {self.endpoint}: {err}") from None

    async def ensure_bucket(self) -> None:
        """The bucket and its read policy, made once per process."""
        if self._ready:
            return
        import botocore.exceptions

        try:
            await self._call("head_bucket", Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            log.info("creating the store's bucket %s", self.bucket)
            try:
                await self._call("create_bucket", Bucket=self.bucket)
            except botocore.exceptions.ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        await self._call(
            "put_bucket_policy", Bucket=self.bucket, Policy=json.dumps(read_policy(self.bucket))
        )
        self._ready = True

    async def _head(self, key: str) -> dict[str, Any] | None:
        import botocore.exceptions

        try:
            head: dict[str, Any] = await self._call("head_object", Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    async def _read(self, key: str) -> bytes:
        answer = await self._call("get_object", Bucket=self.bucket, Key=key)
        body = answer["Body"]
        try:
            data: bytes = await asyncio.to_thread(body.read)
        finally:
            body.close()
        return data

    async def put(self, kind: str, data: bytes) -> Stored:
        """Write a .zip under its digest (nothing when it is there already)."""
        try:
            facts = codestore.zip_facts(data)
        except codestore.ZipError as err:
            raise StoreError(str(err)) from None
        import botocore.exceptions

        key = object_key(kind, facts.sha256_hex)
        try:
            await self.ensure_bucket()
            if await self._head(key) is None:
                await self._call(
                    "put_object",
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType="application/zip",
                )
        except botocore.exceptions.ClientError as err:
            raise StoreError(f"{key!r}: {err}") from None
        return Stored(key, facts)

    async def take(self, kind: str, key: str) -> Stored:
        """The .zip at `key`, under its digest: read once (by ETag) and copied there when
        `key` is not that digest's; StoreError naming the key otherwise."""
        import botocore.exceptions

        try:
            await self.ensure_bucket()
            head = await self._head(key)
            if head is None:
                raise StoreError(f"no object {key!r} in bucket {self.bucket}")
            size = int(head.get("ContentLength") or 0)
            if size > limits.UNZIPPED_MAX_BYTES:
                raise StoreError(
                    f"{key!r} takes {size} bytes, more than the {limits.UNZIPPED_MAX_BYTES} "
                    "bytes a function's code and layers may unpack to"
                )
            etag = str(head.get("ETag") or "")
            facts = self._known.get((key, etag))
            if facts is None:
                try:
                    facts = codestore.zip_facts(await self._read(key))
                except codestore.ZipError as err:
                    raise StoreError(f"{key!r} {err}") from None
                self._known[(key, etag)] = facts
            digest_key = object_key(kind, facts.sha256_hex)
            if digest_key != key and await self._head(digest_key) is None:
                await self._call(
                    "copy_object",
                    Bucket=self.bucket,
                    Key=digest_key,
                    CopySource={"Bucket": self.bucket, "Key": key},
                )
        except botocore.exceptions.ClientError as err:
            raise StoreError(f"{key!r}: {err}") from None
        return Stored(digest_key, facts)
