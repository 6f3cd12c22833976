"""The EventSourceMapping kind: a poller that reads a source in batches and invokes a
function synchronously with each batch (Lambda's event source mappings).

    apiVersion: klambda.io/v1alpha1
    kind: EventSourceMapping
    metadata: {name: orders-to-process}
    spec:
      function: process           # or `process:prod` (an alias or a version)
      source: {queue: orders}
      batchSize: 10
      maximumBatchingWindowInSeconds: 1
      functionResponseTypes: [ReportBatchItemFailures]
      maximumConcurrency: 5
      filterCriteria:
        filters:
          - pattern: '{"body": {"kind": ["paid"]}}'

A stream source (`source: {stream: clicks}`), or PostgreSQL's changes (`source: {postgres:
{dsn: ..., tables: [orders]}}`, DynamoDB Streams' role), takes Lambda's stream fields:
`startingPosition` (required), `maximumRetryAttempts`, `maximumRecordAgeInSeconds`,
`bisectBatchOnFunctionError`, `destinationConfig.onFailure` (a queue or a function).

The fields and their bounds are Lambda's (CreateEventSourceMapping). Which fields apply
depends on the source, as in Lambda: `maximumConcurrency` is a queue's; the stream fields
(`startingPosition`, `maximumRetryAttempts`, `maximumRecordAgeInSeconds`,
`bisectBatchOnFunctionError`, `parallelizationFactor`, `destinationConfig`) are refused on
a queue, whose failures go to the queue's own redrive policy. A filter pattern is Lambda's
event filtering, whose grammar is the one of SNS's body-scoped filter policies: it is
checked, and matched, by klambda.triggers.filterpolicy.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from klambda.api.meta import Condition, Model, ObjectMeta
from klambda.api.queue import QUEUE_NAME_PATTERN
from klambda.api.stream import STREAM_NAME_PATTERN
from klambda.triggers import filterpolicy

BATCH_SIZE_MAX = 10000
QUEUE_BATCH_SIZE_DEFAULT = 10
STREAM_BATCH_SIZE_DEFAULT = 100
QUEUE_BATCH_SIZE_WITHOUT_WINDOW_MAX = 10  # SQS: above 10 needs a batching window
BATCHING_WINDOW_MAX_S = 300
MAXIMUM_CONCURRENCY_MIN = 2
MAXIMUM_CONCURRENCY_MAX = 1000
RETRY_ATTEMPTS_MAX = 10000
RECORD_AGE_MIN_S = 60
RECORD_AGE_MAX_S = 604800
PARALLELIZATION_MAX = 10
PG_TABLES_MAX = 100
PG_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
PG_TABLE_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$"
FILTERS_MAX = 5
PATTERN_MAX = 4096
STREAM_FIELDS = (
    "startingPosition",
    "startingPositionTimestamp",
    "maximumRetryAttempts",
    "maximumRecordAgeInSeconds",
    "bisectBatchOnFunctionError",
    "parallelizationFactor",
    "destinationConfig",
)
_FUNCTION = re.compile(r"^([a-z]([-a-z0-9]{0,46}[a-z0-9])?)(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$")


class PostgresSource(Model):
    """Row changes of PostgreSQL tables (DynamoDB Streams' role), through logical decoding:
    a publication of `tables` and a replication slot (pgoutput) that keeps the position.
    The database needs `wal_level = logical`; OldImage needs `REPLICA IDENTITY FULL` on the
    table (else it has the key columns only)."""

    dsn: str = Field(
        max_length=1024,
        description="a libpq connection string; keep the password in PGPASSWORD or .pgpass",
    )
    tables: list[str] = Field(min_length=1, max_length=PG_TABLES_MAX)
    slot: str | None = Field(default=None, pattern=PG_NAME_PATTERN)
    publication: str | None = Field(default=None, pattern=PG_NAME_PATTERN)
    stream_view_type: Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] = Field(
        default="NEW_AND_OLD_IMAGES", alias="streamViewType"
    )

    @field_validator("tables")
    @classmethod
    def _tables(cls, tables: list[str]) -> list[str]:
        for t in tables:
            if not re.match(PG_TABLE_PATTERN, t):
                raise ValueError(f"table {t!r} must be NAME or SCHEMA.NAME (letters, digits, _)")
        return tables


class Source(Model):
    """What is polled: a queue (a `Queue` object's name), a stream (a `Stream`'s), or the
    changes of PostgreSQL tables."""

    queue: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)
    stream: str | None = Field(default=None, pattern=STREAM_NAME_PATTERN)
    postgres: PostgresSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if sum(x is not None for x in (self.queue, self.stream, self.postgres)) != 1:
            raise ValueError("exactly one of queue, stream, postgres must be given")
        return self

    @property
    def ordered(self) -> bool:
        """A stream or a table's changes: read in order, Lambda's stream rules."""
        return self.queue is None


class OnFailure(Model):
    function: str | None = None
    queue: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)

    @model_validator(mode="after")
    def _exactly_one(self) -> OnFailure:
        if (self.function is None) == (self.queue is None):
            raise ValueError("exactly one of function, queue must be given")
        return self


class DestinationConfig(Model):
    on_failure: OnFailure = Field(alias="onFailure")


class Filter(Model):
    pattern: str = Field(max_length=PATTERN_MAX)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, text: str) -> str:
        try:
            pattern = json.loads(text)
        except ValueError as err:
            raise ValueError(f"pattern must be JSON text: {err}") from None
        if not isinstance(pattern, dict):
            raise ValueError("pattern must be a JSON object")
        filterpolicy.check(pattern, "MessageBody")
        return text

    def parsed(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.pattern)
        return value


class FilterCriteria(Model):
    filters: list[Filter] = Field(min_length=1, max_length=FILTERS_MAX)


class EventSourceMappingSpec(Model):
    function: str = Field(description="a function name, or name:alias / name:version")
    source: Source
    enabled: bool = True
    batch_size: int | None = Field(default=None, ge=1, le=BATCH_SIZE_MAX, alias="batchSize")
    maximum_batching_window_in_seconds: int = Field(
        default=0, ge=0, le=BATCHING_WINDOW_MAX_S, alias="maximumBatchingWindowInSeconds"
    )
    function_response_types: list[Literal["ReportBatchItemFailures"]] = Field(
        default_factory=list, max_length=1, alias="functionResponseTypes"
    )
    maximum_concurrency: int | None = Field(
        default=None,
        ge=MAXIMUM_CONCURRENCY_MIN,
        le=MAXIMUM_CONCURRENCY_MAX,
        alias="maximumConcurrency",
    )
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] | None = Field(
        default=None, alias="startingPosition"
    )
    starting_position_timestamp: float | None = Field(
        default=None, ge=0, alias="startingPositionTimestamp"
    )
    maximum_retry_attempts: int | None = Field(
        default=None, ge=-1, le=RETRY_ATTEMPTS_MAX, alias="maximumRetryAttempts"
    )
    maximum_record_age_in_seconds: int | None = Field(
        default=None, ge=-1, le=RECORD_AGE_MAX_S, alias="maximumRecordAgeInSeconds"
    )
    bisect_batch_on_function_error: bool | None = Field(
        default=None, alias="bisectBatchOnFunctionError"
    )
    parallelization_factor: int | None = Field(
        default=None, ge=1, le=PARALLELIZATION_MAX, alias="parallelizationFactor"
    )
    destination_config: DestinationConfig | None = Field(default=None, alias="destinationConfig")
    filter_criteria: FilterCriteria | None = Field(default=None, alias="filterCriteria")

    @field_validator("function")
    @classmethod
    def _function(cls, value: str) -> str:
        if not _FUNCTION.match(value):
            raise ValueError(
                f"function {value!r} must be a function name, optionally with :alias or :version"
            )
        return value

    @field_validator("maximum_record_age_in_seconds")
    @classmethod
    def _age(cls, value: int | None) -> int | None:
        if value is not None and value != -1 and value < RECORD_AGE_MIN_S:
            raise ValueError(
                f"maximumRecordAgeInSeconds must be -1 (no limit) or {RECORD_AGE_MIN_S}-"
                f"{RECORD_AGE_MAX_S}"
            )
        return value

    @model_validator(mode="after")
    def _by_source(self) -> EventSourceMappingSpec:
        if self.source.ordered:
            # a stream or a table's changes: Lambda's Kinesis and DynamoDB Streams rules
            if self.maximum_concurrency is not None:
                raise ValueError(
                    "maximumConcurrency applies to queue sources; a stream's concurrency is "
                    "one batch per shard (parallelizationFactor)"
                )
            if self.starting_position is None:
                raise ValueError("startingPosition is required for a stream or postgres source")
            if (self.starting_position == "AT_TIMESTAMP") != (
                self.starting_position_timestamp is not None
            ):
                raise ValueError(
                    "startingPositionTimestamp is required with AT_TIMESTAMP, and only with it"
                )
            if self.source.postgres is not None and self.starting_position == "AT_TIMESTAMP":
                raise ValueError(
                    "startingPosition AT_TIMESTAMP applies to streams; a table's changes start "
                    "where its replication slot is (TRIM_HORIZON or LATEST)"
                )
            if self.parallelization_factor not in (None, 1):
                raise ValueError(
                    "parallelizationFactor above 1 is not supported yet: one batch per shard "
                    "at a time"
                )
            return self
        # a queue: Lambda's SQS rules
        given = [
            alias
            for name, alias in zip(
                (
                    "starting_position",
                    "starting_position_timestamp",
                    "maximum_retry_attempts",
                    "maximum_record_age_in_seconds",
                    "bisect_batch_on_function_error",
                    "parallelization_factor",
                    "destination_config",
                ),
                STREAM_FIELDS,
                strict=True,
            )
            if getattr(self, name) is not None
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} apply to stream sources, not to a queue (a queue's "
                "failures go to its redrivePolicy)"
            )
        if (
            self.batch_size is not None
            and self.batch_size > QUEUE_BATCH_SIZE_WITHOUT_WINDOW_MAX
            and self.maximum_batching_window_in_seconds < 1
        ):
            raise ValueError(
                f"batchSize above {QUEUE_BATCH_SIZE_WITHOUT_WINDOW_MAX} needs "
                "maximumBatchingWindowInSeconds of at least 1"
            )
        return self

    @property
    def function_name(self) -> str:
        return self.function.partition(":")[0]

    @property
    def qualifier(self) -> str | None:
        return self.function.partition(":")[2] or None

    @property
    def effective_batch_size(self) -> int:
        default = STREAM_BATCH_SIZE_DEFAULT if self.source.ordered else QUEUE_BATCH_SIZE_DEFAULT
        return self.batch_size or default

    @property
    def retry_attempts(self) -> int:
        """-1: until the record expires (Lambda's default)."""
        return -1 if self.maximum_retry_attempts is None else self.maximum_retry_attempts

    @property
    def record_age_limit(self) -> int:
        return (
            -1
            if self.maximum_record_age_in_seconds is None
            else (self.maximum_record_age_in_seconds)
        )

    @property
    def reports_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types

    def patterns(self) -> list[dict[str, Any]]:
        return [f.parsed() for f in self.filter_criteria.filters] if self.filter_criteria else []


class EventSourceMappingStatus(Model):
    state: Literal["Enabled", "Disabled", "Failed"] = "Enabled"
    reason: str | None = None
    last_processing_result: str | None = Field(default=None, alias="lastProcessingResult")
    last_modified: str | None = Field(default=None, alias="lastModified")
    conditions: list[Condition] = Field(default_factory=list)


class EventSourceMapping(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["EventSourceMapping"] = "EventSourceMapping"
    metadata: ObjectMeta
    spec: EventSourceMappingSpec
    status: EventSourceMappingStatus | None = None
