"""CloudWatch Logs' filter patterns, for metric filters and `klambda logs --filter-pattern`.

Four forms, told apart by how the pattern starts:

- terms: `ERROR`, `ERROR Exception` (both), `"Failed to process"` (a phrase),
  `?ERROR ?WARN` (either), `ERROR -Retrying` (ERROR and not Retrying); case-sensitive,
  matched anywhere in the message. An empty pattern matches every record.
- a regular expression between percent signs: `%timed? ?out%`.
- JSON: `{ $.level = "ERROR" && $.latency > 500 }`, with `||`, parentheses, `!=`, `<`,
  `<=`, `>`, `>=`, `*` wildcards in strings (`"Update*"`), `%regex%` values, `IS NULL`,
  `NOT EXISTS`, `IS TRUE`, `IS FALSE`, and selectors like `$.user.id` or `$.items[0].sku`.
  A record that is not a JSON object does not match.
- space-delimited: `[ip, user, ..., status = 5*, bytes > 1000]`: the message is split at
  spaces (text in double quotes or square brackets is one field), `...` stands for any
  number of fields, and each named field may carry conditions joined by `&&` or `||`.

`compile_pattern()` parses with a lark grammar (an error names the column) and returns a
`FilterPattern` whose `match(message)` gives the named fields of a match (for a metric's
`$name` or `$.path` value) or None. Pure.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

GRAMMAR = r"""
start: json_pattern | delimited | REGEX -> regex_only | terms

json_pattern: "{" jexpr "}"
?jexpr: jor
?jor: jand (OR jand)*
?jand: jatom (AND jatom)*
?jatom: "(" jexpr ")"
      | SELECTOR OP value -> jcompare
      | SELECTOR IS NULL -> jnull
      | SELECTOR NOT EXISTS -> jmissing
      | SELECTOR IS BOOL -> jbool

delimited: "[" [dfield ("," dfield)*] "]"
?dfield: ELLIPSIS -> ellipsis
       | NAME -> dname
       | NAME OP value ((AND | OR) NAME OP value)* -> dcond

terms: term*
term: [PREFIX] (WORD | STRING)

?value: STRING -> string
      | NUMBER -> number
      | REGEX -> regex
      | BARE -> bare

IS: "IS"i
NOT: "NOT"i
NULL: "NULL"i
EXISTS: "EXISTS"i
BOOL: "TRUE"i | "FALSE"i
AND: "&&"
OR: "||"
OP: /!=|<=|>=|=|<|>/
ELLIPSIS: "..."
SELECTOR: /\$(\.[A-Za-z0-9_@-]+|\[[0-9]+\])+/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER.2: /-?[0-9]+(\.[0-9]+)?(?![A-Za-z0-9_.*:\/-])/
BARE: /[A-Za-z0-9_.*:\/@-]+/
STRING: /"(\\.|[^"\\])*"/
REGEX: /%[^%]+%/
PREFIX: "?" | "-"
WORD: /[^\s"?\-\[{%][^\s"]*/

%ignore /[ \t\r\n]+/
"""


class PatternError(ValueError):
    """A filter pattern that cannot be read; the message names the column."""


@dataclass(frozen=True)
class Match:
    """What a matching record offers a metric's value: the space-delimited fields by name,
    and the JSON object for `$.path` values."""

    fields: dict[str, str]
    document: Any = None

    def value(self, selector: str) -> float | None:
        """A metric value: `$name` (space-delimited) or `$.path` (JSON); None when it is
        missing or not a number."""
        if selector.startswith("$."):
            found, value = _select(self.document, selector)
        else:
            found, value = selector[1:] in self.fields, self.fields.get(selector[1:])
        if not found or isinstance(value, bool):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None


class FilterPattern:
    def __init__(self, text: str, test: Any, kind: str, required: tuple[str, ...] = ()) -> None:
        self.text = text
        self._test = test
        self.kind = kind  # "terms", "regex", "json", "delimited"
        # text every matching message contains (a store may select on it first)
        self.required = required

    def match(self, message: str) -> Match | None:
        result: Match | None = self._test(message)
        return result

    def __repr__(self) -> str:
        return f"FilterPattern({self.text!r})"


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=True)


@cache
def compile_pattern(text: str) -> FilterPattern:
    if not text.strip():
        return FilterPattern(text, lambda _m: Match({}), "terms")
    try:
        tree = _parser().parse(text)
        kind, test, required = _Build().transform(tree)
    except UnexpectedInput as err:
        where = f"column {err.column}: " if err.column and err.column > 0 else ""
        got = getattr(err, "token", None) or getattr(err, "char", None)
        what = f"unexpected {str(got)!r}" if got is not None and str(got) else "it ends too soon"
        raise PatternError(f"filter pattern {text!r}: {where}{what}") from None
    except VisitError as err:
        if isinstance(err.orig_exc, PatternError):
            raise PatternError(f"filter pattern {text!r}: {err.orig_exc}") from None
        raise
    return FilterPattern(text, test, kind, required)


# -- values --------------------------------------------------------------------------------


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _regex(token: str) -> re.Pattern[str]:
    body = token[1:-1]
    try:
        return re.compile(body)
    except re.error as err:
        raise PatternError(f"bad regular expression %{body}%: {err}") from None


@dataclass(frozen=True)
class _Value:
    kind: str  # "string" (with * wildcards), "number", "regex"
    text: str
    number: float | None = None
    regex: re.Pattern[str] | None = None

    def equals(self, actual: Any) -> bool:
        if self.kind == "number":
            return _as_number(actual) == self.number
        if actual is None or isinstance(actual, dict | list):
            return False
        s = _as_text(actual)
        if self.kind == "regex":
            assert self.regex is not None
            return self.regex.search(s) is not None
        if "*" in self.text:
            return fnmatch.fnmatchcase(s, self.text.replace("[", "[[]"))
        return s == self.text


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _compare(op: str, value: _Value, actual: Any) -> bool:
    if op == "=":
        return value.equals(actual)
    if op == "!=":
        return not value.equals(actual)
    left, right = _as_number(actual), value.number
    if left is None or right is None:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _select(document: Any, selector: str) -> tuple[bool, Any]:
    """(found, value) of `$.a.b[0]` in a JSON document."""
    node = document
    for name, index in re.findall(r"\.([A-Za-z0-9_@-]+)|\[([0-9]+)\]", selector[1:]):
        if name:
            if not isinstance(node, dict) or name not in node:
                return False, None
            node = node[name]
        else:
            i = int(index)
            if not isinstance(node, list) or i >= len(node):
                return False, None
            node = node[i]
    return True, node


def split_fields(message: str) -> list[str]:
    """The message's space-delimited fields: "quoted" and [bracketed] text is one field."""
    return [a or b or c for a, b, c in re.findall(r'"([^"]*)"|\[([^\]]*)\]|(\S+)', message)]


# -- the pattern as a test -----------------------------------------------------------------


# (kind, the test, text every match contains)
Built = tuple[str, Any, tuple[str, ...]]


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    def start(self, built: Any) -> Any:
        return built

    # terms
    def term(self, prefix: Token | None, word: Token) -> tuple[str, str]:
        text = _unquote(str(word)) if word.type == "STRING" else str(word)
        return (str(prefix) if prefix else "", text)

    def terms(self, *terms: tuple[str, str]) -> Built:
        required = [t for p, t in terms if p == ""]
        either = [t for p, t in terms if p == "?"]
        excluded = [t for p, t in terms if p == "-"]

        def test(message: str) -> Match | None:
            if any(t not in message for t in required):
                return None
            if either and not any(t in message for t in either):
                return None
            if any(t in message for t in excluded):
                return None
            return Match({})

        return "terms", test, tuple(required)

    def regex_only(self, token: Token) -> Built:
        pattern = _regex(str(token))
        return "regex", (lambda m: Match({}) if pattern.search(m) else None), ()

    # values
    def string(self, token: Token) -> _Value:
        return _Value("string", _unquote(str(token)))

    def number(self, token: Token) -> _Value:
        return _Value("number", str(token), float(token))

    def bare(self, token: Token) -> _Value:
        return _Value("string", str(token))

    def regex(self, token: Token) -> _Value:
        return _Value("regex", str(token), regex=_regex(str(token)))

    # JSON
    def json_pattern(self, test: Any) -> Built:
        def match(message: str) -> Match | None:
            if not message.startswith("{"):
                return None
            try:
                doc = json.loads(message)
            except ValueError:
                return None
            if not isinstance(doc, dict) or not test(doc):
                return None
            return Match({}, doc)

        return "json", match, ("{",)

    def jcompare(self, selector: Token, op: Token, value: _Value) -> Any:
        def test(doc: Any) -> bool:
            found, actual = _select(doc, str(selector))
            return found and _compare(str(op), value, actual)

        return test

    def jnull(self, selector: Token, _is: Token, _null: Token) -> Any:
        return lambda doc: _select(doc, str(selector)) == (True, None)

    def jmissing(self, selector: Token, _not: Token, _exists: Token) -> Any:
        return lambda doc: not _select(doc, str(selector))[0]

    def jbool(self, selector: Token, _is: Token, flag: Token) -> Any:
        want = str(flag).upper() == "TRUE"
        return lambda doc: _select(doc, str(selector)) == (True, want)

    def jor(self, *items: Any) -> Any:
        tests = [t for t in items if not isinstance(t, Token)]
        return lambda doc: any(t(doc) for t in tests)

    def jand(self, *items: Any) -> Any:
        tests = [t for t in items if not isinstance(t, Token)]
        return lambda doc: all(t(doc) for t in tests)

    # space-delimited
    def ellipsis(self, _token: Token) -> tuple[str, Any]:
        return ("...", None)

    def dname(self, name: Token) -> tuple[str, Any]:
        return (str(name), None)

    def dcond(self, name: Token, *rest: Any) -> tuple[str, Any]:
        field = str(name)
        conditions: list[tuple[str, _Value]] = [(str(rest[0]), rest[1])]
        logic: list[str] = []
        for i in range(2, len(rest), 4):
            joiner, other, op, value = rest[i : i + 4]
            if str(other) != field:
                raise PatternError(
                    f"column {other.column}: a condition in field {field!r} is about "
                    f"{str(other)!r}: each field's conditions name that field"
                )
            logic.append(str(joiner))
            conditions.append((str(op), value))

        def test(actual: str) -> bool:
            result = _compare(conditions[0][0], conditions[0][1], actual)
            for joiner, (op, value) in zip(logic, conditions[1:], strict=True):
                ok = _compare(op, value, actual)
                result = (result and ok) if joiner == "&&" else (result or ok)
            return result

        return (field, test)

    def delimited(self, *fields: tuple[str, Any] | None) -> Built:
        slots = [f for f in fields if f is not None]

        def match(message: str) -> Match | None:
            got = _fit(slots, split_fields(message), {})
            return Match(got) if got is not None else None

        return "delimited", match, ()


def _fit(
    slots: list[tuple[str, Any]], values: list[str], named: dict[str, str]
) -> dict[str, str] | None:
    """Match fields to slots left to right; `...` takes any number of fields."""
    if not slots:
        return named if not values else None
    (name, test), rest = slots[0], slots[1:]
    if name == "...":
        for skip in range(len(values) + 1):
            found = _fit(rest, values[skip:], named)
            if found is not None:
                return found
        return None
    if not values or (test is not None and not test(values[0])):
        return None
    return _fit(rest, values[1:], {**named, name: values[0]})


def metric_value(spec: str) -> str:
    """Check a metric filter's value: a number, `$name` or `$.path`."""
    text = spec.strip()
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
        return text
    if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", text) or re.fullmatch(
        r"\$(\.[A-Za-z0-9_@-]+|\[[0-9]+\])+", text
    ):
        return text
    raise ValueError(
        f"{spec!r} is not a metric value: a number, $field (space-delimited) or $.path (JSON)"
    )
