"""The LogsQL compiler (klambda.logengine.logsql) and the engine's record shape: pure, no
engine. What the queries answer is checked against a real VictoriaLogs in
tests/integration/logs/test_insights_engine.py; here, the text sent and what is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from klambda.logengine.logsql import LogsQLCompiler, named_groups
from klambda.logengine.records import engine_record
from klambda.logs import insights
from klambda.logs.insights import QueryError

UTC = dt.UTC
START, END = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, 1, tzinfo=UTC)
RANGE = "_time:[2026-01-01T00:00:00.000000Z, 2026-01-01T01:00:00.000000Z)"


def logsql(query: str, functions: tuple[str, ...] = ()) -> str:
    return LogsQLCompiler().compile(insights.parse(query), functions, START, END).query


CASES = [
    ("limit 5", (), f'{RANGE} | sort by (_time desc) | limit 5 | fields "_time", "_msg"'),
    (
        'filter @type = "REPORT" | stats count(*) as n by bin(5m)',
        ("a", "b"),
        f'{RANGE} function:in("a", "b") | filter "@type":="REPORT" '
        '| stats by (_time:300000ms) count() as "n" | sort by ("_time") | limit 1000 '
        '| fields "_time", "n"',
    ),
    (
        "filter level = 'ERROR' and latency >= 500 | fields latency",
        (),
        f'{RANGE} | unpack_json from _msg fields ("level") '
        '| unpack_json from _msg fields ("latency") '
        '| filter ("level":="ERROR" AND "latency":>=500) | sort by (_time desc) | limit 1000 '
        '| fields "_time", "latency"',
    ),
    (
        "filter @duration != 3 and @message not like /x/ and @logStream not in ['s']"
        " | display @requestId",
        (),
        f'{RANGE} | filter ((NOT "@duration":range[3, 3] AND NOT "_msg":~"x") '
        'AND NOT "@logStream":in("s")) | sort by (_time desc) | limit 1000 '
        '| fields "_time", "@requestId"',
    ),
]


@pytest.mark.parametrize(("query", "functions", "expected"), CASES, ids=[c[0] for c in CASES])
def test_text_sent(query: str, functions: tuple[str, ...], expected: str) -> None:
    assert logsql(query, functions) == expected


REFUSED = [
    ("stats stddev(@duration)", "line 1, column 7: stddev(): not something"),
    ("filter @duration > @initDuration", "line 1, column 8: comparing two fields"),
    ('filter @requestId < "b"', "line 1, column 8: ordering strings (<)"),
    ("fields trim(@message) as m", "line 1, column 8: trim() as a value"),
    ("stats count(*) as n | fields @message", "line 1, column 30: no field '@message' here"),
]


@pytest.mark.parametrize(("query", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_logsql_cannot_say_is_refused_with_its_position(query: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        logsql(query)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("pattern", "names", "expected"),
    [
        (r"user=(.*?) action=(.*)", ("user", "action"), r"user=(?P<p0>.*?) action=(?P<p1>.*)"),
        (r"code=(?P<code>\d+)(x|y)", ("code", ""), r"code=(?P<p0>\d+)(?:x|y)"),
        (r"\((?:a)[(](b)", ("b",), r"\((?:a)[(](?P<p0>b)"),
    ],
)
def test_parse_groups_are_named_for_extract_regexp(
    pattern: str, names: tuple[str, ...], expected: str
) -> None:
    assert named_groups(pattern, names, "p")[0] == expected


def test_records_carry_the_discovered_fields() -> None:
    report = (
        "REPORT RequestId: r1\tDuration: 12.50 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\t"
    )
    assert engine_record("hello", 1767225600.5, "s1", "", report) == {
        "_time": "2026-01-01T00:00:00.500000Z",
        "_msg": report,
        "function": "hello",
        "@logStream": "s1",
        "@log": "000000000000:/aws/lambda/hello",
        "@requestId": "r1",
        "@type": "REPORT",
        "@duration": "12.5",
        "@billedDuration": "13",
        "@memorySize": "128",
        "@maxMemoryUsed": "40",
    }
    plain = engine_record("hello", 1767225600, "s1", "r2", "hi", account="123456789012")
    assert plain["@requestId"] == "r2"
    assert plain["@log"] == "123456789012:/aws/lambda/hello"
    assert "@type" not in plain
