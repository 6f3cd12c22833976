"""Logs Insights queries over the fixed log set (fixed_logs.py), run by the store: each
query with the rows it must give. Mistakes in a query are refused naming the position."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.logs.insights import QueryError
from klambda.logstore import Ingester, LogStore
from klambda.logstore.query import run_query

from . import fixed_logs
from .fixed_logs import HELLO_STREAM, ORDERS_S1, ORDERS_S2, T0

START, END = T0 - dt.timedelta(minutes=1), T0 + dt.timedelta(hours=1)
HELLO_LOG, ORDERS_LOG = "000000000000:/aws/lambda/hello", "000000000000:/aws/lambda/orders"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogStore]:
    tmp = tmp_path_factory.mktemp("insights")
    written = fixed_logs.write(tmp / "logs")
    s = LogStore(tmp / "logs.duckdb")
    assert Ingester(s, tmp / "logs").ingest_once() == written
    yield s
    s.close()


def rows(store: LogStore, query: str, functions: tuple[str, ...] = ()) -> list[dict[str, str]]:
    result = run_query(store, query, functions, START, END)
    return [{c["field"]: c["value"] for c in row} for row in result.insights()["results"]]


CASES: list[tuple[str, tuple[str, ...], list[dict[str, str]]]] = [
    ('filter @type = "REPORT" | stats count(*) as n', (), [{"n": "6"}]),
    (
        "filter ispresent(@duration) | stats count(*) as n, sum(@duration) as total, "
        "avg(@duration) as mean, min(@duration) as lo, max(@duration) as hi by @log | sort @log",
        (),
        [
            {"@log": HELLO_LOG, "n": "6", "total": "210", "mean": "35", "lo": "10", "hi": "60"},
            {"@log": ORDERS_LOG, "n": "4", "total": "50", "mean": "12.5", "lo": "5", "hi": "20"},
        ],
    ),
    (
        "stats pct(@duration, 50) as p50, pct(@duration, 90) as p90, stddev(@duration) as sd",
        ("hello",),
        [{"p50": "35", "p90": "55", "sd": "18.708287"}],
    ),
    (
        "filter @message like /ERROR/ | fields @requestId | sort @timestamp asc",
        (),
        [{"@requestId": "h2"}, {"@requestId": "h5"}, {"@requestId": "o3"}],
    ),
    (
        'filter @message like "payment" | stats count(*) by bin(5m)',
        ("hello",),
        [
            {"bin(5m)": "2026-01-01 00:00:00.000", "count(*)": "1"},
            {"bin(5m)": "2026-01-01 00:05:00.000", "count(*)": "1"},
        ],
    ),
    (
        'parse @message "user=* action=*" as user, action | filter ispresent(user) '
        "| stats count(*) as n by user, action | sort n desc, user",
        (),
        [
            {"user": "alice", "action": "buy", "n": "3"},
            {"user": "bob", "action": "view", "n": "3"},
        ],
    ),
    (
        r"parse @message /code=(?<code>\d+)/ | filter ispresent(code) | fields code "
        "| sort code desc",
        (),
        [{"code": "505"}, {"code": "502"}],
    ),
    (
        'filter level = "ERROR" and latency > 500 | fields message, latency, @requestId',
        (),
        [{"message": "order failed", "latency": "900", "@requestId": "o3"}],
    ),
    ("filter latency >= 200 and latency < 400 | stats count(*) as n", (), [{"n": "2"}]),
    ("filter record.metrics.durationMs > 12 | stats count(*) as n", (), [{"n": "2"}]),
    ('filter @type in ["START", "END"] | stats count(*) as n', (), [{"n": "12"}]),
    (
        'filter @type not in ["START", "END", "REPORT", "INIT_START"] and @message =~ /^\\[/ '
        "| stats count(*) as n",
        (),
        [{"n": "8"}],
    ),
    (
        "stats count_distinct(@requestId) as requests, count_distinct(@logStream) as streams "
        "by @log | sort @log",
        (),
        [
            {"@log": HELLO_LOG, "requests": "6", "streams": "1"},
            {"@log": ORDERS_LOG, "requests": "4", "streams": "2"},
        ],
    ),
    (
        "dedup @logStream | fields @logStream, @requestId | sort @logStream",
        (),
        [
            {"@logStream": HELLO_STREAM, "@requestId": "h5"},
            {"@logStream": ORDERS_S1, "@requestId": "o1"},
            {"@logStream": ORDERS_S2, "@requestId": "o3"},
        ],
    ),
    (
        "sort @timestamp asc | dedup @logStream | fields @logStream, @requestId",
        (),
        [
            {"@logStream": HELLO_STREAM},  # INIT_START: no request id
            {"@logStream": ORDERS_S1, "@requestId": "o0"},
            {"@logStream": ORDERS_S2, "@requestId": "o2"},
        ],
    ),
    (
        "filter @initDuration > 0 | stats count(*) as cold, avg(@initDuration) as init by @log",
        (),
        [
            {"@log": HELLO_LOG, "cold": "1", "init": "100.5"},
            {"@log": ORDERS_LOG, "cold": "2", "init": "200"},
        ],
    ),
    (
        'fields @duration / 1000 as secs, @maxMemoryUsed * 2 as dbl | filter @type = "REPORT" '
        "| sort secs desc | limit 2",
        (),
        [{"secs": "0.06", "dbl": "90"}, {"secs": "0.05", "dbl": "88"}],
    ),
    (
        'filter @type = "platform.report" | stats sum(@billedDuration) as billed, '
        "max(@memorySize) as mem",
        (),
        [{"billed": "50", "mem": "256"}],
    ),
    (
        "fields @timestamp, @message | sort @timestamp desc | limit 2",
        ("hello",),
        [
            {
                "@timestamp": "2026-01-01 00:05:00.005",
                "@message": "REPORT RequestId: h5\tDuration: 60.00 ms\tBilled Duration: 60 ms\t"
                "Memory Size: 128 MB\tMax Memory Used: 45 MB\t",
            },
            {"@timestamp": "2026-01-01 00:05:00.004", "@message": "END RequestId: h5"},
        ],
    ),
    (
        "stats min(@timestamp) as first, max(@timestamp) as last by @log | sort @log",
        (),
        [
            {
                "@log": HELLO_LOG,
                "first": "2026-01-01 00:00:00.000",
                "last": "2026-01-01 00:05:00.005",
            },
            {
                "@log": ORDERS_LOG,
                "first": "2026-01-01 00:00:30.001",
                "last": "2026-01-01 00:06:30.004",
            },
        ],
    ),
    (
        'filter @requestId = "h3" | display @type',
        (),
        [{"@type": "REPORT"}, {"@type": "END"}, {}, {"@type": "START"}],
    ),
    (
        "filter @requestId = 'h3' and @message like 'user' # a comment\n"
        "| fields tolower(@message) as m",
        (),
        [{"m": "[info]\t2026-01-01t00:03:00.000z\th3\tuser=bob action=view"}],
    ),
    (
        "stats count(*) as n by @log | sort n desc | limit 1",
        ("hello", "orders"),
        [{"@log": HELLO_LOG, "n": "27"}],
    ),
    ("stats count(*) as n", ("orders",), [{"n": "13"}]),
    ("stats count(*) as n", ("nothing",), [{"n": "0"}]),
    (
        'filter strlen(@requestId) = 2 and not ispresent(@duration) and @type = "START" '
        "| stats count(*) as n by concat(@log, '!') as l",
        (),
        [{"l": HELLO_LOG + "!", "n": "6"}],
    ),
]


@pytest.mark.parametrize(("query", "functions", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_query(
    store: LogStore, query: str, functions: tuple[str, ...], expected: list[dict[str, str]]
) -> None:
    assert rows(store, query, functions) == expected


def test_statistics(store: LogStore) -> None:
    result = run_query(store, 'filter @type = "REPORT" | stats count(*)', (), START, END)
    stats = result.insights()["statistics"]
    assert (stats["recordsScanned"], stats["recordsMatched"]) == (40.0, 6.0)
    default = run_query(store, "limit 5", ("orders",), START, END).insights()
    assert default["fields"] == ["@timestamp", "@message"]
    assert len(default["results"]) == 5
    assert default["statistics"]["recordsMatched"] == 13.0


def test_time_range_is_respected(store: LogStore) -> None:
    later = T0 + dt.timedelta(minutes=4)
    result = run_query(store, "stats count(*) as n by @log | sort @log", (), later, END)
    assert [r[1] for r in result.rows] == [9, 7]  # hello 4, 5 (and an error); orders 2, 3


ERRORS = [
    ("stats avgg(@duration)", "line 1, column 7: unknown function avgg()"),
    ("fields @timestamp,\n  @message | filter", "line 2, column 20: the query ends too soon"),
    ("filter x == 3", "line 1, column 11: unexpected '='"),
    ("filter @message like", "the query ends too soon; expected one of a /regex/, a string"),
    ("stats @duration", "line 1, column 7: stats takes aggregate functions"),
    ("limit 20000", "line 1, column 7: limit must be from 1 to 10000, not 20000"),
    ("fields count(*)", "line 1, column 8: count() is an aggregate: it belongs in stats"),
    ("stats count(*) as n | fields @message", "line 1, column 30: no field '@message' here"),
    ("parse @message 'a * b' as x, y", "line 1, column 16: parse's pattern has 1 '*'"),
    (
        "parse @message /nothing named/",
        "line 1, column 16: parse's regular expression has no named",
    ),
    ("filter @message like /(open/", "line 1, column 22: bad regular expression"),
    ("stats count(*) by bin(5)", "line 1, column 19: bin() takes a period like 5m"),
    ("stats pct(@duration, 101)", "line 1, column 7: pct()'s percentile must be from 0 to 100"),
    ("filter @message ~ 'x'", "line 1, column 17: unexpected character '~'"),
    ("", "the query is empty"),
    ("stats count(*) as n, sum(@duration) as n", "stats gives two results the name 'n'"),
]


@pytest.mark.parametrize(("query", "message"), ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_mistakes_name_the_position(store: LogStore, query: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        run_query(store, query, (), START, END)
    assert message in str(err.value)


def test_a_regex_only_the_engine_refuses(store: LogStore) -> None:
    # Python's re takes a lookahead; RE2, DuckDB's engine, does not
    with pytest.raises(QueryError, match="invalid perl operator"):
        run_query(store, "filter @message like /a(?=b)/", (), START, END)


def test_fixed_set_files(tmp_path: Path) -> None:
    assert fixed_logs.write(tmp_path) == 40
