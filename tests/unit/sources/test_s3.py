"""S3 bucket notifications: the S3 trigger's model, which events it concerns, and the
event a function receives."""

from __future__ import annotations

from typing import Any

import pytest
from klambda.api.manifest import describe_errors
from klambda.api.triggers import S3Event
from klambda.triggers import s3
from pydantic import TypeAdapter, ValidationError

NOTIFICATION = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "photos/images/a b+c.jpg",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-12-01T15:00:00.123Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "klambda"},
            "requestParameters": {"principalId": "klambda", "sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "187D0F1A2B3C4D5E"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
                "object": {
                    "key": "images%2Fa+b%2Bc.jpg",
                    "size": 5,
                    "eTag": "5d41402abc4b2a76b9719d911017c592",
                    "sequencer": "187D0F1A2B3C4D5E",
                },
            },
        }
    ],
}


def test_parse_and_record() -> None:
    (e,) = s3.parse(NOTIFICATION)
    assert (e.name, e.bucket, e.key, e.size) == (
        "ObjectCreated:Put",
        "photos",
        "images/a b+c.jpg",
        5,
    )
    r = s3.record(e, region="us-east-1", configuration="thumbs/uploads")
    assert r["eventSource"] == "aws:s3"
    assert r["eventName"] == "ObjectCreated:Put"
    assert r["s3"]["object"] == {
        "key": "images/a+b%2Bc.jpg",  # S3's encoding: spaces as '+', '/' kept
        "size": 5,
        "eTag": "5d41402abc4b2a76b9719d911017c592",
        "sequencer": "187D0F1A2B3C4D5E",
    }
    assert r["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos"


def test_a_removed_object_has_no_size() -> None:
    removed = {"Records": [{**NOTIFICATION["Records"][0], "eventName": "s3:ObjectRemoved:Delete"}]}  # type: ignore[dict-item]
    (e,) = s3.parse(removed)
    assert set(s3.record(e, region="r", configuration="c")["s3"]["object"]) == {"key", "sequencer"}


@pytest.mark.parametrize(
    "body",
    [{}, {"Records": "x"}, {"Records": [{"eventName": "s3:ObjectCreated:Put"}]}],
)
def test_invalid_notifications(body: dict[str, Any]) -> None:
    with pytest.raises(s3.InvalidNotification):
        s3.parse(body)


@pytest.mark.parametrize(
    ("events", "prefix", "suffix", "name", "key", "hit"),
    [
        (["s3:ObjectCreated:*"], "", "", "ObjectCreated:Put", "a", True),
        (["s3:ObjectCreated:*"], "", "", "ObjectRemoved:Delete", "a", False),
        (["s3:ObjectRemoved:Delete"], "", "", "ObjectRemoved:Delete", "a", True),
        (["s3:ObjectCreated:Put"], "", "", "ObjectCreated:Copy", "a", False),
        (["s3:ObjectCreated:*"], "images/", "", "ObjectCreated:Put", "images/x.jpg", True),
        (["s3:ObjectCreated:*"], "images/", "", "ObjectCreated:Put", "docs/x.jpg", False),
        (["s3:ObjectCreated:*"], "images/", ".jpg", "ObjectCreated:Put", "images/x.png", False),
    ],
)
def test_matches(
    events: list[str], prefix: str, suffix: str, name: str, key: str, hit: bool
) -> None:
    e = s3.ObjectEvent(name, "b", key, 1, "e", "s", "t", "ip", "rid", "p")
    assert s3.matches(events, s3.KeyFilter(prefix, suffix), e) is hit


TRIGGER: TypeAdapter[S3Event] = TypeAdapter(S3Event)


def test_trigger_model() -> None:
    t = TRIGGER.validate_python(
        {
            "type": "S3",
            "bucket": "photos",
            "events": ["s3:ObjectCreated:*"],
            "filter": {"s3Key": {"rules": [{"name": "prefix", "value": "images/"}]}},
        }
    )
    assert (t.key_rule("prefix"), t.key_rule("suffix")) == ("images/", "")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"bucket": "Photos", "events": ["s3:ObjectCreated:*"]}, "bucket"),
        ({"bucket": "photos", "events": []}, "events"),
        ({"bucket": "photos", "events": ["s3:Everything"]}, "events.0"),
        (
            {
                "bucket": "photos",
                "events": ["s3:ObjectCreated:*"],
                "filter": {"s3Key": {"rules": [{"name": "prefix", "value": "a"}] * 2}},
            },
            "at most one prefix and one suffix",
        ),
    ],
)
def test_trigger_refused(raw: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as info:
        TRIGGER.validate_python({"type": "S3", **raw})
    assert words in "; ".join(describe_errors(info.value))
