"""An Insights query (klambda.logs.insights) as one DuckDB statement over the store.

Each command becomes a step of a `WITH` chain over the one before it, as Insights applies
them in order: the first step selects the time range and the log groups and names the
columns with Insights' discovered fields (`@timestamp`, `@message`, `@duration`, ...);
`filter` is a WHERE, `fields` and `parse` add columns, `stats` groups, `dedup` keeps the
first row of each group in the current order, `limit` cuts. A field that is not a column
is looked up in the message when it is a JSON object (`record.metrics.durationMs`), as
Insights discovers JSON fields. Values are typed as Insights types them: a comparison or
an aggregate with a number reads the other side as a number (null when it is not one), and
a negative test (`!=`, `not like`, `not in`) holds for a record that lacks the field.

Pure: it writes SQL text and its parameters; `run_query` in klambda.logstore.query runs it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from klambda.logs import insights as q
from klambda.logs.insights import QueryError

DEFAULT_LIMIT = 1000

# Insights' discovered fields of Lambda's logs: column of `events`, and type
BASE: dict[str, tuple[str, str]] = {
    "@timestamp": ("ts", "time"),
    "@message": ("message", "str"),
    "@logStream": ("stream", "str"),
    "@log": ("", "str"),  # account:log group, built from the function
    "@requestId": ("request_id", "str"),
    "@type": ("type", "str"),
    "@duration": ("duration", "num"),
    "@billedDuration": ("billed_duration", "num"),
    "@memorySize": ("memory_size", "num"),
    "@maxMemoryUsed": ("max_memory_used", "num"),
    "@initDuration": ("init_duration", "num"),
    "@ingestionTime": ("ingestion_time", "time"),
}
DEFAULT_DISPLAY = ("@timestamp", "@message")


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: list[Any]
    columns: list[str]  # the result's fields, in order
    kinds: list[str]  # "time", "num", "str", "any", "bool" per column
    count_sql: str  # records in the range and groups (Insights' recordsScanned)
    matched_sql: str | None  # records left by the filters before stats (recordsMatched)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _num(sql: str, kind: str) -> str:
    return sql if kind == "num" else f"TRY_CAST({sql} AS DOUBLE)"


def _text(sql: str, kind: str) -> str:
    return sql if kind == "str" else f"CAST({sql} AS VARCHAR)"


def json_path(name: str) -> str:
    """`a.b.c` as DuckDB's JSON path `$."a"."b"."c"`."""
    return "$" + "".join("." + json.dumps(part) for part in name.split("."))


@dataclass
class _Scope:
    columns: dict[str, str]  # name -> kind, in order
    order: list[str] = field(default_factory=list)  # ORDER BY items
    display: list[str] | None = None
    after_stats: bool = False


class Compiler:
    def __init__(self, account: str = "000000000000") -> None:
        self.account = account

    def compile(
        self,
        query: q.Query,
        functions: Sequence[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> Compiled:
        where = "ts >= ? AND ts < ?"
        params: list[Any] = [start, end]
        if functions:
            where += f" AND function IN ({', '.join('?' for _ in functions)})"
            params += list(functions)
        select = []
        for name, (column, _kind) in BASE.items():
            sql = column or f"{literal(self.account + ':/aws/lambda/')} || function"
            select.append(f"{sql} AS {ident(name)}")
        steps = [f"SELECT {', '.join(select)} FROM events WHERE {where}"]
        scope = _Scope({name: kind for name, (_c, kind) in BASE.items()})
        matched_at: int | None = None
        filtered = False
        limit: int | None = None
        for command in query.commands:
            if isinstance(command, q.Stats) and matched_at is None:
                matched_at = len(steps)
            if isinstance(command, q.Filter | q.Parse):
                filtered = True
            step = self._command(command, scope, len(steps))
            if isinstance(command, q.Limit):
                limit = command.count if limit is None else min(limit, command.count)
            if step is not None:
                steps.append(step)
        display = scope.display or (
            list(scope.columns) if scope.after_stats else list(DEFAULT_DISPLAY)
        )
        for name in display:
            if name not in scope.columns:
                raise QueryError(f"no field {name!r} to show")
        order = scope.order or ([f"{ident('@timestamp')} DESC"] if not scope.after_stats else [])
        with_ = ", ".join(f"s{i} AS ({sql})" for i, sql in enumerate(steps))
        last = f"s{len(steps) - 1}"
        sql = (
            f"WITH {with_} SELECT {', '.join(ident(n) for n in display)} FROM {last}"
            + (f" ORDER BY {', '.join(order)}" if order else "")
            + f" LIMIT {limit or DEFAULT_LIMIT}"
        )
        count_sql = f"SELECT count(*) FROM events WHERE {where}"
        matched_sql = None
        if filtered:
            upto = matched_at if matched_at is not None else len(steps)
            chain = ", ".join(f"s{i} AS ({sql})" for i, sql in enumerate(steps[:upto]))
            matched_sql = f"WITH {chain} SELECT count(*) FROM s{upto - 1}"
        return Compiled(
            sql,
            params,
            display,
            [scope.columns[n] for n in display],
            count_sql,
            matched_sql,
        )

    # -- commands -----------------------------------------------------------------------

    def _command(self, c: q.Command, scope: _Scope, n: int) -> str | None:
        prev = f"s{n - 1}"
        if isinstance(c, q.Filter):
            sql, _kind = self.expr(c.condition, scope)
            return f"SELECT * FROM {prev} WHERE {sql}"
        if isinstance(c, q.Fields | q.Display):
            items = (
                c.items if isinstance(c, q.Fields) else tuple(q.Named(f, f.name) for f in c.fields)
            )
            step = self._add_columns(
                [(item.name, *self.expr(item.expr, scope)) for item in items], scope, prev
            )
            shown = [item.name for item in items]
            if isinstance(c, q.Display):
                scope.display = shown
            else:
                scope.display = [
                    *(scope.display or []),
                    *[s for s in shown if s not in (scope.display or [])],
                ]
            return step
        if isinstance(c, q.Parse):
            return self._parse(c, scope, prev)
        if isinstance(c, q.Stats):
            return self._stats(c, scope, prev)
        if isinstance(c, q.Sort):
            scope.order = [
                f"{self.expr(k.expr, scope)[0]} {'DESC' if k.descending else 'ASC'} NULLS LAST"
                for k in c.keys
            ]
            return None
        if isinstance(c, q.Limit):
            order = scope.order or (
                [f"{ident('@timestamp')} DESC"] if not scope.after_stats else []
            )
            return (
                f"SELECT * FROM {prev}"
                + (f" ORDER BY {', '.join(order)}" if order else "")
                + f" LIMIT {c.count}"
            )
        if isinstance(c, q.Dedup):
            keys = [self.expr(f, scope)[0] for f in c.fields]
            order = scope.order or (
                [f"{ident('@timestamp')} DESC"] if not scope.after_stats else ["1"]
            )
            nulls = " OR ".join(f"{k} IS NULL" for k in keys)
            return (
                f"SELECT * FROM {prev} QUALIFY {nulls} OR row_number() OVER "
                f"(PARTITION BY {', '.join(keys)} ORDER BY {', '.join(order)}) = 1"
            )
        raise AssertionError(c)  # pragma: no cover - every command is handled above

    @staticmethod
    def _add_columns(items: list[tuple[str, str, str]], scope: _Scope, prev: str) -> str | None:
        """SELECT the previous step with these (name, sql, kind) columns added or replaced."""
        added, replaced = [], []
        for name, sql, kind in items:
            if sql == ident(name):
                continue  # `fields @timestamp`: already a column
            if name in scope.columns:
                replaced.append(f"{sql} AS {ident(name)}")
            else:
                added.append(f"{sql} AS {ident(name)}")
            scope.columns[name] = kind
        if not added and not replaced:
            return None
        star = "*" + (f" REPLACE ({', '.join(replaced)})" if replaced else "")
        return f"SELECT {', '.join([star, *added])} FROM {prev}"

    def _parse(self, c: q.Parse, scope: _Scope, prev: str) -> str:
        source, kind = self.expr(c.source, scope)
        keys = [f"g{i}" for i in range(len(c.names))]
        struct = (
            f"regexp_extract({_text(source, kind)}, {literal(c.pattern)}, "
            f"[{', '.join(literal(k) for k in keys)}])"
        )
        items = [
            (name, f"nullif(({struct}).{key}, '')", "any")
            for name, key in zip(c.names, keys, strict=True)
            if name
        ]
        step = self._add_columns(items, scope, prev)
        assert step is not None
        return step

    def _stats(self, c: q.Stats, scope: _Scope, prev: str) -> str:
        groups = [(g.name, *self.expr(g.expr, scope)) for g in c.by]
        aggregates = [(a.name, *self._aggregate(a.expr, scope)) for a in c.aggregates]
        names = [n for n, _s, _k in groups + aggregates]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise QueryError(f"stats gives two results the name {sorted(dupes)[0]!r}: use 'as'")
        select = [f"{sql} AS {ident(name)}" for name, sql, _k in groups + aggregates]
        group_by = (
            f" GROUP BY {', '.join(str(i + 1) for i in range(len(groups)))}" if groups else ""
        )
        scope.columns = {name: kind for name, _s, kind in groups + aggregates}
        scope.order = [f"{ident(name)} ASC NULLS LAST" for name, _s, _k in groups]
        scope.display = None
        scope.after_stats = True
        return f"SELECT {', '.join(select)} FROM {prev}{group_by}"

    def _aggregate(self, e: q.Expr, scope: _Scope) -> tuple[str, str]:
        assert isinstance(e, q.Call)
        args = [
            self.expr(a, scope) for a in e.args if not isinstance(a, q.Number) or e.name != "pct"
        ]
        if e.name == "count":
            return ("count(*)" if not args else f"count({args[0][0]})"), "num"
        sql, kind = args[0]
        if e.name == "count_distinct":
            return f"count(DISTINCT {sql})", "num"
        if e.name in ("min", "max"):
            if kind == "time":
                return f"{e.name}({sql})", "time"
            return f"{e.name}({_num(sql, kind)})", "num"
        if e.name == "pct":
            p = e.args[1]
            assert isinstance(p, q.Number)
            return f"quantile_cont({_num(sql, kind)}, {p.value / 100!r})", "num"
        fn = {"sum": "sum", "avg": "avg", "stddev": "stddev_samp"}[e.name]
        return f"{fn}({_num(sql, kind)})", "num"

    # -- expressions --------------------------------------------------------------------

    def expr(self, e: q.Expr, scope: _Scope) -> tuple[str, str]:
        """(SQL, kind) of an expression in the columns of `scope`."""
        if isinstance(e, q.Field):
            return self._field(e, scope)
        if isinstance(e, q.Number):
            return (repr(int(e.value)) if e.value.is_integer() else repr(e.value)), "num"
        if isinstance(e, q.String):
            return literal(e.value), "str"
        if isinstance(e, q.Call):
            return self._call(e, scope)
        if isinstance(e, q.Unary):
            sql, kind = self.expr(e.operand, scope)
            if e.op == "not":
                return f"(NOT {sql})", "bool"
            return f"(-{_num(sql, kind)})", "num"
        if isinstance(e, q.Binary):
            return self._binary(e, scope)
        if isinstance(e, q.Like):
            sql, kind = self.expr(e.operand, scope)
            text = _text(sql, kind)
            if isinstance(e.pattern, q.Regex):
                test = f"regexp_matches({text}, {literal(e.pattern.pattern)})"
            else:
                test = f"contains({text}, {literal(e.pattern.value)})"
            # a negative test holds for a record without the field
            return (f"({text} IS NULL OR NOT {test})" if e.negated else test), "bool"
        if isinstance(e, q.In):
            sql, kind = self.expr(e.operand, scope)
            items = [self.expr(i, scope) for i in e.items]
            if not items:
                return ("TRUE" if e.negated else "FALSE"), "bool"
            if any(k == "num" for _s, k in items):
                sql = _num(sql, kind)
                values = [_num(s, k) for s, k in items]
            else:
                sql = _text(sql, kind)
                values = [_text(s, k) for s, k in items]
            if e.negated:
                return f"({sql} IS NULL OR {sql} NOT IN ({', '.join(values)}))", "bool"
            return f"({sql} IN ({', '.join(values)}))", "bool"
        if isinstance(e, q.Regex):
            raise QueryError("a /regex/ goes after like or =~", e.pos.line, e.pos.column)
        if isinstance(e, q.Duration):
            raise QueryError(f"a period ({e.text}) goes in bin()")
        raise QueryError("* goes in count(*) only")

    def _field(self, f: q.Field, scope: _Scope) -> tuple[str, str]:
        if f.name in scope.columns:
            return ident(f.name), scope.columns[f.name]
        if scope.after_stats or "@message" not in scope.columns:
            raise QueryError(
                f"no field {f.name!r} here: after stats there are only "
                + ", ".join(repr(c) for c in scope.columns),
                f.pos.line,
                f.pos.column,
            )
        message = ident("@message")
        return (
            f"CASE WHEN starts_with({message}, '{{') THEN "
            f"try(json_extract_string({message}, {literal(json_path(f.name))})) END"
        ), "any"

    def _call(self, c: q.Call, scope: _Scope) -> tuple[str, str]:
        if c.name in q.AGGREGATES:
            raise QueryError(
                f"{c.name}() is an aggregate: it belongs in stats", c.pos.line, c.pos.column
            )
        if c.name == "bin":
            period = c.args[0]
            assert isinstance(period, q.Duration)
            if "@timestamp" not in scope.columns:
                raise QueryError(
                    "bin() needs @timestamp, gone after stats", c.pos.line, c.pos.column
                )
            micros = round(period.seconds * 1_000_000)
            if micros <= 0:
                raise QueryError("bin()'s period must be positive", c.pos.line, c.pos.column)
            return f"time_bucket(INTERVAL '{micros} microseconds', {ident('@timestamp')})", "time"
        args = [self.expr(a, scope) for a in c.args]
        sql, kind = args[0]
        if c.name == "ispresent":
            return f"({sql} IS NOT NULL)", "bool"
        if c.name == "isempty":
            return f"({sql} IS NULL OR {_text(sql, kind)} = '')", "bool"
        if c.name == "isblank":
            return f"({sql} IS NULL OR trim({_text(sql, kind)}) = '')", "bool"
        if c.name == "strlen":
            return f"length({_text(sql, kind)})", "num"
        if c.name in ("tolower", "toupper", "trim"):
            fn = {"tolower": "lower", "toupper": "upper", "trim": "trim"}[c.name]
            return f"{fn}({_text(sql, kind)})", "str"
        if c.name == "concat":
            return f"concat({', '.join(_text(s, k) for s, k in args)})", "str"
        return f"{c.name}({_num(sql, kind)})", "num"  # abs, ceil, floor

    def _binary(self, b: q.Binary, scope: _Scope) -> tuple[str, str]:
        (left, lk), (right, rk) = self.expr(b.left, scope), self.expr(b.right, scope)
        if b.op in ("and", "or"):
            return f"({left} {b.op.upper()} {right})", "bool"
        if b.op in ("+", "-", "*", "/", "%"):
            return f"({_num(left, lk)} {b.op} {_num(right, rk)})", "num"
        op = "IS DISTINCT FROM" if b.op == "!=" else b.op  # != holds without the field
        if "num" in (lk, rk):
            left, right = _num(left, lk), _num(right, rk)
        elif "time" in (lk, rk) and lk != rk:
            left = left if lk == "time" else f"TRY_CAST({left} AS TIMESTAMP)"
            right = right if rk == "time" else f"TRY_CAST({right} AS TIMESTAMP)"
        elif lk != rk:
            left, right = _text(left, lk), _text(right, rk)
        return f"({left} {op} {right})", "bool"
