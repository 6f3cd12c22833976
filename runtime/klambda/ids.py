"""Random identifiers made on every invocation: request ids and a trace's random parts.

`uuid.uuid4()` and `os.urandom` ask the kernel for a few bytes each time, a system call
apiece, several of them per invocation (the request id, a new trace root, its parent id).
Between two processes taking turns on a socket those run with cold caches and cost
several µs each. Here the kernel's random bytes are read a page at a time and sliced:
the same randomness, one system call per ~100 invocations. For uniqueness, not secrets.
"""

from __future__ import annotations

import os
import threading

CHUNK = 4096

_buffer = b""
_taken = CHUNK
_lock = threading.Lock()  # threads other than the event loop's make ids too


def random_bytes(n: int) -> bytes:
    """`n` (at most CHUNK) bytes from the kernel's random source."""
    global _buffer, _taken
    with _lock:
        start = _taken
        end = start + n
        if end > len(_buffer):
            _buffer, start, end = os.urandom(CHUNK), 0, n
        _taken = end
        return _buffer[start:end]


def random_hex(n: int) -> str:
    """`n` random bytes as 2n hex digits."""
    return random_bytes(n).hex()


def request_id() -> str:
    """A random UUID (version 4, RFC 9562) in its usual 8-4-4-4-12 form, as Lambda's
    request ids are."""
    h = random_bytes(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def _forget() -> None:
    """A forked child must not hand out the bytes its parent also will."""
    global _buffer, _taken, _lock
    _buffer, _taken, _lock = b"", CHUNK, threading.Lock()


os.register_at_fork(after_in_child=_forget)
