"""AWS's event stream framing (`application/vnd.amazon.eventstream`), as the responses of
InvokeWithResponseStream carry it and boto3 reads it.

A message: a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the
headers, the payload, and the CRC32 of everything before it. A header: its name's length
(1 byte) and name, the value's type (7: string) and, for a string, its length (2 bytes) and
bytes. Written here because only the decoder is packaged (botocore.eventstream); the
encoding is these few lines.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        out += struct.pack("!B", len(n)) + n + struct.pack("!BH", _STRING, len(v)) + v
    return bytes(out)


def message(headers: dict[str, str], payload: bytes) -> bytes:
    h = _headers(headers)
    total = 12 + len(h) + len(payload) + 4
    prelude = struct.pack("!II", total, len(h))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + h + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, payload: bytes, content_type: str) -> bytes:
    return message(
        {
            ":event-type": event_type,
            ":content-type": content_type,
            ":message-type": "event",
        },
        payload,
    )


def payload_chunk(data: bytes) -> bytes:
    """InvokeWithResponseStream's PayloadChunk event."""
    return event("PayloadChunk", data, "application/octet-stream")


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """InvokeWithResponseStream's InvokeComplete event, the last of the stream."""
    body: dict[str, Any] = {}
    if error_code:
        body["ErrorCode"] = error_code
    if error_details:
        body["ErrorDetails"] = error_details
    if log_result:
        body["LogResult"] = log_result
    return event("InvokeComplete", json.dumps(body).encode(), "application/json")
