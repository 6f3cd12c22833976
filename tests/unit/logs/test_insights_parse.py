"""The Insights grammar: what a query means, as data."""

from __future__ import annotations

import re

import pytest
from klambda.logs import insights as q


def test_commands_in_order_with_default_names() -> None:
    query = q.parse(
        "fields @timestamp, @message | filter @message like /ERROR/ | stats count() by bin(5m)"
    )
    fields, filter_, stats = query.commands
    assert isinstance(fields, q.Fields)
    assert [n.name for n in fields.items] == ["@timestamp", "@message"]
    assert isinstance(filter_, q.Filter)
    assert isinstance(filter_.condition, q.Like)
    assert filter_.condition.pattern == q.Regex("ERROR", q.Pos(1, 52))
    assert isinstance(stats, q.Stats)
    assert [a.name for a in stats.aggregates] == ["count()"]
    assert [b.name for b in stats.by] == ["bin(5m)"]
    assert stats.by[0].expr == q.Call("bin", (q.Duration(300.0, "5m"),), q.Pos(1, 79))


def test_precedence_and_associativity() -> None:
    (f,) = q.parse("filter a = 1 or b = 2 and not c - 1 - 2 > 3 * 4").commands
    assert isinstance(f, q.Filter)
    cond = f.condition
    assert isinstance(cond, q.Binary)
    assert cond.op == "or"
    right = cond.right
    assert isinstance(right, q.Binary)
    assert right.op == "and"
    neg = right.right
    assert isinstance(neg, q.Unary)
    assert neg.op == "not"
    cmp_ = neg.operand
    assert isinstance(cmp_, q.Binary)
    assert cmp_.op == ">"
    assert isinstance(cmp_.left, q.Binary)
    assert cmp_.left.op == "-"  # (c - 1) - 2
    assert isinstance(cmp_.left.left, q.Binary)


@pytest.mark.parametrize(
    ("glob", "line", "fields"),
    [
        ("user=* action=*", "user=ada action=buy now", ("ada", "buy now")),
        ("[*] *", "[ERROR] disk (full)", ("ERROR", "disk (full)")),
        ("a.b=*;", "x a.b=1; a.b=2;", ("1",)),
    ],
)
def test_parse_globs(glob: str, line: str, fields: tuple[str, ...]) -> None:
    names = ", ".join(f"f{i}" for i in range(len(fields)))
    (p,) = q.parse(f"parse @message '{glob}' as {names}").commands
    assert isinstance(p, q.Parse)
    m = re.search(p.pattern, line)
    assert m is not None
    assert m.groups() == fields


def test_parse_regex_named_groups_in_order() -> None:
    (p,) = q.parse(r"parse @message /(\w+) (?<user>\S+) (?P<verb>\w+)\/x/").commands
    assert isinstance(p, q.Parse)
    assert p.names == ("", "user", "verb")
    assert p.pattern == r"(\w+) (?P<user>\S+) (?P<verb>\w+)/x"


def test_keywords_are_case_insensitive_and_fields_may_be_quoted() -> None:
    (f, s) = q.parse("FILTER `a b` IN ['x'] | SORT @timestamp DESC").commands
    assert isinstance(f, q.Filter)
    assert f.condition == q.In(q.Field("a b", q.Pos(1, 8)), (q.String("x"),))
    assert isinstance(s, q.Sort)
    assert s.keys[0].descending


def test_count_star_is_count() -> None:
    (s,) = q.parse("stats count(*) as n, count(@requestId)").commands
    assert isinstance(s, q.Stats)
    assert s.aggregates[0].expr == q.Call("count", (), q.Pos(1, 7))
    assert s.aggregates[1].name == "count(@requestId)"
