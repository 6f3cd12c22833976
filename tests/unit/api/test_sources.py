"""The Queue and EventSourceMapping kinds: Lambda's and SQS's bounds, refused with the
field named; the CRDs state the same fields and bounds; manifests load with the queues
they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from klambda.api.eventsourcemapping import (
    PG_NAME_PATTERN,
    PG_TABLE_PATTERN,
    DestinationConfig,
    EventSourceMapping,
    EventSourceMappingSpec,
    EventSourceMappingStatus,
    Filter,
    FilterCriteria,
    OnFailure,
    PostgresSource,
    Source,
)
from klambda.api.manifest import ManifestError, describe_errors, load
from klambda.api.queue import Queue, QueueSpec, RedrivePolicy
from klambda.api.stream import Stream, StreamSpec
from pydantic import ValidationError

from tests.unit.api.test_crds_agree import check_model, crd_schema, literal


def esm(**spec: Any) -> EventSourceMapping:
    return EventSourceMapping.model_validate(
        {
            "metadata": {"name": "m"},
            "spec": {"function": "process", "source": {"queue": "orders"}, **spec},
        }
    )


def problem(**spec: Any) -> str:
    with pytest.raises(ValidationError) as info:
        esm(**spec)
    return "; ".join(describe_errors(info.value))


def test_defaults() -> None:
    s = esm().spec
    assert (s.effective_batch_size, s.enabled, s.reports_item_failures) == (10, True, False)
    assert (s.function_name, s.qualifier) == ("process", None)
    s = esm(function="process:prod", functionResponseTypes=["ReportBatchItemFailures"]).spec
    assert (s.function_name, s.qualifier, s.reports_item_failures) == ("process", "prod", True)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"batchSize": 0}, "spec.batchSize: Input should be greater than or equal to 1"),
        ({"batchSize": 10001}, "spec.batchSize: Input should be less than or equal to 10000"),
        ({"batchSize": 11}, "batchSize above 10 needs maximumBatchingWindowInSeconds"),
        ({"maximumBatchingWindowInSeconds": 301}, "less than or equal to 300"),
        (
            {"maximumConcurrency": 1},
            "spec.maximumConcurrency: Input should be greater than or equal to 2",
        ),
        ({"maximumConcurrency": 1001}, "less than or equal to 1000"),
        ({"functionResponseTypes": ["Everything"]}, "spec.functionResponseTypes.0"),
        ({"startingPosition": "LATEST"}, "startingPosition apply to stream sources"),
        ({"bisectBatchOnFunctionError": True}, "bisectBatchOnFunctionError apply to stream"),
        ({"destinationConfig": {"onFailure": {"queue": "x"}}}, "destinationConfig apply to"),
        ({"maximumRecordAgeInSeconds": 30}, "-1 (no limit) or 60-604800"),
        ({"function": "Process"}, "must be a function name"),
        ({"source": {"queue": "no spaces"}}, "spec.source.queue"),
        ({"source": {}}, "spec.source: exactly one of queue, stream, postgres must be given"),
        ({"source": {"queue": "a", "stream": "b"}}, "exactly one of queue, stream, postgres"),
        ({"filterCriteria": {"filters": []}}, "spec.filterCriteria.filters"),
        ({"filterCriteria": {"filters": [{"pattern": "{"}]}}, "pattern must be JSON text"),
        ({"filterCriteria": {"filters": [{"pattern": "[1]"}]}}, "pattern must be a JSON object"),
        (
            {"filterCriteria": {"filters": [{"pattern": '{"body": {"a": [{"numeric": 5}]}}'}]}},
            "body.a",
        ),
        ({"filterCriteria": {"filters": [{"pattern": "{}"}] * 6}}, "at most 5 items"),
        ({"batchsize": 5}, "spec.batchsize: Extra inputs are not permitted"),
    ],
)
def test_refused_with_the_field_named(spec: dict[str, Any], words: str) -> None:
    assert words in problem(**spec)


def stream_esm(**spec: Any) -> EventSourceMapping:
    return esm(source={"stream": "clicks"}, **spec)


def test_stream_defaults_and_fields() -> None:
    s = stream_esm(startingPosition="TRIM_HORIZON").spec
    assert (s.effective_batch_size, s.retry_attempts, s.record_age_limit) == (100, -1, -1)
    s = stream_esm(
        startingPosition="LATEST",
        maximumRetryAttempts=2,
        maximumRecordAgeInSeconds=60,
        bisectBatchOnFunctionError=True,
        destinationConfig={"onFailure": {"queue": "poison"}},
        batchSize=500,
    ).spec
    assert (s.retry_attempts, s.record_age_limit, s.effective_batch_size) == (2, 60, 500)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({}, "startingPosition is required for a stream or postgres source"),
        ({"startingPosition": "AT_TIMESTAMP"}, "startingPositionTimestamp is required"),
        (
            {"startingPosition": "LATEST", "startingPositionTimestamp": 5},
            "startingPositionTimestamp is required with AT_TIMESTAMP, and only with it",
        ),
        ({"startingPosition": "LATEST", "maximumConcurrency": 5}, "maximumConcurrency applies"),
        ({"startingPosition": "LATEST", "parallelizationFactor": 2}, "not supported yet"),
        ({"startingPosition": "LATEST", "parallelizationFactor": 11}, "less than or equal to 10"),
        ({"startingPosition": "LATEST", "maximumRetryAttempts": -2}, "greater than or equal to -1"),
        (
            {"startingPosition": "LATEST", "destinationConfig": {"onFailure": {}}},
            "exactly one of function, queue",
        ),
    ],
)
def test_stream_refused(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as info:
        stream_esm(**spec)
    assert words in "; ".join(describe_errors(info.value))


def pg_esm(**spec: Any) -> EventSourceMapping:
    source = {"postgres": {"dsn": "host=db dbname=app", "tables": ["public.orders", "items"]}}
    return esm(source=source, **spec)


def test_postgres_source() -> None:
    s = pg_esm(startingPosition="LATEST", bisectBatchOnFunctionError=True).spec
    assert s.source.postgres is not None
    assert s.source.postgres.stream_view_type == "NEW_AND_OLD_IMAGES"
    assert (s.source.ordered, s.effective_batch_size) == (True, 100)
    assert "AT_TIMESTAMP applies to streams" in problem(
        source={"postgres": {"dsn": "x", "tables": ["t"]}},
        startingPosition="AT_TIMESTAMP",
        startingPositionTimestamp=1,
    )
    assert "table 'a.b.c' must be NAME or SCHEMA.NAME" in problem(
        source={"postgres": {"dsn": "x", "tables": ["a.b.c"]}}, startingPosition="LATEST"
    )
    assert "spec.source.postgres.slot" in problem(
        source={"postgres": {"dsn": "x", "tables": ["t"], "slot": "Bad-Slot"}},
        startingPosition="LATEST",
    )


def test_stream_kind() -> None:
    assert Stream.model_validate({"metadata": {"name": "clicks"}}).spec.shard_count == 1
    with pytest.raises(ValidationError, match="shardCount"):
        Stream.model_validate({"metadata": {"name": "c"}, "spec": {"shardCount": 65}})
    with pytest.raises(ValidationError, match="retentionPeriodHours"):
        Stream.model_validate({"metadata": {"name": "c"}, "spec": {"retentionPeriodHours": 1}})


def test_filter_patterns_kept_as_given() -> None:
    s = esm(filterCriteria={"filters": [{"pattern": '{"body": {"kind": ["paid"]}}'}]}).spec
    assert s.patterns() == [{"body": {"kind": ["paid"]}}]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"visibilityTimeoutSeconds": 43201}, "less than or equal to 43200"),
        ({"messageRetentionSeconds": 59}, "greater than or equal to 60"),
        ({"redrivePolicy": {"deadLetterQueue": "d", "maxReceiveCount": 0}}, "maxReceiveCount"),
        ({"redrivePolicy": {"deadLetterQueue": "q", "maxReceiveCount": 3}}, "another queue"),
    ],
)
def test_queue_refused(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as info:
        Queue.model_validate({"metadata": {"name": "q"}, "spec": spec})
    assert words in "; ".join(describe_errors(info.value))


def test_crds_agree() -> None:
    props = crd_schema("eventsourcemappings.yaml")["properties"]
    spec = props["spec"]["properties"]
    check_model(EventSourceMappingSpec, spec)
    check_model(Source, spec["source"]["properties"])
    pg = spec["source"]["properties"]["postgres"]
    check_model(PostgresSource, pg["properties"])
    assert pg["properties"]["tables"]["maxItems"] == 100
    assert pg["properties"]["streamViewType"]["enum"] == list(
        literal(PostgresSource, "stream_view_type")
    )
    assert pg["properties"]["slot"]["pattern"] == PG_NAME_PATTERN
    assert pg["properties"]["tables"]["items"]["pattern"] == PG_TABLE_PATTERN
    check_model(DestinationConfig, spec["destinationConfig"]["properties"])
    check_model(OnFailure, spec["destinationConfig"]["properties"]["onFailure"]["properties"])
    check_model(FilterCriteria, spec["filterCriteria"]["properties"])
    check_model(Filter, spec["filterCriteria"]["properties"]["filters"]["items"]["properties"])
    assert spec["startingPosition"]["enum"] == ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
    assert spec["filterCriteria"]["properties"]["filters"]["maxItems"] == 5
    assert (
        spec["filterCriteria"]["properties"]["filters"]["items"]["properties"]["pattern"][
            "maxLength"
        ]
        == 4096
    )
    status = props["status"]["properties"]
    check_model(EventSourceMappingStatus, status)
    assert status["state"]["enum"] == list(literal(EventSourceMappingStatus, "state"))
    queue = crd_schema("queues.yaml")["properties"]["spec"]["properties"]
    check_model(QueueSpec, queue)
    check_model(RedrivePolicy, queue["redrivePolicy"]["properties"])
    check_model(StreamSpec, crd_schema("streams.yaml")["properties"]["spec"]["properties"])


QUEUES = """
apiVersion: klambda.io/v1alpha1
kind: Queue
metadata: {name: orders}
spec:
  redrivePolicy: {deadLetterQueue: orders-dlq, maxReceiveCount: 3}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {name: orders-to-process}
spec: {function: process, source: {queue: orders}}
"""


def test_manifests_name_declared_queues(tmp_path: Path) -> None:
    (tmp_path / "queues.yaml").write_text(QUEUES)
    with pytest.raises(ManifestError) as info:
        load(tmp_path)
    assert any(
        "deadLetterQueue: no Queue 'orders-dlq' is declared" in p for p in info.value.problems
    )
    (tmp_path / "dlq.yaml").write_text(
        "apiVersion: klambda.io/v1alpha1\nkind: Queue\nmetadata: {name: orders-dlq}\n"
    )
    got = load(tmp_path)
    assert set(got.queues) == {"orders", "orders-dlq"}
    assert got.mappings["orders-to-process"].spec.source.queue == "orders"


def test_database_proxy() -> None:
    from klambda.api.databaseproxy import (
        SECRET_KEY_PATTERN,
        SECRET_NAME_PATTERN,
        DatabaseProxy,
        DatabaseProxySpec,
        ProxyTarget,
        SecretKey,
    )
    from klambda.dbproxy import function_environment, pgbouncer_ini

    raw = {
        "metadata": {"name": "app-db"},
        "spec": {
            "target": {"host": "db", "database": "shop", "user": "app"},
            "poolSize": 7,
            "functions": ["orders"],
        },
    }
    spec = DatabaseProxy.model_validate(raw).spec
    ini = pgbouncer_ini(spec)
    assert "shop = host=db port=5432 dbname=shop user=app" in ini
    assert "default_pool_size = 7\nmax_db_connections = 7" in ini
    assert "pool_mode = transaction" in ini
    assert function_environment(spec) == {
        "PGHOST": "127.0.0.1", "PGPORT": "6432", "PGDATABASE": "shop",
    }  # fmt: skip
    for bad, words in (
        ({"poolSize": 0}, "poolSize"),
        ({"port": 80}, "port"),
        ({"functions": ["Not A Name"]}, "is not a function name"),
        ({"poolMode": "pipelined"}, "poolMode"),
    ):
        with pytest.raises(ValidationError, match=words):
            DatabaseProxy.model_validate({**raw, "spec": {**raw["spec"], **bad}})  # type: ignore[dict-item]
    props = crd_schema("databaseproxies.yaml")["properties"]["spec"]["properties"]
    check_model(DatabaseProxySpec, props)
    check_model(ProxyTarget, props["target"]["properties"])
    secret = props["target"]["properties"]["passwordSecret"]
    check_model(SecretKey, secret["properties"])
    assert secret["properties"]["name"]["pattern"] == SECRET_NAME_PATTERN
    assert secret["properties"]["key"]["pattern"] == SECRET_KEY_PATTERN


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ({"name": "Shop_DB", "key": "password"}, "spec.target.passwordSecret.name"),
        ({"name": "shop-db", "key": "pass word"}, "spec.target.passwordSecret.key"),
        ({"name": "shop-db"}, "spec.target.passwordSecret.key: Field required"),
        ({"name": "shop-db", "key": "p", "extra": 1}, "spec.target.passwordSecret.extra"),
    ],
)
def test_database_proxy_password_secret_refused(secret: dict[str, Any], words: str) -> None:
    from klambda.api.databaseproxy import DatabaseProxy

    raw = {
        "metadata": {"name": "app-db"},
        "spec": {"target": {"host": "db", "database": "shop", "user": "app",
                            "passwordSecret": secret}},
    }  # fmt: skip
    with pytest.raises(ValidationError) as info:
        DatabaseProxy.model_validate(raw)
    assert words in "; ".join(describe_errors(info.value))


def test_database_proxy_password_in_the_configuration() -> None:
    from klambda.api.databaseproxy import DatabaseProxySpec
    from klambda.dbproxy import pgbouncer_ini

    spec = DatabaseProxySpec.model_validate(
        {"target": {"host": "db", "database": "shop", "user": "app",
                    "passwordSecret": {"name": "shop-db", "key": "password"}}}
    )  # fmt: skip
    assert spec.target.password_secret is not None
    assert spec.target.password_secret.key == "password"
    assert "password" not in pgbouncer_ini(spec)  # the Secret is the pod's, not the ini's
    ini = pgbouncer_ini(spec, password="it's a\\b")
    assert "user=app password='it''s a\\b'\n" in ini
    with pytest.raises(ValueError, match="line break"):
        pgbouncer_ini(spec, password="two\nlines")


def test_database_proxy_environments() -> None:
    from klambda.api.databaseproxy import DatabaseProxySpec
    from klambda.dbproxy import environments, with_proxy

    def spec(db: str, port: int, *functions: str) -> DatabaseProxySpec:
        return DatabaseProxySpec.model_validate(
            {"target": {"host": "h", "database": db, "user": "u"}, "port": port,
             "functions": list(functions)}
        )  # fmt: skip

    got = environments(
        {"b-db": spec("b", 7000, "orders", "users"), "a-db": spec("a", 6000, "orders")},
        lambda name: f"{name}-dbproxy.ns.svc",
    )
    assert got == {
        # listed by two proxies: the first by name
        "orders": {"PGHOST": "a-db-dbproxy.ns.svc", "PGPORT": "6000", "PGDATABASE": "a"},
        "users": {"PGHOST": "b-db-dbproxy.ns.svc", "PGPORT": "7000", "PGDATABASE": "b"},
    }
    own = {"PGDATABASE": "mine", "X": "1"}
    assert with_proxy(own, got["users"]) == {
        "PGHOST": "b-db-dbproxy.ns.svc", "PGPORT": "7000", "PGDATABASE": "mine", "X": "1",
    }  # fmt: skip
