"""A topic with two subscribers on a real router: a filter policy keeps messages from one;
the other fails every time and goes to its own DLQ while the first succeeds. Published
with `klambda publish`, the REST API and boto3's SNS client."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from klambda.testing import CLI, RouterRunner, eventually

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: billing}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  events:
    orders:
      type: SNS
      topic: orders
      filterPolicy: {{kind: [paid], total: [{{numeric: [">", 10]}}]}}
  code:
    inline:
      app.py: |
        import json, os
        def handler(event, context):
            sns = event["Records"][0]["Sns"]
            with open(os.environ["SEEN"], "a") as f:
                f.write(json.dumps(sns) + "\\n")
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: audit}}
spec:
  runtime: python3.11
  handler: app.handler
  events:
    everything:
      type: SNS
      topic: orders
      retryAttempts: 0
      deadLetter: {{queue: audit-dlq}}
  code:
    inline:
      app.py: |
        def handler(event, context):
            raise RuntimeError("audit is down")
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterRunner, Path]]:
    tmp = tmp_path_factory.mktemp("topics")
    fns, seen = tmp / "fns", tmp / "seen.jsonl"
    fns.mkdir()
    (fns / "functions.yaml").write_text(FUNCTIONS.format(seen=seen))
    # the handlers mark what they did in files of the test's: out of a sandboxed
    # handler's reach (its own uid and /tmp), so these routers run them unsandboxed
    with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp) as r:
        yield r, seen


def get(r: RouterRunner, path: str) -> Any:
    with urllib.request.urlopen(r.url + path, timeout=30) as resp:
        return json.loads(resp.read())


def post(r: RouterRunner, path: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        r.url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


PAID = {
    "Message": '{"order": 1}',
    "Subject": "new order",
    "MessageAttributes": {
        "kind": {"DataType": "String", "StringValue": "paid"},
        "total": {"DataType": "Number", "StringValue": "25"},
    },
}
REFUNDED = {**PAID, "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "x"}}}


def seen(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_fan_out_with_a_filter_policy_and_a_failing_subscriber(
    router: tuple[RouterRunner, Path],
) -> None:
    r, log = router
    check_fan_out(r, lambda: seen(log))


def publish_two(r: RouterRunner) -> str:
    """A paid order (to billing and audit) and another (filtered out of billing's
    subscription); the paid one's MessageId."""
    status, out = post(r, "/klambda/v1/topics/orders/messages", PAID)
    assert status == 200
    assert (out["Delivered"], out["Filtered"]) == (2, 0)
    status, out2 = post(r, "/klambda/v1/topics/orders/messages", REFUNDED)
    assert (status, out2["Delivered"], out2["Filtered"]) == (200, 1, 1)
    return str(out["MessageId"])


def check_fan_out(r: RouterRunner, billing_saw: Callable[[], list[dict[str, Any]]]) -> None:
    """Publish two orders; billing gets the paid one, audit fails both into its DLQ.
    `billing_saw`: the Sns records billing's handler received so far (the tests of cluster
    mode read them from its worker's log)."""
    message_id = publish_two(r)
    (got,) = eventually(billing_saw, "billing to receive the paid order")
    assert got["Type"] == "Notification"
    assert got["MessageId"] == message_id
    assert got["TopicArn"] == "arn:aws:sns:us-east-1:000000000000:orders"
    assert got["Subject"] == "new order"
    assert got["Message"] == '{"order": 1}'
    assert got["MessageAttributes"]["total"] == {"Type": "Number", "Value": "25"}

    # audit failed both, each once (retryAttempts 0), into its DLQ and its own queue
    def audit_dead() -> Any:
        letters = get(r, "/klambda/v1/functions/audit/dlq")["DeadLetters"]
        return len(letters) == 2 and letters

    letters = eventually(audit_dead, "audit's two events in its DLQ")
    assert {d["errorType"] for d in letters} == {"RuntimeError"}
    assert {d["attempts"] for d in letters} == {1}
    queued = eventually(
        lambda: (
            len(get(r, "/klambda/v1/queues/audit-dlq")["Messages"]) == 2
            and get(r, "/klambda/v1/queues/audit-dlq")["Messages"]
        ),
        "audit's own dead-letter queue",
    )
    assert json.loads(queued[0]["body"])["Records"][0]["Sns"]["TopicArn"].endswith(":orders")
    assert get(r, "/klambda/v1/functions/billing/dlq")["DeadLetters"] == []
    assert len(billing_saw()) == 1

    assert r.metric("klambda_trigger_filtered_total", function="billing") == 1
    assert r.metric("klambda_trigger_events_total", function="audit", type="SNS") == 2
    assert (
        r.metric("klambda_trigger_failures_total", function="audit", reason="RetriesExhausted") == 2
    )


def test_publish_from_the_cli_and_boto3(router: tuple[RouterRunner, Path]) -> None:
    r, log = router
    before = len(seen(log))
    out = subprocess.run(
        [*CLI, "publish", "orders", "-m", "from the cli", "-a", "kind=paid",
         "-a", "total:Number=99", "--endpoint", r.url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(out)["Delivered"] == 2
    client = boto3.client(
        "sns",
        endpoint_url=r.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    resp = client.publish(
        TopicArn="arn:aws:sns:us-east-1:000000000000:orders",
        Message="from boto3",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "paid"},
            "total": {"DataType": "Number", "StringValue": "11.5"},
        },
    )
    assert resp["MessageId"]
    got = eventually(lambda: len(seen(log)) == before + 2 and seen(log), "both messages")
    assert sorted(m["Message"] for m in got[before:]) == ["from boto3", "from the cli"]
    assert [t["TopicArn"] for t in client.list_topics()["Topics"]] == [
        "arn:aws:sns:us-east-1:000000000000:orders"
    ]
    with pytest.raises(ClientError, match="NotFound"):
        client.publish(TopicArn="arn:aws:sns:us-east-1:000000000000:nobody", Message="x")
    status, err = post(r, "/klambda/v1/topics/orders/messages", {"Message": ""})
    assert status == 400
    assert "Message" in err["message"]
