"""AWS's event stream framing as klambda writes it, read back by botocore's own decoder
(what boto3's invoke_with_response_stream uses)."""

from __future__ import annotations

import json

from botocore.eventstream import EventStreamBuffer
from klambda import eventstream


def test_botocore_reads_what_klambda_writes() -> None:
    buf = EventStreamBuffer()
    data = eventstream.payload_chunk(b"hello ") + eventstream.payload_chunk(b"\x00world")
    data += eventstream.invoke_complete("Unhandled", "boom", "bG9n")
    # fed in odd pieces, as a socket delivers them
    for i in range(0, len(data), 7):
        buf.add_data(data[i : i + 7])
    messages = list(buf)
    assert [m.headers[":event-type"] for m in messages] == [
        "PayloadChunk",
        "PayloadChunk",
        "InvokeComplete",
    ]
    assert all(m.headers[":message-type"] == "event" for m in messages)
    assert messages[0].payload + messages[1].payload == b"hello \x00world"
    assert json.loads(messages[2].payload) == {
        "ErrorCode": "Unhandled",
        "ErrorDetails": "boom",
        "LogResult": "bG9n",
    }
