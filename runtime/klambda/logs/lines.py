"""The log files the worker writes and the log store reads: one JSON object per line.

`STATE/logs/<function>.log` is a function's live file; when it grows past a size it is
renamed `<function>.<milliseconds>.log` (sealed) and a new live file is started. Each line
is one record of one environment's stream: `{"t": seconds since the epoch, "s": stream,
"r": request id, "m": the record's text}`. JSON Lines because the store's engine reads
them natively (no Python per record at ingest), a multi-line traceback stays one record,
and log engines take them as they are; the line is built with the C-accelerated string
escaper rather than `json.dumps`, which is the cheaper of the two on the invoke path.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring

LIVE_SUFFIX = ".log"


def encode(t: float, stream: str, request_id: str, text: str) -> str:
    """One record's line. klambda makes streams and request ids without quotes, backslashes
    or control characters; one that had any would still be escaped."""
    if not (_plain(stream) and _plain(request_id)):
        return json.dumps({"t": round(t, 6), "s": stream, "r": request_id, "m": text}) + "\n"
    return f'{{"t":{t:.6f},"s":"{stream}","r":"{request_id}","m":{encode_basestring(text)}}}\n'


def _plain(value: str) -> bool:
    return value.isprintable() and '"' not in value and "\\" not in value


def decode(line: str) -> tuple[float, str, str, str]:
    obj = json.loads(line)
    return float(obj["t"]), obj["s"], obj["r"], obj["m"]


def live_name(function: str) -> str:
    return function + LIVE_SUFFIX


def sealed_name(function: str, millis: int) -> str:
    return f"{function}.{millis}{LIVE_SUFFIX}"


def parse_name(name: str) -> tuple[str, int | None] | None:
    """(function, None) for a live file, (function, milliseconds) for a sealed one; None
    for anything else (function names have no dots)."""
    if not name.endswith(LIVE_SUFFIX) or name.startswith("."):
        return None
    parts = name[: -len(LIVE_SUFFIX)].split(".")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 2 and parts[0] and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None
