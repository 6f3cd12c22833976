"""An Insights query (klambda.logs.insights) as one LogsQL query for VictoriaLogs.

The second compiler beside the DuckDB one (klambda.logstore.compile), from the same parsed
query: the time range and the functions become the query's first filters, and each command
becomes pipes, in order, as Insights applies them. `filter` is LogsQL's `filter` (`=` an
exact match, `like` a regular expression, `in(...)`, numeric ranges, `*` for present), a
field that is not a discovered one is unpacked from the message when it is a JSON object
(`unpack_json ... fields (...)`), `parse` is `extract_regexp`, `stats` is `stats by (...)`
(`bin(5m)` is `_time:5m`, `pct` is `quantile`, `count_distinct` is `count_uniq`), computed
values are `math`, `len` and `format` pipes into scratch fields, `dedup` is `first 1 ...
partition by (...)`, `sort` and `limit` are the same.

What LogsQL cannot say is refused with the position, never answered differently:
`stddev()` (no such aggregate), `trim()`, comparing two fields with each other, and a
string or time compared by order (`<`, `>`). `pct()` is the engine's estimate
(VictoriaLogs' quantile picks a sample; Insights' interpolates), see docs/logs.md.

Pure: it writes the query text; klambda.logengine.client runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from klambda.logs import insights as q
from klambda.logs.insights import QueryError

DEFAULT_LIMIT = 1000

# Insights' discovered fields: their name in the engine (klambda.logengine.records), kind
BASE: dict[str, tuple[str, str]] = {
    "@timestamp": ("_time", "time"),
    "@message": ("_msg", "str"),
    "@logStream": ("@logStream", "str"),
    "@log": ("@log", "str"),
    "@requestId": ("@requestId", "str"),
    "@type": ("@type", "str"),
    "@duration": ("@duration", "num"),
    "@billedDuration": ("@billedDuration", "num"),
    "@memorySize": ("@memorySize", "num"),
    "@maxMemoryUsed": ("@maxMemoryUsed", "num"),
    "@initDuration": ("@initDuration", "num"),
}
DEFAULT_DISPLAY = ("@timestamp", "@message")
PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


@dataclass(frozen=True)
class CompiledLogsQL:
    query: str
    columns: list[str]  # the result's fields (Insights' names), in order
    engine_columns: list[str]  # their names in the engine's rows
    kinds: list[str]  # "time", "num", "str", "any" per column
    count_query: str  # records in the range and functions (Insights' recordsScanned)
    matched_query: str | None  # records left by the filters before stats (recordsMatched)


def quote(text: str) -> str:
    """A LogsQL string (a field name or a value): Go's double-quoted syntax."""
    return json.dumps(text)


def timestamp(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def unsupported(what: str, pos: q.Pos | None = None) -> QueryError:
    return QueryError(
        f"{what}: not something the cluster's log engine (LogsQL) can answer",
        pos.line if pos else None,
        pos.column if pos else None,
    )


def named_groups(pattern: str, names: Sequence[str], prefix: str) -> tuple[str, list[str]]:
    """The regex with its i-th capturing group named `<prefix><i>` (or made non-capturing
    when it gives no field): LogsQL's extract_regexp takes fields from named groups only.
    Written by hand because no library rewrites RE2 groups; it skips escapes and classes."""
    out: list[str] = []
    engine_names: list[str] = []
    i, n, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # `[]...]`: a leading ] is literal
                out.append("[]")
                i += 2
                continue
        elif c == "(":
            rest = pattern[i + 1 :]
            m = re.match(r"\?P?<([A-Za-z_][A-Za-z0-9_]*)>", rest)
            if m or not rest.startswith("?"):
                name = names[n] if n < len(names) else ""
                skip = len(m.group(0)) if m else 0
                if name:
                    engine = f"{prefix}{n}"
                    engine_names.append(engine)
                    out.append(f"(?P<{engine}>")
                else:
                    engine_names.append("")
                    out.append("(?:")
                n += 1
                i += 1 + skip
                continue
        out.append(c)
        i += 1
    return "".join(out), engine_names


@dataclass
class _Scope:
    columns: dict[str, tuple[str, str]]  # Insights name -> (engine name, kind)
    order: list[str] = field(default_factory=list)  # sort by (...) items
    display: list[str] | None = None
    after_stats: bool = False


class LogsQLCompiler:
    def __init__(self) -> None:
        self._pipes: list[str] = []
        self._scratch = 0

    def _tmp(self) -> str:
        self._scratch += 1
        return f"kl_{self._scratch}"

    def compile(
        self,
        query: q.Query,
        functions: Sequence[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> CompiledLogsQL:
        self._pipes, self._scratch = [], 0
        base = f"_time:[{timestamp(start)}, {timestamp(end)})"
        if functions:
            base += f" function:in({', '.join(quote(f) for f in functions)})"
        scope = _Scope(dict(BASE))
        matched_at: int | None = None
        filtered = False
        limited = False
        for command in query.commands:
            if isinstance(command, q.Stats) and matched_at is None:
                matched_at = len(self._pipes)
            if isinstance(command, q.Filter | q.Parse):
                filtered = True
            if isinstance(command, q.Limit):
                limited = True
            self._command(command, scope)
        display = scope.display or (
            list(scope.columns) if scope.after_stats else list(DEFAULT_DISPLAY)
        )
        for name in display:
            if name not in scope.columns:
                raise QueryError(f"no field {name!r} to show")
        order = self._order(scope)
        sort = f"sort by ({', '.join(order)})"
        # already in this order when the last pipes are the sort and limit of `limit`
        done = self._pipes[-2:-1] == [sort] and self._pipes[-1].startswith("limit ")
        tail = [sort] if order and not done else []
        if not limited:
            tail.append(f"limit {DEFAULT_LIMIT}")
        engine_columns = [scope.columns[n][0] for n in display]
        # _time too, before stats: the engine leaves out a row with no field at all
        kept = engine_columns if scope.after_stats else ["_time", *engine_columns]
        tail.append(f"fields {', '.join(quote(c) for c in dict.fromkeys(kept))}")
        text = " | ".join([base, *self._pipes, *tail])
        count_query = f"{base} | stats count() as n"
        matched_query = None
        if filtered:
            upto = matched_at if matched_at is not None else len(self._pipes)
            matched_query = " | ".join([base, *self._pipes[:upto], "stats count() as n"])
        return CompiledLogsQL(
            text,
            display,
            engine_columns,
            [scope.columns[n][1] for n in display],
            count_query,
            matched_query,
        )

    @staticmethod
    def _order(scope: _Scope) -> list[str]:
        if scope.order:
            return scope.order
        return [] if scope.after_stats else ["_time desc"]

    # -- commands -----------------------------------------------------------------------

    def _command(self, c: q.Command, scope: _Scope) -> None:
        if isinstance(c, q.Filter):
            self._pipes.append(f"filter {self.condition(c.condition, scope)}")
        elif isinstance(c, q.Fields | q.Display):
            items = (
                c.items if isinstance(c, q.Fields) else tuple(q.Named(f, f.name) for f in c.fields)
            )
            shown = []
            for item in items:
                scope.columns[item.name] = self.value(item.expr, scope)
                shown.append(item.name)
            if isinstance(c, q.Display):
                scope.display = shown
            else:
                before = scope.display or []
                scope.display = [*before, *[s for s in shown if s not in before]]
        elif isinstance(c, q.Parse):
            source, _kind = self.value(c.source, scope)
            pattern, engine = named_groups(c.pattern, c.names, self._tmp() + "_")
            self._pipes.append(f"extract_regexp {quote(pattern)} from {quote(source)}")
            for name, eng in zip(c.names, engine, strict=False):
                if name and eng:
                    scope.columns[name] = (eng, "any")
        elif isinstance(c, q.Stats):
            self._stats(c, scope)
        elif isinstance(c, q.Sort):
            keys = []
            for k in c.keys:
                eng, _kind = self.value(k.expr, scope)
                keys.append(f"{quote(eng)}{' desc' if k.descending else ''}")
            scope.order = keys
        elif isinstance(c, q.Limit):
            order = self._order(scope)
            if order:
                self._pipes.append(f"sort by ({', '.join(order)})")
            self._pipes.append(f"limit {c.count}")
        else:
            assert isinstance(c, q.Dedup)
            keys = [quote(self.value(f, scope)[0]) for f in c.fields]
            order = self._order(scope) or [keys[0]]
            self._pipes.append(f"first 1 by ({', '.join(order)}) partition by ({', '.join(keys)})")

    def _stats(self, c: q.Stats, scope: _Scope) -> None:
        names = [n.name for n in (*c.by, *c.aggregates)]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise QueryError(f"stats gives two results the name {sorted(dupes)[0]!r}: use 'as'")
        groups: list[tuple[str, str, str]] = []  # (Insights name, by item, engine name, kind)
        kinds: dict[str, str] = {}
        for g in c.by:
            if isinstance(g.expr, q.Call) and g.expr.name == "bin":
                period = g.expr.args[0]
                assert isinstance(period, q.Duration)
                if "@timestamp" not in scope.columns:
                    raise QueryError(
                        "bin() needs @timestamp, gone after stats",
                        g.expr.pos.line,
                        g.expr.pos.column,
                    )
                millis = round(period.seconds * 1000)
                if millis <= 0:
                    raise QueryError(
                        "bin()'s period must be positive", g.expr.pos.line, g.expr.pos.column
                    )
                groups.append((g.name, f"_time:{millis}ms", "_time"))
                kinds[g.name] = "time"
            else:
                eng, kind = self.value(g.expr, scope)
                groups.append((g.name, quote(eng), eng))
                kinds[g.name] = kind
        aggregates = []
        for a in c.aggregates:
            sql, kind = self._aggregate(a.expr, scope)
            aggregates.append(f"{sql} as {quote(a.name)}")
            kinds[a.name] = kind
        by = f"by ({', '.join(item for _n, item, _e in groups)}) " if groups else ""
        self._pipes.append(f"stats {by}{', '.join(aggregates)}")
        scope.columns = {name: (eng, kinds[name]) for name, _i, eng in groups}
        scope.columns.update({a.name: (a.name, kinds[a.name]) for a in c.aggregates})
        scope.order = [quote(eng) for _n, _i, eng in groups]
        scope.display = None
        scope.after_stats = True

    def _aggregate(self, e: q.Expr, scope: _Scope) -> tuple[str, str]:
        assert isinstance(e, q.Call)
        if e.name == "count":
            if not e.args or isinstance(e.args[0], q.Star):
                return "count()", "num"
            return f"count({quote(self.value(e.args[0], scope)[0])})", "num"
        if e.name == "stddev":
            raise unsupported("stddev()", e.pos)
        eng, kind = self.value(e.args[0], scope)
        if e.name == "count_distinct":
            return f"count_uniq({quote(eng)})", "num"
        if e.name in ("min", "max"):
            return f"{e.name}({quote(eng)})", "time" if kind == "time" else "num"
        if e.name == "pct":
            p = e.args[1]
            assert isinstance(p, q.Number)
            # over the records that have the field (a record without it is not a zero)
            field_ = quote(eng)
            return f"quantile({number(p.value / 100)}, {field_}) if ({field_}:*)", "num"
        return f"{e.name}({quote(eng)})", "num"  # sum, avg

    # -- values: a field of the engine's rows, computed by pipes when needed --------------

    def value(self, e: q.Expr, scope: _Scope) -> tuple[str, str]:
        """(engine field, kind) holding the expression's value, adding pipes to compute it."""
        if isinstance(e, q.Field):
            return self._field(e, scope)
        if isinstance(e, q.Call):
            return self._call(e, scope)
        if isinstance(e, q.Binary) and e.op in ("+", "-", "*", "/", "%"):
            out = self._tmp()
            self._pipes.append(
                f"math ({self._operand(e.left, scope)} {e.op} "
                f"{self._operand(e.right, scope)}) as {out}"
            )
            return out, "num"
        if isinstance(e, q.Unary) and e.op == "-":
            out = self._tmp()
            self._pipes.append(f"math (0 - {self._operand(e.operand, scope)}) as {out}")
            return out, "num"
        raise unsupported(f"the value {_describe(e)}", _pos(e))

    def _operand(self, e: q.Expr, scope: _Scope) -> str:
        """A math operand: a number, or a field copied to a plain name."""
        if isinstance(e, q.Number):
            return number(e.value)
        return self._plain(self.value(e, scope)[0])

    def _plain(self, engine: str) -> str:
        """The field under a name that math and format accept (copied when it has @ or .)."""
        if PLAIN.fullmatch(engine):
            return engine
        out = self._tmp()
        self._pipes.append(f"copy {quote(engine)} as {out}")
        return out

    def _field(self, f: q.Field, scope: _Scope) -> tuple[str, str]:
        if f.name in scope.columns:
            return scope.columns[f.name]
        if scope.after_stats:
            raise QueryError(
                f"no field {f.name!r} here: after stats there are only "
                + ", ".join(repr(c) for c in scope.columns),
                f.pos.line,
                f.pos.column,
            )
        # a key of a JSON message (`level`, `record.metrics.durationMs`)
        self._pipes.append(f"unpack_json from _msg fields ({quote(f.name)})")
        scope.columns[f.name] = (f.name, "any")
        return f.name, "any"

    def _call(self, c: q.Call, scope: _Scope) -> tuple[str, str]:
        if c.name in q.AGGREGATES:
            raise QueryError(
                f"{c.name}() is an aggregate: it belongs in stats", c.pos.line, c.pos.column
            )
        out = self._tmp()
        if c.name == "strlen":
            self._pipes.append(f"len({quote(self.value(c.args[0], scope)[0])}) as {out}")
            return out, "num"
        if c.name in ("tolower", "toupper"):
            src = self._plain(self.value(c.args[0], scope)[0])
            prefix = "lc" if c.name == "tolower" else "uc"
            self._pipes.append(f"format {quote(f'<{prefix}:{src}>')} as {out}")
            return out, "str"
        if c.name == "concat":
            parts = []
            for a in c.args:
                if isinstance(a, q.String | q.Number):
                    text = a.value if isinstance(a, q.String) else a.text
                    if "<" in text:
                        raise unsupported("'<' in concat()'s text", c.pos)
                    parts.append(text)
                else:
                    parts.append(f"<{self._plain(self.value(a, scope)[0])}>")
            self._pipes.append(f"format {quote(''.join(parts))} as {out}")
            return out, "str"
        if c.name in ("abs", "ceil", "floor"):
            self._pipes.append(f"math {c.name}({self._operand(c.args[0], scope)}) as {out}")
            return out, "num"
        raise unsupported(f"{c.name}() as a value", c.pos)

    # -- conditions: a LogsQL filter ----------------------------------------------------

    def condition(self, e: q.Expr, scope: _Scope) -> str:
        if isinstance(e, q.Binary) and e.op in ("and", "or"):
            return (
                f"({self.condition(e.left, scope)} {e.op.upper()} {self.condition(e.right, scope)})"
            )
        if isinstance(e, q.Unary) and e.op == "not":
            return f"NOT ({self.condition(e.operand, scope)})"
        if isinstance(e, q.Binary) and e.op in FLIP:
            return self._compare(e, scope)
        if isinstance(e, q.Like):
            eng = quote(self.value(e.operand, scope)[0])
            regex = (
                e.pattern.pattern if isinstance(e.pattern, q.Regex) else re.escape(e.pattern.value)
            )
            test = f"{eng}:~{quote(regex)}"
            return f"NOT {test}" if e.negated else test
        if isinstance(e, q.In):
            eng = quote(self.value(e.operand, scope)[0])
            values = []
            for item in e.items:
                if not isinstance(item, q.String | q.Number):
                    raise unsupported("in [...] with a value that is not a constant", _pos(item))
                values.append(quote(item.value if isinstance(item, q.String) else item.text))
            test = f"{eng}:in({', '.join(values)})"
            return f"NOT {test}" if e.negated else test
        if isinstance(e, q.Call) and e.name in ("ispresent", "isempty", "isblank"):
            eng = quote(self.value(e.args[0], scope)[0])
            if e.name == "ispresent":
                return f"{eng}:*"
            if e.name == "isempty":
                return f'{eng}:""'
            blank = quote(r"^\s+$")
            return f'({eng}:"" OR {eng}:~{blank})'
        raise unsupported(f"the condition {_describe(e)}", _pos(e))

    def _compare(self, b: q.Binary, scope: _Scope) -> str:
        left, right, op = b.left, b.right, b.op
        if isinstance(left, q.String | q.Number) and not isinstance(right, q.String | q.Number):
            left, right, op = right, left, FLIP[op]
        if not isinstance(right, q.String | q.Number):
            raise unsupported("comparing two fields", _pos(b.left))
        eng, kind = self.value(left, scope)
        name = quote(eng)
        if isinstance(right, q.Number):
            n = number(right.value)
            if op in ("=", "!="):
                test = f"{name}:range[{n}, {n}]"
                return test if op == "=" else f"NOT {test}"
            return f"{name}:{op}{n}"
        if kind == "time":
            raise unsupported("comparing @timestamp with a string", _pos(b.left))
        if op in ("=", "!="):
            test = f"{name}:={quote(right.value)}"
            return test if op == "=" else f"NOT {test}"
        raise unsupported(f"ordering strings ({op})", _pos(b.left))


def _pos(e: q.Expr) -> q.Pos | None:
    if isinstance(e, q.Field | q.Call | q.Regex):
        return e.pos
    if isinstance(e, q.Binary):
        return _pos(e.left)
    if isinstance(e, q.Unary):
        return _pos(e.operand)
    if isinstance(e, q.Like | q.In):
        return _pos(e.operand)
    return None


def _describe(e: q.Expr) -> str:
    return type(e).__name__.lower()
