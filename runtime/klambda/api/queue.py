"""The Queue kind: a work queue in SQS's role, that an EventSourceMapping drains.

    apiVersion: klambda.io/v1alpha1
    kind: Queue
    metadata: {name: orders}
    spec:
      visibilityTimeoutSeconds: 30
      redrivePolicy: {deadLetterQueue: orders-dlq, maxReceiveCount: 3}

A received message is invisible for the visibility timeout; a message received
`maxReceiveCount` times without being deleted moves to the dead-letter queue (itself a
Queue, declared like any other). The bounds are SQS's.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from klambda.api.meta import Model, ObjectMeta

QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
VISIBILITY_TIMEOUT_MAX_S = 43200  # SQS: 12 hours
VISIBILITY_TIMEOUT_DEFAULT_S = 30
RETENTION_MIN_S = 60
RETENTION_MAX_S = 1209600  # SQS: 14 days
RETENTION_DEFAULT_S = 345600  # SQS: 4 days
MAX_RECEIVE_COUNT_MAX = 1000
MESSAGE_MAX_BYTES = 262144  # SQS: 256 KiB


class RedrivePolicy(Model):
    dead_letter_queue: str = Field(alias="deadLetterQueue", pattern=QUEUE_NAME_PATTERN)
    max_receive_count: int = Field(alias="maxReceiveCount", ge=1, le=MAX_RECEIVE_COUNT_MAX)


class QueueSpec(Model):
    visibility_timeout_seconds: int = Field(
        default=VISIBILITY_TIMEOUT_DEFAULT_S,
        ge=0,
        le=VISIBILITY_TIMEOUT_MAX_S,
        alias="visibilityTimeoutSeconds",
    )
    message_retention_seconds: int = Field(
        default=RETENTION_DEFAULT_S,
        ge=RETENTION_MIN_S,
        le=RETENTION_MAX_S,
        alias="messageRetentionSeconds",
    )
    redrive_policy: RedrivePolicy | None = Field(default=None, alias="redrivePolicy")


class QueueStatus(Model):
    state: Literal["Active", "Failed"] = "Active"
    reason: str | None = None


class Queue(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Queue"] = "Queue"
    metadata: ObjectMeta
    spec: QueueSpec = Field(default_factory=QueueSpec)
    status: QueueStatus | None = None

    @model_validator(mode="after")
    def _name(self) -> Queue:
        if not re.match(QUEUE_NAME_PATTERN, self.metadata.name):
            raise ValueError(
                f"metadata.name {self.metadata.name!r} must be 1-80 letters, digits, '-' or '_'"
            )
        rp = self.spec.redrive_policy
        if rp is not None and rp.dead_letter_queue == self.metadata.name:
            raise ValueError("spec.redrivePolicy.deadLetterQueue must be another queue")
        return self
