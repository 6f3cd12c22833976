"""The Stream kind: an ordered log of records split into shards (Kinesis's role), that an
EventSourceMapping reads shard by shard, in order.

    apiVersion: klambda.io/v1alpha1
    kind: Stream
    metadata: {name: clicks}
    spec: {shardCount: 2, retentionPeriodHours: 24}

A record goes to the shard its partition key hashes to (Kinesis's rule: the MD5 of the key
in one of `shardCount` equal hash-key ranges), so records with one key stay in order.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from klambda.api.meta import Model, ObjectMeta

STREAM_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
SHARDS_MAX = 64
RETENTION_MIN_H = 24  # Kinesis: 24 hours to 365 days
RETENTION_MAX_H = 8760
RECORD_MAX_BYTES = 1048576  # Kinesis: 1 MiB of data per record
PARTITION_KEY_MAX = 256


class StreamSpec(Model):
    shard_count: int = Field(default=1, ge=1, le=SHARDS_MAX, alias="shardCount")
    retention_period_hours: int = Field(
        default=RETENTION_MIN_H, ge=RETENTION_MIN_H, le=RETENTION_MAX_H,
        alias="retentionPeriodHours",
    )  # fmt: skip


class StreamStatus(Model):
    state: Literal["Active", "Failed"] = "Active"
    reason: str | None = None


class Stream(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Stream"] = "Stream"
    metadata: ObjectMeta
    spec: StreamSpec = Field(default_factory=StreamSpec)
    status: StreamStatus | None = None

    @model_validator(mode="after")
    def _name(self) -> Stream:
        if not re.match(STREAM_NAME_PATTERN, self.metadata.name):
            raise ValueError(
                f"metadata.name {self.metadata.name!r} must be 1-80 letters, digits, '-' or '_'"
            )
        return self
