"""Recursive loop detection against a real router: a function that re-invokes itself
asynchronously, with boto3 from its handler or through its own on-success destination,
runs 16 times; the 16th hop is stopped, counted, logged and dead-lettered, as in Lambda.
With `recursiveLoop: Allow` the loop goes on."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner, eventually

SELF_INVOKING = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: {name}}}
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 30
  retryAttempts: 0
  recursiveLoop: {loop}
  environment: {{ROUTER: "{url}"}}
  code:
    inline:
      app.py: |
        import os, boto3
        from botocore.config import Config
        lam = boto3.client("lambda", endpoint_url=os.environ["ROUTER"], region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x",
                           config=Config(retries={{"max_attempts": 0}}))

        def handler(event, context):
            if event.get("n", 0) < event.get("stop_at", 1000):
                # botocore sends _X_AMZN_TRACE_ID on as X-Amzn-Trace-Id: the lineage
                lam.invoke(FunctionName=context.function_name, InvocationType="Event",
                           Payload=b'{{"n": %d, "stop_at": %d}}'
                           % (event.get("n", 0) + 1, event.get("stop_at", 1000)))
            return {{"n": event.get("n", 0)}}
"""

THROUGH_DESTINATION = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: ping}
spec:
  runtime: python3.11
  handler: app.handler
  retryAttempts: 0
  destinations:
    onSuccess: {function: ping}
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {"seen": True}
"""

THROUGH_A_TOPIC = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: echoer}}
spec:
  runtime: python3.11
  handler: app.handler
  retryAttempts: 0
  environment: {{ROUTER: "{url}"}}
  events:
    chatter: {{type: SNS, topic: chatter}}
  code:
    inline:
      app.py: |
        import os, boto3
        sns = boto3.client("sns", endpoint_url=os.environ["ROUTER"], region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")

        def handler(event, context):
            # what it hears, it says again on the topic it listens to: a loop through SNS
            sns.publish(TopicArn="arn:aws:sns:us-east-1:000000000000:chatter", Message="again")
            return {{"ok": True}}
"""

FAST = {"KLAMBDA_ASYNC_RETRY_BASE_SECONDS": "0.2", "KLAMBDA_ASYNC_THROTTLE_BASE_SECONDS": "0.5"}


def get(r: RouterRunner, path: str) -> Any:
    with urllib.request.urlopen(r.url + path, timeout=30) as resp:
        return json.loads(resp.read())


def runs(r: RouterRunner, name: str) -> float:
    return r.metric("klambda_invocations_total", function=name)


@pytest.fixture
def router(tmp_path: Path) -> RouterRunner:
    fns = tmp_path / "fns"
    fns.mkdir()
    r = RouterRunner.up(fns, "-q", workdir=tmp_path, env=FAST)
    (fns / "loop.yaml").write_text(SELF_INVOKING.format(name="looper", loop="Terminate", url=r.url))
    (fns / "allowed.yaml").write_text(SELF_INVOKING.format(name="allowed", loop="Allow", url=r.url))
    (fns / "ping.yaml").write_text(THROUGH_DESTINATION)
    (fns / "echoer.yaml").write_text(THROUGH_A_TOPIC.format(url=r.url))
    return r


def test_a_function_invoking_itself_with_boto3_is_stopped_at_the_16th_hop(
    router: RouterRunner,
) -> None:
    with router as r:
        status, _, body = r.invoke("looper", {}, **{"X-Amz-Invocation-Type": "Event"})
        assert status == 202, body
        eventually(
            lambda: r.metric("klambda_recursive_invocations_dropped_total", function="looper") == 1,
            "the loop stopped",
            timeout=60,
        )
        # hops 0..15 (the 16th hop's own run ends, and is counted, after its call is dropped)
        eventually(lambda: runs(r, "looper") == 16, "the sixteenth run counted")
        dlq = get(r, "/klambda/v1/functions/looper/dlq")
        assert dlq["Depth"] == 1
        (letter,) = dlq["DeadLetters"]
        assert "RecursiveInvocationException" in json.dumps(letter)
        assert "stopped as hop 16 of a recursive loop" in r.output()
        # a sync call carrying hop 15's trace is refused the same way, before running
        status, _, body = r.invoke(
            "looper", {"stop_at": 0}, **{"X-Amzn-Trace-Id": "Root=1-a-b;Lineage=x:15"}
        )
        assert status == 400
        assert json.loads(body)["message"].startswith("Lambda has detected your function")
        assert r.metric("klambda_recursive_invocations_dropped_total", function="looper") == 2
        assert runs(r, "looper") == 16


def test_a_loop_through_an_on_success_destination_is_stopped(router: RouterRunner) -> None:
    with router as r:
        status, _, _ = r.invoke("ping", {}, **{"X-Amz-Invocation-Type": "Event"})
        assert status == 202
        eventually(
            lambda: get(r, "/klambda/v1/functions/ping/dlq")["Depth"] == 1,
            "the destination loop dead-lettered",
            timeout=60,
        )
        # the run that made the dropped call ends, and is counted, after the drop
        eventually(lambda: runs(r, "ping") == 16, "the sixteenth run counted")
        assert r.metric("klambda_recursive_invocations_dropped_total", function="ping") == 1


def test_recursive_loop_allow_lets_it_run(router: RouterRunner) -> None:
    with router as r:
        status, _, _ = r.invoke("allowed", {"stop_at": 20}, **{"X-Amz-Invocation-Type": "Event"})
        assert status == 202
        eventually(lambda: runs(r, "allowed") == 21, "21 runs", timeout=60)
        assert r.metric("klambda_recursive_invocations_dropped_total", function="allowed") == 0


def test_a_loop_through_a_topic_is_stopped(router: RouterRunner) -> None:
    with router as r:
        req = urllib.request.Request(
            r.url + "/klambda/v1/topics/chatter/messages",
            data=json.dumps({"Message": "hello"}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read())["Delivered"] == 1
        eventually(
            lambda: get(r, "/klambda/v1/functions/echoer/dlq")["Depth"] == 1,
            "the topic loop dead-lettered",
            timeout=60,
        )
        # the run that made the dropped call ends, and is counted, after the drop
        eventually(lambda: runs(r, "echoer") == 16, "the sixteenth run counted")
        assert r.metric("klambda_recursive_invocations_dropped_total", function="echoer") == 1
