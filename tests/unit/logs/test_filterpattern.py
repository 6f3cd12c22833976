"""CloudWatch's filter patterns against the examples CloudWatch Logs documents (terms,
phrases, ?OR, -exclude, %regex%, JSON, space-delimited), each with what it matches and
what it does not."""

from __future__ import annotations

import json

import pytest
from klambda.logs.filterpattern import PatternError, compile_pattern, metric_value, split_fields

# the unstructured events of CloudWatch's examples
EVENTS = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[SUCCESS 200] AUTHORIZED REQUEST",
]

TERMS = [
    ("", [0, 1, 2, 3, 4]),
    ("ERROR", [0, 1, 2, 3]),
    ("ERROR ARGUMENTS", [2, 3]),
    ('"INVALID ARGUMENTS"', [3]),
    ("?ERROR ?SUCCESS", [0, 1, 2, 3, 4]),
    ("?ARGUMENTS ?BAD", [0, 2, 3]),
    ("ERROR -ARGUMENTS", [0, 1]),
    ("-ERROR", [4]),
    ("REQUEST -UNAUTHORIZED", [0, 4]),
    ("error", []),  # case-sensitive
    ("%AUTHORIZED%", [1, 4]),
    ("%^\\[ERROR 4[0-9]{2}\\] [A-Z]+ REQUEST$%", [0, 1]),
    ('"[ERROR 4"', [0, 1, 2, 3]),
]


@pytest.mark.parametrize(("pattern", "matching"), TERMS, ids=[t[0] or "empty" for t in TERMS])
def test_terms(pattern: str, matching: list[int]) -> None:
    p = compile_pattern(pattern)
    assert [i for i, e in enumerate(EVENTS) if p.match(e)] == matching


# the JSON event of CloudWatch's examples
DOCUMENT = json.dumps(
    {
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": None,
        "ThisFlag": True,
        "level": "ERROR",
        "latency": 812,
        "user": {"id": 1, "email": "John.Doe@example.com"},
    }
)

JSON_CASES = [
    ('{ $.eventType = "UpdateTrail" }', True),
    ('{ $.eventType = "Update*" }', True),
    ('{ $.eventType = "CreateTrail" }', False),
    ("{ $.sourceIPAddress != 123.123.* }", True),
    ("{ $.sourceIPAddress = 111.111.* }", True),
    ('{ $.arrayKey[0] = "value" }', True),
    ('{ $.arrayKey[1] = "value" }', False),
    ("{ $.objectList[1].id = 2 }", True),
    ("{ $.objectList[1].id > 2 }", False),
    ("{ $.SomeObject IS NULL }", True),
    ("{ $.SomeOtherObject NOT EXISTS }", True),
    ("{ $.SomeObject NOT EXISTS }", False),
    ("{ $.ThisFlag IS TRUE }", True),
    ("{ $.ThisFlag IS FALSE }", False),
    ('{ $.level = "ERROR" && $.latency > 500 }', True),
    ('{ $.level = "ERROR" && $.latency > 900 }', False),
    ('{ $.level = "INFO" || $.latency >= 812 }', True),
    ('{ ($.user.id = 1) && ($.user.email = "John.Doe@example.com") }', True),
    ('{ ($.user.id = 2) || ($.level = "WARN" && $.latency > 1) }', False),
    ("{ $.latency <= 812 && $.latency < 813 }", True),
    ("{ $.eventType = %Update(Trail|Bucket)% }", True),
    ('{ $.missing != "x" }', False),  # no field, no match
]


@pytest.mark.parametrize(("pattern", "matches"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json(pattern: str, matches: bool) -> None:
    p = compile_pattern(pattern)
    assert (p.match(DOCUMENT) is not None) is matches
    assert p.match("[ERROR 400] BAD REQUEST") is None  # not JSON: never a match


# the access log line of CloudWatch's space-delimited examples
ACCESS = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534'
SERVER_ERROR = '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /index.html HTTP/1.0" 503 42'

DELIMITED = [
    ("[ip, user, username, timestamp, request, status_code, bytes]", True, True),
    ("[ip, user, username, timestamp, request, status_code]", False, False),
    ("[ip, user, ..., status_code, bytes]", True, True),
    ("[..., status_code = 200, bytes]", True, False),
    ("[..., status_code = 5*, bytes]", False, True),
    ('[ip, user, username, timestamp, request = "*html*", status_code, bytes]', False, True),
    ("[ip = 127.0.0.1, ...]", True, True),
    ("[..., status_code >= 500 && status_code < 600, bytes > 40]", False, True),
    ("[..., status_code = 200 || status_code = 503, bytes]", True, True),
    ("[..., bytes > 1000]", True, False),
    ("[ip, user = frank, ...]", False, False),
]


@pytest.mark.parametrize(("pattern", "ok", "error"), DELIMITED, ids=[d[0] for d in DELIMITED])
def test_space_delimited(pattern: str, ok: bool, error: bool) -> None:
    p = compile_pattern(pattern)
    assert (p.match(ACCESS) is not None) is ok
    assert (p.match(SERVER_ERROR) is not None) is error


def test_fields_of_a_line() -> None:
    assert split_fields(ACCESS) == [
        "127.0.0.1",
        "-",
        "frank",
        "10/Oct/2000:13:25:15 -0700",
        "GET /apache_pb.gif HTTP/1.0",
        "200",
        "1534",
    ]


def test_metric_values_from_a_match() -> None:
    m = compile_pattern("[ip, user, ..., status, bytes]").match(ACCESS)
    assert m is not None
    assert (m.value("$bytes"), m.value("$status"), m.value("$user"), m.value("$nope")) == (
        1534.0,
        200.0,
        None,
        None,
    )
    j = compile_pattern('{ $.level = "ERROR" }').match(DOCUMENT)
    assert j is not None
    assert (j.value("$.latency"), j.value("$.objectList[0].id"), j.value("$.level")) == (
        812.0,
        1.0,
        None,
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{ $.level = }", "column 13"),
        ("{ level = 1 }", "column 3"),
        ("[a, b = ]", "column 9"),
        ("%unclosed(%", "bad regular expression"),
        ("[status = 5 && bytes > 1]", "each field's conditions name that field"),
        ('"open', "unexpected"),
    ],
)
def test_mistakes(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message.replace("(", r"\(")):
        compile_pattern(pattern)


@pytest.mark.parametrize("value", ["1", "2.5", "-1", "$bytes", "$.latency", "$.a[0].b"])
def test_metric_value_forms(value: str) -> None:
    assert metric_value(value) == value


@pytest.mark.parametrize("value", ["", "one", "$", "$.", "1e3", "$a.b"])
def test_bad_metric_values(value: str) -> None:
    with pytest.raises(ValueError, match="is not a metric value"):
        metric_value(value)
