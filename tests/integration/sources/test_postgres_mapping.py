"""Table changes from a real PostgreSQL server through logical decoding (pgoutput) to a
function on a real router, in DynamoDB Streams' shape: INSERT, MODIFY and REMOVE in commit
order with their images typed like DynamoDB's; none lost or repeated when PostgreSQL
restarts mid-stream, or when the router stops while rows change and starts again."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner, eventually

from tests.integration.sources.pgserver import PostgresServer, postgres_server

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: changes}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  code:
    inline:
      app.py: |
        import json, os
        def handler(event, context):
            with open(os.environ["SEEN"], "a") as f:
                for r in event["Records"]:
                    f.write(json.dumps(r) + "\\n")
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: orders-changes}}
spec:
  function: changes
  source:
    postgres: {{dsn: "{dsn}", tables: [public.orders]}}
  startingPosition: TRIM_HORIZON
  batchSize: 10
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        server.sql(
            "CREATE TABLE orders (id int PRIMARY KEY, item text, qty int, paid boolean, "
            "price numeric(8,2)); ALTER TABLE orders REPLICA IDENTITY FULL; "
            "CREATE TABLE other (id int PRIMARY KEY)"
        )
        yield server


def seen(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_changes_in_commit_order_across_restarts(pg: PostgresServer, tmp_path: Path) -> None:
    fns, log = tmp_path / "fns", tmp_path / "seen.jsonl"
    fns.mkdir()
    (fns / "functions.yaml").write_text(FUNCTIONS.format(seen=log, dsn=pg.dsn))
    # the handlers mark what they did in files of the test's, out of a sandboxed
    # handler's reach (its own uid and /tmp): these routers run them unsandboxed
    with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path) as r:
        eventually(
            lambda: pg.sql("SELECT count(*) FROM pg_replication_slots") == "1",
            "the mapping's replication slot",
        )
        pg.sql("INSERT INTO orders VALUES (1, 'book', 2, false, 12.50)")
        pg.sql("UPDATE orders SET paid = true, qty = 3 WHERE id = 1")
        pg.sql("INSERT INTO other VALUES (1)")  # not a table of the mapping
        pg.sql("BEGIN; INSERT INTO orders VALUES (2, NULL, 1, true, 3); DELETE FROM orders "
               "WHERE id = 1; COMMIT")  # fmt: skip
        rows = eventually(lambda: len(seen(log)) >= 4 and seen(log), "four changes")
        assert [x["eventName"] for x in rows] == ["INSERT", "MODIFY", "INSERT", "REMOVE"]
        ins, mod, ins2, rem = (x["dynamodb"] for x in rows)
        assert ins["Keys"] == {"id": {"N": "1"}}
        assert ins["NewImage"] == {
            "id": {"N": "1"}, "item": {"S": "book"}, "qty": {"N": "2"},
            "paid": {"BOOL": False}, "price": {"N": "12.50"},
        }  # fmt: skip
        assert "OldImage" not in ins
        assert mod["OldImage"]["paid"] == {"BOOL": False}
        assert (mod["NewImage"]["paid"], mod["NewImage"]["qty"]) == ({"BOOL": True}, {"N": "3"})
        assert ins2["NewImage"]["item"] == {"NULL": True}
        assert rem["Keys"] == {"id": {"N": "1"}}
        assert rem["OldImage"]["qty"] == {"N": "3"}
        assert "NewImage" not in rem
        assert all(d["StreamViewType"] == "NEW_AND_OLD_IMAGES" for d in (ins, mod, ins2, rem))
        seqs = [d["SequenceNumber"] for d in (ins, mod, ins2, rem)]
        assert seqs == sorted(seqs)
        assert all(x["eventSource"] == "aws:dynamodb" for x in rows)
        assert rows[0]["eventSourceARN"].startswith(
            "arn:aws:dynamodb:us-east-1:000000000000:table/public.orders/stream/"
        )

        # PostgreSQL restarts mid-stream: nothing lost, nothing repeated, order kept
        for i in range(10, 20):
            pg.sql(f"INSERT INTO orders VALUES ({i}, 'x', {i}, false, 1)")
        pg.restart()
        for i in range(20, 30):
            pg.sql(f"INSERT INTO orders VALUES ({i}, 'x', {i}, false, 1)")
        eventually(lambda: len(seen(log)) >= 24, "the changes around the restart", timeout=60)

        def mapping() -> dict[str, Any]:
            with urllib.request.urlopen(r.url + "/klambda/v1/event-source-mappings") as resp:
                (m,) = json.loads(resp.read())["EventSourceMappings"]
            return m  # type: ignore[no-any-return]

        # a batch is counted once its call has returned, after the handler wrote its lines
        m = eventually(lambda: (x := mapping())["Records"]["succeeded"] >= 24 and x, "the count")
        assert (m["Tables"], m["State"], m["Records"]["succeeded"]) == (
            ["public.orders"],
            "Enabled",
            24,
        )
    # the router stops; rows change meanwhile; a new router goes on from the slot
    for i in range(30, 35):
        pg.sql(f"INSERT INTO orders VALUES ({i}, 'y', {i}, false, 1)")
    with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path):
        eventually(lambda: len(seen(log)) >= 29, "the changes made while no router ran")
        time.sleep(1.0)  # nothing more comes
    ids = [int(x["dynamodb"]["Keys"]["id"]["N"]) for x in seen(log)]
    assert ids == [1, 1, 2, 1, *range(10, 35)]
