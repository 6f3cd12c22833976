"""A real S3-compatible server (MinIO) sends its bucket notifications to a real router: an
object put under the S3 trigger's prefix and its delete reach the function in S3's event
shape; an object outside the prefix does not. Objects written with boto3's S3 client."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from klambda.testing import RouterRunner, eventually

from tests.minioserver import PASSWORD, USER, MinioServer, minio_server

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: thumbs}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  events:
    uploads:
      type: S3
      bucket: photos
      events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
      filter: {{s3Key: {{rules: [{{name: prefix, value: images/}}]}}}}
  code:
    inline:
      app.py: |
        import json, os
        def handler(event, context):
            with open(os.environ["SEEN"], "a") as f:
                for r in event["Records"]:
                    f.write(json.dumps(r) + "\\n")
"""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RouterRunner, MinioServer, Path]]:
    tmp = tmp_path_factory.mktemp("s3")
    fns, seen = tmp / "fns", tmp / "seen.jsonl"
    fns.mkdir()
    (fns / "functions.yaml").write_text(FUNCTIONS.format(seen=seen))
    with contextlib.ExitStack() as stack:
        # the handlers mark what they did in files of the test's, out of a sandboxed
        # handler's reach (its own uid and /tmp): these routers run them unsandboxed
        r = stack.enter_context(RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp))
        minio = stack.enter_context(minio_server(tmp, r.url + "/klambda/v1/s3/events"))
        yield r, minio, seen


def seen(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_put_and_delete_under_a_prefix(stack: tuple[RouterRunner, MinioServer, Path]) -> None:
    r, minio, log = stack
    client = boto3.client(
        "s3", endpoint_url=minio.url, region_name="us-east-1",
        aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
    )  # fmt: skip
    client.create_bucket(Bucket="photos")
    # the server sends every object event of the bucket to klambda; the trigger filters
    client.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": minio.target_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    body = b"a cat picture"
    client.put_object(Bucket="photos", Key="docs/readme.txt", Body=b"not an image")
    client.put_object(Bucket="photos", Key="images/cat one.jpg", Body=body)
    client.delete_object(Bucket="photos", Key="images/cat one.jpg")

    rows = eventually(lambda: len(seen(log)) >= 2 and seen(log), "the put and the delete")
    put, deleted = sorted(rows, key=lambda x: x["eventName"])
    assert (put["eventName"], deleted["eventName"]) == ("ObjectCreated:Put", "ObjectRemoved:Delete")
    for x in (put, deleted):
        assert x["eventSource"] == "aws:s3"
        assert x["s3"]["bucket"] == {
            "name": "photos", "ownerIdentity": x["s3"]["bucket"]["ownerIdentity"],
            "arn": "arn:aws:s3:::photos",
        }  # fmt: skip
        assert x["s3"]["object"]["key"] == "images/cat+one.jpg"
        assert x["s3"]["configurationId"] == "thumbs/uploads"
    assert put["s3"]["object"]["size"] == len(body)
    assert put["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
    assert "size" not in deleted["s3"]["object"]
    assert r.metric("klambda_trigger_events_total", function="thumbs", type="S3") == 2
    assert r.metric("klambda_trigger_filtered_total", function="thumbs") == 1
    assert len(seen(log)) == 2
