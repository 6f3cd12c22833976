"""CloudWatch Logs Insights' query language: the grammar, and the query as data.

    fields @timestamp, @message | filter @message like /ERROR/ | stats count() by bin(5m)

A query is commands joined by `|`: `fields`, `display`, `filter`, `parse` (a glob with
`*` or a regular expression with named groups), `stats` (count, count_distinct, sum, avg,
min, max, pct, stddev, by fields and `bin()`), `sort`, `limit` and `dedup`. Expressions
have Insights' operators (`and or not`, `= != < <= > >=`, `like`, `not like`, `=~`,
`in [...]`, `+ - * / %`) and a few of its functions; `#` starts a comment.

The grammar is lark's (LALR with a contextual lexer, which tells a regular expression
`/ERROR/` from a division by where it stands); a syntax error names the line and column
and what could have come there, and so does a mistake the grammar cannot see (an unknown
function, `pct` without its percentile). `parse()` returns a `Query` of plain dataclasses;
klambda.logstore.compile turns one into SQL. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

GRAMMAR = r"""
query: command ("|" command)*

?command: fields_cmd | display_cmd | filter_cmd | stats_cmd | sort_cmd | limit_cmd
        | parse_cmd | dedup_cmd

fields_cmd: "fields"i named ("," named)*
display_cmd: "display"i field ("," field)*
filter_cmd: "filter"i expr
stats_cmd: "stats"i named ("," named)* [BY named ("," named)*]
sort_cmd: "sort"i sort_key ("," sort_key)*
sort_key: expr [ORDER]
limit_cmd: "limit"i INT
parse_cmd: "parse"i [field] (STRING | REGEX) [AS name ("," name)*]
dedup_cmd: "dedup"i field ("," field)*

named: expr [AS name]
name: NAME | QUOTED

?expr: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND not_expr)*
?not_expr: NOT not_expr -> negation
         | comparison
?comparison: sum
           | sum COMPARE sum -> compare
           | sum [NOT] LIKE (REGEX | STRING) -> like
           | sum MATCHES (REGEX | STRING) -> matches
           | sum [NOT] IN list -> member
?sum: product (ADD product)*
?product: unary (MUL unary)*
?unary: "-" unary -> minus
      | atom
?atom: NUMBER -> number
     | STRING -> string
     | DURATION -> duration
     | field
     | call
     | "(" expr ")"
call: NAME "(" [arg ("," arg)*] ")"
?arg: expr
    | "*" -> star
list: "[" [expr ("," expr)*] "]"
field: NAME | QUOTED

AS: "as"i
BY: "by"i
OR: "or"i
AND: "and"i
NOT: "not"i
IN: "in"i
LIKE: "like"i
ORDER: "asc"i | "desc"i
MATCHES.2: "=~"
COMPARE: /!=|<=|>=|=|<|>/
ADD: "+" | "-"
MUL: "*" | "/" | "%"
NAME: /@?[A-Za-z_][A-Za-z0-9_.]*/
QUOTED: /`[^`\n]+`/
DURATION.2: /[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)(?![A-Za-z0-9_])/
NUMBER: /[0-9]+(\.[0-9]+)?/
INT: /[0-9]+/
STRING: /"(\\.|[^"\\\n])*"/ | /'(\\.|[^'\\\n])*'/
REGEX: /\/(\\.|[^\/\\\n])+\//

%ignore /[ \t\r\n]+/
%ignore /#[^\n]*/
"""

# what a query may ask for, and how many arguments each takes
AGGREGATES = {
    "count": (0, 1),
    "count_distinct": (1, 1),
    "sum": (1, 1),
    "avg": (1, 1),
    "min": (1, 1),
    "max": (1, 1),
    "pct": (2, 2),
    "stddev": (1, 1),
}
FUNCTIONS = {
    "bin": (1, 1),
    "ispresent": (1, 1),
    "isempty": (1, 1),
    "isblank": (1, 1),
    "strlen": (1, 1),
    "tolower": (1, 1),
    "toupper": (1, 1),
    "trim": (1, 1),
    "concat": (1, 99),
    "abs": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
}
LIMIT_MAX = 10_000

# readable names of the grammar's terminals, for "expected ..." in errors
READABLE = {
    "NAME": "a field",
    "QUOTED": "a `quoted field`",
    "STRING": "a string",
    "REGEX": "a /regex/",
    "NUMBER": "a number",
    "INT": "a number",
    "DURATION": "a duration like 5m",
    "PIPE": "'|'",
    "VBAR": "'|'",
    "COMMA": "','",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "STAR": "'*'",
    "MINUS": "'-'",
    "COMPARE": "a comparison",
    "MATCHES": "'=~'",
    "ADD": "'+' or '-'",
    "MUL": "'*', '/' or '%'",
    "ORDER": "asc or desc",
    "$END": "the end of the query",
}


class QueryError(ValueError):
    """A query that cannot run; the message names the line and column."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


# -- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    text: str


@dataclass(frozen=True, slots=True)
class String:
    value: str


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str  # RE2 syntax, named groups as (?P<name>...)
    pos: Pos


@dataclass(frozen=True, slots=True)
class Duration:
    seconds: float
    text: str


@dataclass(frozen=True, slots=True)
class Star:
    pass


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not", "-"
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # and or = != < <= > >= + - * / %
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Like:
    operand: Expr
    pattern: Regex | String
    negated: bool = False


@dataclass(frozen=True, slots=True)
class In:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False


Expr = Field | Number | String | Regex | Duration | Star | Call | Unary | Binary | Like | In


@dataclass(frozen=True, slots=True)
class Named:
    expr: Expr
    name: str  # the alias, or the expression's text as written


# -- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fields:
    items: tuple[Named, ...]


@dataclass(frozen=True, slots=True)
class Display:
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Filter:
    condition: Expr


@dataclass(frozen=True, slots=True)
class Stats:
    aggregates: tuple[Named, ...]
    by: tuple[Named, ...]


@dataclass(frozen=True, slots=True)
class SortKey:
    expr: Expr
    descending: bool


@dataclass(frozen=True, slots=True)
class Sort:
    keys: tuple[SortKey, ...]


@dataclass(frozen=True, slots=True)
class Limit:
    count: int


@dataclass(frozen=True, slots=True)
class Parse:
    source: Field
    pattern: str  # RE2, one capturing group per field (a glob is converted)
    names: tuple[str, ...]  # the field of each capturing group, in order ("" for none)


@dataclass(frozen=True, slots=True)
class Dedup:
    fields: tuple[Field, ...]


Command = Fields | Display | Filter | Stats | Sort | Limit | Parse | Dedup


@dataclass(frozen=True, slots=True)
class Query:
    commands: tuple[Command, ...] = field(default_factory=tuple)
    text: str = ""


# -- parsing -------------------------------------------------------------------------------


@cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR,
        start="query",
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def parse(text: str) -> Query:
    """The query, or QueryError naming the line and column of the first mistake."""
    if not text.strip():
        raise QueryError("the query is empty")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text) from None
    try:
        commands = _Build(text).transform(tree)
    except VisitError as err:  # a check of _Build's, raised from inside lark
        if isinstance(err.orig_exc, QueryError):
            raise err.orig_exc from None
        raise
    return Query(tuple(commands), text)


def _end_of(text: str) -> tuple[int, int]:
    """The line and column just after the query's last character."""
    body = text.rstrip()
    return body.count("\n") + 1, len(body) - body.rfind("\n")


def _syntax_error(err: UnexpectedInput, text: str) -> QueryError:
    line, column = err.line, err.column
    if isinstance(err, UnexpectedCharacters):
        return QueryError(f"unexpected character {err.char!r}", line, column)
    terminals = getattr(err, "accepts", None) or getattr(err, "expected", None) or ()
    expected = sorted({READABLE.get(t, _keyword(t)) for t in terminals})
    if isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    ):
        return QueryError(
            "the query ends too soon" + (f"; expected {_one_of(expected)}" if expected else ""),
            *_end_of(text),
        )
    assert isinstance(err, UnexpectedToken)
    token = err.token
    return QueryError(
        f"unexpected {str(token)!r}" + (f"; expected {_one_of(expected)}" if expected else ""),
        line,
        column,
    )


def _keyword(terminal: str) -> str:
    return terminal.lower().removeprefix("__anon_").replace("_", " ")


def _one_of(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "one of " + ", ".join(items)


def _pos(meta: Any) -> Pos:
    return Pos(getattr(meta, "line", 1), getattr(meta, "column", 1))


def _unquote(token: str) -> str:
    """A string literal's value: quotes removed, backslash escapes applied."""
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def regex_pattern(literal: str, pos: Pos) -> Regex:
    """`/.../` as an RE2 pattern: `\\/` is a slash, `(?<name>` is `(?P<name>`."""
    body = literal[1:-1].replace("\\/", "/")
    body = re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", body)
    try:
        re.compile(body)
    except re.error as err:
        raise QueryError(f"bad regular expression /{body}/: {err}", pos.line, pos.column) from None
    return Regex(body, pos)


def glob_pattern(glob: str) -> tuple[str, int]:
    """Insights' `parse` glob as a regex: literal text, each `*` the shortest text up to
    the literal after it, a `*` that ends the pattern the rest of the line."""
    parts = glob.split("*")
    out = []
    for i, part in enumerate(parts):
        out.append(re.escape(part))
        if i < len(parts) - 1:
            out.append("(.*)" if i == len(parts) - 2 and not parts[-1] else "(.*?)")
    return "".join(out), len(parts) - 1


@v_args(meta=True)
class _Build(Transformer[Token, Any]):
    """The parse tree as the dataclasses above, with the checks the grammar cannot make."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _source(self, meta: Any) -> str:
        return " ".join(self.text[meta.start_pos : meta.end_pos].split())

    # commands
    def query(self, meta: Any, commands: list[Command]) -> list[Command]:
        return commands

    def fields_cmd(self, meta: Any, items: list[Named]) -> Fields:
        return Fields(tuple(items))

    def display_cmd(self, meta: Any, items: list[Field]) -> Display:
        return Display(tuple(items))

    def filter_cmd(self, meta: Any, items: list[Expr]) -> Filter:
        return Filter(items[0])

    def stats_cmd(self, meta: Any, items: list[Any]) -> Stats:
        aggregates: list[Named] = []
        by: list[Named] = []
        target = aggregates
        for item in items:
            if isinstance(item, Token) and item.type == "BY":
                target = by
            elif item is not None:
                target.append(item)
        for agg in aggregates:
            if not (isinstance(agg.expr, Call) and agg.expr.name in AGGREGATES):
                pos = _expr_pos(agg.expr)
                raise QueryError(
                    f"stats takes aggregate functions ({', '.join(AGGREGATES)}), not {agg.name!r}",
                    pos.line if pos else None,
                    pos.column if pos else None,
                )
        return Stats(tuple(aggregates), tuple(by))

    def sort_cmd(self, meta: Any, keys: list[SortKey]) -> Sort:
        return Sort(tuple(keys))

    def sort_key(self, meta: Any, items: list[Any]) -> SortKey:
        expr, order = items
        return SortKey(expr, order is not None and str(order).lower() == "desc")

    def limit_cmd(self, meta: Any, items: list[Token]) -> Limit:
        n = int(items[0])
        if not 1 <= n <= LIMIT_MAX:
            raise QueryError(
                f"limit must be from 1 to {LIMIT_MAX}, not {n}", items[0].line, items[0].column
            )
        return Limit(n)

    def parse_cmd(self, meta: Any, items: list[Any]) -> Parse:
        source, pattern_token, _as, *rest = items
        names = tuple(n for n in rest if n is not None)
        source = source or Field("@message", _pos(meta))
        pos = Pos(pattern_token.line, pattern_token.column)
        if pattern_token.type == "REGEX":
            regex = regex_pattern(str(pattern_token), pos)
            compiled = re.compile(regex.pattern)
            if names:
                raise QueryError(
                    "parse with a regular expression names its fields with (?<name>...), "
                    "not with 'as'",
                    pos.line,
                    pos.column,
                )
            if not compiled.groupindex:
                raise QueryError(
                    "parse's regular expression has no named group (?<name>...)",
                    pos.line,
                    pos.column,
                )
            by_index = {i: n for n, i in compiled.groupindex.items()}
            groups = tuple(by_index.get(i, "") for i in range(1, compiled.groups + 1))
            return Parse(source, regex.pattern, groups)
        pattern, stars = glob_pattern(_unquote(str(pattern_token)))
        if stars == 0:
            raise QueryError("parse's pattern has no '*' to extract", pos.line, pos.column)
        if len(names) != stars:
            raise QueryError(
                f"parse's pattern has {stars} '*' but {len(names)} field name(s) after 'as'",
                pos.line,
                pos.column,
            )
        return Parse(source, pattern, names)

    def dedup_cmd(self, meta: Any, items: list[Field]) -> Dedup:
        return Dedup(tuple(items))

    def named(self, meta: Any, items: list[Any]) -> Named:
        expr, _as, alias = items
        return Named(expr, alias if alias is not None else self._source(meta))

    def name(self, meta: Any, items: list[Token]) -> str:
        return _field_name(str(items[0]))

    # expressions
    def field(self, meta: Any, items: list[Token]) -> Field:
        return Field(_field_name(str(items[0])), _pos(meta))

    def number(self, meta: Any, items: list[Token]) -> Number:
        return Number(float(items[0]), str(items[0]))

    def string(self, meta: Any, items: list[Token]) -> String:
        return String(_unquote(str(items[0])))

    def duration(self, meta: Any, items: list[Token]) -> Duration:
        text = str(items[0])
        m = re.fullmatch(r"([0-9.]+)(ms|s|m|h|d|w)", text)
        assert m is not None
        unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m[2]]
        return Duration(float(m[1]) * unit, text)

    def star(self, meta: Any, items: list[Any]) -> Star:
        return Star()

    def call(self, meta: Any, items: list[Any]) -> Call:
        name_token, *args = items
        name = str(name_token).lower()
        args = [a for a in args if a is not None]
        pos = Pos(name_token.line, name_token.column)
        arity = AGGREGATES.get(name) or FUNCTIONS.get(name)
        if arity is None:
            known = ", ".join(sorted({*AGGREGATES, *FUNCTIONS}))
            raise QueryError(f"unknown function {name}(); known: {known}", pos.line, pos.column)
        if name == "count" and len(args) == 1 and isinstance(args[0], Star):
            args = []
        if any(isinstance(a, Star) for a in args):
            raise QueryError(f"{name}() does not take *", pos.line, pos.column)
        lo, hi = arity
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise QueryError(
                f"{name}() takes {want} argument(s), not {len(args)}", pos.line, pos.column
            )
        if name == "pct" and not isinstance(args[1], Number):
            raise QueryError("pct()'s second argument is a percentile, 0 to 100", *pos_of(pos))
        if name == "pct" and isinstance(args[1], Number) and not 0 <= args[1].value <= 100:
            raise QueryError("pct()'s percentile must be from 0 to 100", *pos_of(pos))
        if name == "bin" and not isinstance(args[0], Duration):
            raise QueryError("bin() takes a period like 5m, 1h or 1d", *pos_of(pos))
        return Call(name, tuple(args), pos)

    def negation(self, meta: Any, items: list[Any]) -> Unary:
        return Unary("not", items[1])

    def minus(self, meta: Any, items: list[Any]) -> Expr:
        operand = items[0]
        if isinstance(operand, Number):
            return Number(-operand.value, "-" + operand.text)
        return Unary("-", operand)

    def or_expr(self, meta: Any, items: list[Any]) -> Expr:
        return self._chain(items)

    def and_expr(self, meta: Any, items: list[Any]) -> Expr:
        return self._chain(items)

    def sum(self, meta: Any, items: list[Any]) -> Expr:
        return self._chain(items)

    def product(self, meta: Any, items: list[Any]) -> Expr:
        return self._chain(items)

    @staticmethod
    def _chain(items: list[Any]) -> Expr:
        """a OP b OP c, left to right."""
        expr = items[0]
        for op, right in zip(items[1::2], items[2::2], strict=True):
            expr = Binary(str(op).lower(), expr, right)
        return expr  # type: ignore[no-any-return]

    def compare(self, meta: Any, items: list[Any]) -> Binary:
        left, op, right = items
        return Binary(str(op), left, right)

    def like(self, meta: Any, items: list[Any]) -> Like:
        operand, negated, _like, pattern = items
        return Like(operand, self._pattern(pattern), negated is not None)

    def matches(self, meta: Any, items: list[Any]) -> Like:
        operand, _op, pattern = items
        p = self._pattern(pattern)
        return Like(operand, p if isinstance(p, Regex) else Regex(re.escape(p.value), _pos(meta)))

    def member(self, meta: Any, items: list[Any]) -> In:
        operand, negated, _in, values = items
        return In(operand, tuple(values), negated is not None)

    def list(self, meta: Any, items: list[Any]) -> list[Expr]:
        return [i for i in items if i is not None]

    @staticmethod
    def _pattern(token: Token) -> Regex | String:
        if token.type == "REGEX":
            return regex_pattern(str(token), Pos(token.line or 1, token.column or 1))
        return String(_unquote(str(token)))


def pos_of(pos: Pos) -> tuple[int, int]:
    return pos.line, pos.column


def _field_name(token: str) -> str:
    return token[1:-1] if token.startswith("`") else token


def _expr_pos(expr: Expr) -> Pos | None:
    if isinstance(expr, Field | Call | Regex):
        return expr.pos
    if isinstance(expr, Binary):
        return _expr_pos(expr.left)
    if isinstance(expr, Unary | Like | In):
        return _expr_pos(expr.operand)
    return None


def walk(expr: Expr) -> list[Expr]:
    """The expression and every expression inside it."""
    out: list[Expr] = [expr]
    if isinstance(expr, Call):
        for a in expr.args:
            out += walk(a)
    elif isinstance(expr, Unary):
        out += walk(expr.operand)
    elif isinstance(expr, Binary):
        out += walk(expr.left) + walk(expr.right)
    elif isinstance(expr, Like):
        out += walk(expr.operand)
    elif isinstance(expr, In):
        out += walk(expr.operand)
        for item in expr.items:
            out += walk(item)
    return out


__all__ = [
    "AGGREGATES",
    "FUNCTIONS",
    "Binary",
    "Call",
    "Command",
    "Dedup",
    "Display",
    "Duration",
    "Expr",
    "Field",
    "Fields",
    "Filter",
    "In",
    "Like",
    "Limit",
    "Named",
    "Number",
    "Parse",
    "Query",
    "QueryError",
    "Regex",
    "Sort",
    "SortKey",
    "Star",
    "Stats",
    "String",
    "Tree",
    "Unary",
    "parse",
    "walk",
]
