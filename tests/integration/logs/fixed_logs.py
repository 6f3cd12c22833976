"""A fixed log set of two functions, as the router would have written it: `hello` in
Lambda's Text format (one environment), `orders` in JSON format (two environments).

hello: six invocations a minute apart from T0, durations 10..60 ms, the first a cold start
(Init Duration 100.5 ms); even ones log `user=alice action=buy`, odd ones `user=bob
action=view`; invocations 2 and 5 log `ERROR payment failed code=50N`.
orders: four invocations two minutes apart from T0+30s, durations 5..20 ms, latencies
100..400 in their JSON records, the last also an ERROR with latency 900; streams s1 (0, 1)
and s2 (2, 3), each starting cold (Init 200 ms).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from klambda import logformat
from klambda.logs import lines

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HELLO_STREAM = "2026/01/01/[$LATEST]hello0"
ORDERS_S1 = "2026/01/01/[$LATEST]orders1"
ORDERS_S2 = "2026/01/01/[$LATEST]orders2"


def _stamp(t: float) -> str:
    return logformat.timestamp(t)


def records() -> dict[str, list[tuple[float, str, str, str]]]:
    """function -> [(time, stream, request id, text)]"""
    base = T0.timestamp()
    hello: list[tuple[float, str, str, str]] = []
    for i in range(6):
        t, rid, s = base + 60 * i, f"h{i}", HELLO_STREAM
        if i == 0:
            hello.append((t, s, "", logformat.init_start("python3.11", "arn:hello")))
        who = "user=alice action=buy" if i % 2 == 0 else "user=bob action=view"
        hello.append((t + 0.001, s, rid, logformat.start(rid, "$LATEST")))
        hello.append((t + 0.002, s, rid, f"[INFO]\t{_stamp(t)}\t{rid}\t{who}"))
        if i in (2, 5):
            hello.append(
                (t + 0.003, s, rid, f"[ERROR]\t{_stamp(t)}\t{rid}\tERROR payment failed code=50{i}")
            )
        hello.append((t + 0.004, s, rid, logformat.end(rid)))
        report = logformat.report(rid, 10.0 * (i + 1), 128, 40 + i, 100.5 if i == 0 else None)
        hello.append((t + 0.005, s, rid, report))
    orders: list[tuple[float, str, str, str]] = []
    plat = logformat.platform("JSON", "INFO")
    for i in range(4):
        t, rid = base + 30 + 120 * i, f"o{i}"
        s = ORDERS_S1 if i < 2 else ORDERS_S2
        cold = i in (0, 2)

        def app(level: str, message: str, latency: int, at: float, rid: str, s: str) -> None:
            rec = {
                "timestamp": _stamp(at),
                "level": level,
                "message": message,
                "logger": "root",
                "requestId": rid,
                "latency": latency,
            }
            orders.append((at, s, rid, json.dumps(rec)))

        orders.append((t + 0.001, s, rid, plat.start(rid, "$LATEST") or ""))
        app("INFO", "order placed", 100 * (i + 1), t + 0.002, rid, s)
        if i == 3:
            app("ERROR", "order failed", 900, t + 0.003, rid, s)
        orders.append(
            (
                t + 0.004,
                s,
                rid,
                plat.report(rid, 5.0 * (i + 1), 256, 60, 200.0 if cold else None) or "",
            )
        )
    return {"hello": hello, "orders": orders}


def write(folder: Path) -> int:
    """The log files of the set in `folder`; the number of records."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for function, recs in records().items():
        with open(folder / lines.live_name(function), "w") as f:
            for t, s, rid, text in recs:
                f.write(lines.encode(t, s, rid, text))
                n += 1
    return n
