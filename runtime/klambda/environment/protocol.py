"""Frames between a worker and an environment, over a SOCK_STREAM socketpair.

A frame is a 9-byte header (kind, meta length, body length) followed by a small JSON
`meta` and a raw `body`. Payloads travel as the bytes the client sent and the bytes the
handler's result encoded to: nothing on the path decodes or re-encodes them.

This is the native, fast worker<->environment protocol; Lambda's Runtime API can sit
beside it as a second implementation of the same exchange.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

HEADER = struct.Struct("!BII")

# worker -> environment
INVOKE = 1
SPEC = 2  # to a spare environment: meta is the spec it becomes (see zygote.py)
# environment -> worker
READY = 10  # init done: meta {"init_ms", "pid"}
INIT_ERROR = 11  # init failed: body is Lambda's error JSON; the environment exits
LOG = 12  # body: formatted log lines
RESULT = 13  # handler returned: body is the JSON result; meta {"duration_ms", "max_rss_kb"}
ERROR = 14  # handler raised: body is Lambda's error JSON; meta as RESULT
INVALID = 15  # the payload is not JSON: meta {"message"}; the handler did not run
CHUNK = 16  # a streamed piece of the response (body); the first has meta {"content_type"}

EMPTY: dict[str, Any] = {}
# json.dumps with separators= builds a new encoder at every call; one is kept instead
_compact = json.JSONEncoder(separators=(",", ":")).encode


def encode(kind: int, meta: dict[str, Any] | None = None, body: bytes = b"") -> bytes:
    m = _compact(meta).encode() if meta else b""
    return HEADER.pack(kind, len(m), len(body)) + m + body


def decode_header(header: bytes) -> tuple[int, int, int]:
    kind, meta_len, body_len = HEADER.unpack(header)
    return kind, meta_len, body_len


def decode_meta(raw: bytes) -> dict[str, Any]:
    return json.loads(raw) if raw else EMPTY


def recv_frame(sock: Any) -> tuple[int, dict[str, Any], bytes] | None:
    """Read exactly one frame from a socket, nothing past it (used before buffering)."""

    def exact(n: int) -> bytes | None:
        chunks, left = [], n
        while left:
            chunk = sock.recv(left)
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    header = exact(HEADER.size)
    if header is None:
        return None
    kind, meta_len, body_len = HEADER.unpack(header)
    rest = exact(meta_len + body_len) if meta_len + body_len else b""
    if rest is None:
        return None
    return kind, decode_meta(rest[:meta_len]), rest[meta_len:]


def read_frame(stream: BinaryIO) -> tuple[int, dict[str, Any], bytes] | None:
    """Blocking read of one frame (used inside the environment); None at EOF."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    kind, meta_len, body_len = HEADER.unpack(header)
    meta = stream.read(meta_len) if meta_len else b""
    body = stream.read(body_len) if body_len else b""
    if len(meta) < meta_len or len(body) < body_len:
        return None
    return kind, decode_meta(meta), body
