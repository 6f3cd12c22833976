"""S3 bucket notifications: which triggers an object event concerns, and the event a
function receives.

An S3-compatible server (MinIO in the tests) sends its bucket notifications to the router
in S3's event shape; `record` rewrites each into exactly what AWS sends a function
(`eventSource` aws:s3, `eventName` without the `s3:` prefix, `ObjectCreated:Put`, the key
URL-encoded as S3 encodes it, size and eTag for created objects), as the SAM CLI's `sam
local generate-event s3 put|delete` prints it. `matches` is S3's notification filter: the
event type (with `*` wildcards, `s3:ObjectCreated:*`) and the key's prefix and suffix,
compared on the decoded key.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

EVENT_TYPES = (
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
)


@dataclass(frozen=True)
class KeyFilter:
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class ObjectEvent:
    """One object event, as the server reported it (the key decoded)."""

    name: str  # ObjectCreated:Put, ObjectRemoved:Delete, ...
    bucket: str
    key: str
    size: int | None
    etag: str | None
    sequencer: str
    time: str
    source_ip: str
    request_id: str
    principal: str


class InvalidNotification(ValueError):
    pass


def parse(notification: Mapping[str, Any]) -> list[ObjectEvent]:
    """The object events of a notification body (`{"Records": [...]}`, S3's shape as an
    S3-compatible server sends it); InvalidNotification naming what is missing."""
    records = notification.get("Records")
    if not isinstance(records, list):
        raise InvalidNotification("Records: a list is required")
    out = []
    for i, r in enumerate(records):
        try:
            s3 = r["s3"]
            obj = s3["object"]
            name = str(r["eventName"]).removeprefix("s3:")
            out.append(
                ObjectEvent(
                    name=name,
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    size=int(obj["size"]) if obj.get("size") is not None else None,
                    etag=str(obj["eTag"]) if obj.get("eTag") else None,
                    sequencer=str(obj.get("sequencer") or ""),
                    time=str(r.get("eventTime") or _now()),
                    source_ip=str((r.get("requestParameters") or {}).get("sourceIPAddress", "")),
                    request_id=str((r.get("responseElements") or {}).get("x-amz-request-id", "")),
                    principal=str((r.get("userIdentity") or {}).get("principalId", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidNotification(f"Records[{i}]: {err!s} is missing or invalid") from None
    return out


def matches(events: Sequence[str], key_filter: KeyFilter, e: ObjectEvent) -> bool:
    if not any(fnmatch.fnmatchcase("s3:" + e.name, pattern) for pattern in events):
        return False
    return e.key.startswith(key_filter.prefix) and e.key.endswith(key_filter.suffix)


def record(e: ObjectEvent, *, region: str, configuration: str) -> dict[str, Any]:
    """One element of `Records` in the event S3 sends a function."""
    obj: dict[str, Any] = {"key": quote_plus(e.key, safe="/")}
    if e.name.startswith("ObjectCreated"):
        obj["size"] = e.size or 0
        obj["eTag"] = (e.etag or "").strip('"')
    obj["sequencer"] = e.sequencer
    return {
        "eventVersion": "2.0",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": e.time,
        "eventName": e.name,
        "userIdentity": {"principalId": e.principal},
        "requestParameters": {"sourceIPAddress": e.source_ip},
        "responseElements": {"x-amz-request-id": e.request_id, "x-amz-id-2": e.request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration,
            "bucket": {
                "name": e.bucket,
                "ownerIdentity": {"principalId": e.principal},
                "arn": f"arn:aws:s3:::{e.bucket}",
            },
            "object": obj,
        },
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
