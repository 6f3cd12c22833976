"""Response streaming inside the environment: klambda's streaming contract for Python.

Lambda's managed Python runtime has no response streaming (only Node.js's
`awslambda.streamifyResponse`). klambda gives Python handlers the same two shapes Node has,
in Python's words:

- a generator: `def handler(event, context): yield "chunk"` - every `str` or `bytes` item
  is sent as it is produced; a `dict` yielded first is the HTTP response's metadata
  (`{"statusCode": 201, "headers": {...}, "cookies": [...]}`), Node's
  `HttpResponseStream.from(stream, metadata)`;
- a writer: `def handler(event, response_stream, context)` (three parameters, Node's order)
  with `response_stream.write(data)`, `.set_content_type(ct)`,
  `.set_http_response(metadata)` and `.end()`.

Invoked with streaming (a RESPONSE_STREAM function URL, InvokeWithResponseStream), each
write goes to the worker at once as a CHUNK frame (the first one carries the content type);
at most 200 MB. Invoked without, the chunks are collected and returned as the body, raw
(as Lambda buffers a streaming function called with Invoke), at most 6 MB. HTTP metadata
is framed as Lambda frames it: the content type
`application/vnd.awslambda.http-integration-response`, the metadata's JSON, 8 NUL bytes,
then the body.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

from klambda.environment import protocol

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DELIMITER = b"\0" * 8
STREAM_MAX_BYTES = 200 * 1024 * 1024
BUFFERED_MAX_BYTES = 6 * 1024 * 1024


class Collected:
    """A streaming handler's output, collected for a call that does not stream."""

    def __init__(self, body: bytes) -> None:
        self.body = body


class Streamed:
    """A streaming handler's output, already sent chunk by chunk."""


STREAMED = Streamed()


class ResponseTooLarge(Exception):
    """Raised into the handler when it writes past the limit (Lambda's error type)."""

    error_type = "Function.ResponseSizeTooLarge"


class ResponseStream:
    """What a writer-style handler writes to."""

    def __init__(self, channel: Any, streaming: bool) -> None:
        self._channel = channel
        self._streaming = streaming
        self._content_type = DEFAULT_CONTENT_TYPE
        self._prelude: bytes | None = None
        self._started = False
        self._sent = 0
        self._buffer: list[bytes] = []
        self.ended = False

    def set_content_type(self, content_type: str) -> None:
        if self._started:
            raise RuntimeError("the content type is set before the first write")
        self._content_type = content_type

    def set_http_response(self, metadata: dict[str, Any]) -> None:
        """Status code, headers and cookies of a function URL's response."""
        if self._started:
            raise RuntimeError("the HTTP response is set before the first write")
        self._content_type = HTTP_INTEGRATION
        self._prelude = json.dumps(metadata, separators=(",", ":")).encode() + DELIMITER

    def write(self, data: bytes | str) -> None:
        if self.ended:
            raise RuntimeError("write after end()")
        chunk = data.encode() if isinstance(data, str) else bytes(data)
        if not self._started:
            self._started = True
            if self._prelude is not None:
                chunk = self._prelude + chunk
        elif not chunk:
            return
        limit = STREAM_MAX_BYTES if self._streaming else BUFFERED_MAX_BYTES
        self._sent += len(chunk)
        if self._sent > limit:
            raise ResponseTooLarge(
                f"Response payload size exceeded maximum allowed payload size ({limit} bytes)."
            )
        if not self._streaming:
            self._buffer.append(chunk)
            return
        meta = {"content_type": self._content_type} if self._sent == len(chunk) else None
        self._channel.send(protocol.CHUNK, meta, chunk)

    def end(self) -> None:
        if not self._started and self._prelude is not None:
            self.write(b"")
        self.ended = True

    def result(self) -> Collected | Streamed:
        self.end()
        if self._streaming:
            return STREAMED
        return Collected(b"".join(self._buffer))


_WRITERS: dict[int, bool] = {}


def wants_writer(handler: Any) -> bool:
    """Whether the handler takes (event, response_stream, context)."""
    key = id(handler)
    if key not in _WRITERS:
        try:
            params = [
                p
                for p in inspect.signature(handler).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            _WRITERS[key] = len(params) == 3
        except (TypeError, ValueError):
            _WRITERS[key] = False
    return _WRITERS[key]


def run(handler: Any, event: Any, context: Any, channel: Any, streaming: bool) -> Any:
    """Call the handler; a streaming one's output is streamed (or collected)."""
    if wants_writer(handler):
        stream = ResponseStream(channel, streaming)
        handler(event, stream, context)
        return stream.result()
    result = handler(event, context)
    if not inspect.isgenerator(result) and not isinstance(result, Iterator):
        return result
    stream = ResponseStream(channel, streaming)
    for i, item in enumerate(_items(result)):
        if i == 0 and isinstance(item, dict):
            stream.set_http_response(item)
        else:
            stream.write(item)
    return stream.result()


def _items(gen: Iterator[Any]) -> Iterator[Any]:
    for item in gen:
        if not isinstance(item, str | bytes | bytearray | dict):
            raise TypeError(
                f"a streaming handler yields str or bytes (and first, optionally, a dict of "
                f"HTTP metadata), not {type(item).__name__}"
            )
        yield item


def finished(result: Any) -> tuple[bytes, int] | None:
    """The RESULT frame's (body, kind) for a streaming handler's output, else None."""
    if isinstance(result, Streamed):
        return b"", protocol.RESULT
    if isinstance(result, Collected):
        return result.body, protocol.RESULT
    return None
