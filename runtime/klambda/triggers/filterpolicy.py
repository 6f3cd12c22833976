"""SNS subscription filter policies: checked when a subscription is declared, matched when a
message is published.

A policy is a JSON object. With the `MessageAttributes` scope (SNS's default) its keys are
message attribute names; with `MessageBody` they are keys of the (JSON) message, nested
as deep as the message. Each leaf is a list of conditions, any of which may match (OR);
every key must match (AND); `$or` takes a list of policies, any of which may match.

Conditions, as SNS has them: a string or number (exact), `null` (body scope),
`{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`,
`{"numeric": ["=", 5]}` / `[">", 0, "<=", 150]`, `{"exists": true|false}`,
`{"anything-but": value | [values] | {"prefix": s} | {"suffix": s}}`, `{"cidr": "10.0.0.0/24"}`.
An attribute that is absent matches only `{"exists": false}`. `String.Array` attributes
match when any element does; `Binary` attributes are never matched, as in SNS.

Written here because no maintained Python library implements SNS's filter grammar (the
event-ruler engine is Java); the limits are SNS's: 5 keys, 150 combinations, 256 KB.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_BYTES = 256 * 1024
NUMERIC_LIMIT = 1_000_000_000  # SNS: numbers from -1e9 to 1e9
_OPERATORS = ("=", "<", "<=", ">", ">=")
SCOPES = ("MessageAttributes", "MessageBody")
_MISSING = object()


@dataclass(frozen=True)
class Attribute:
    """One SNS message attribute: `Type` String, String.Array, Number or Binary."""

    type: str
    value: str


# -- checking a policy -----------------------------------------------------------------


def check(policy: Mapping[str, Any], scope: str = "MessageAttributes") -> None:
    """ValueError naming the key and the rule unless `policy` is a valid filter policy."""
    if scope not in SCOPES:
        raise ValueError(f"filterPolicyScope must be one of {', '.join(SCOPES)}")
    if not isinstance(policy, Mapping) or not policy:
        raise ValueError("a filter policy is a non-empty JSON object")
    size = len(json.dumps(policy, separators=(",", ":")).encode())
    if size > MAX_BYTES:
        raise ValueError(f"a filter policy takes at most {MAX_BYTES} bytes, this one {size}")
    for branch in _branches(policy):
        leaves = list(_leaves(branch, scope, ""))
        if len(leaves) > MAX_KEYS:
            raise ValueError(
                f"a filter policy has at most {MAX_KEYS} keys, this one "
                f"{len(leaves)} ({', '.join(k for k, _ in leaves)})"
            )
        combinations = math.prod(len(conds) for _, conds in leaves)
        if combinations > MAX_COMBINATIONS:
            raise ValueError(
                f"a filter policy allows at most {MAX_COMBINATIONS} combinations of values, "
                f"this one {combinations}"
            )
        for key, conds in leaves:
            for cond in conds:
                try:
                    _check_condition(cond, scope)
                except ValueError as err:
                    raise ValueError(f"{key}: {err}") from None


def _branches(policy: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The policy as a list of policies without `$or` (each one way to match)."""
    alternatives = policy.get("$or")
    rest = {k: v for k, v in policy.items() if k != "$or"}
    if alternatives is None:
        yield rest
        return
    if not isinstance(alternatives, list) or len(alternatives) < 2:
        raise ValueError("$or: a list of at least two policies")
    for alt in alternatives:
        if not isinstance(alt, Mapping) or not alt:
            raise ValueError("$or: every alternative is a non-empty object")
        for branch in _branches(alt):
            yield {**rest, **branch}


def _leaves(node: Mapping[str, Any], scope: str, prefix: str) -> Iterator[tuple[str, list[Any]]]:
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, list):
            if not value:
                raise ValueError(f"{path}: an empty list of conditions matches nothing")
            yield path, value
        elif isinstance(value, Mapping) and scope == "MessageBody":
            if not value:
                raise ValueError(f"{path}: an empty object")
            yield from _leaves(value, scope, path)
        else:
            raise ValueError(
                f'{path}: conditions are written as a list, e.g. ["paid"] or '
                '[{"prefix": "pa"}]'
                + (
                    ""
                    if scope == "MessageBody"
                    else " (nesting needs filterPolicyScope: MessageBody)"
                )
            )


def _check_condition(cond: Any, scope: str) -> None:
    if isinstance(cond, bool):
        raise ValueError('true/false are not conditions; use {"exists": ...} or a string')
    if cond is None:
        if scope != "MessageBody":
            raise ValueError("null matches only with filterPolicyScope: MessageBody")
        return
    if isinstance(cond, str):
        return
    if isinstance(cond, int | float):
        _number(cond)
        return
    if not isinstance(cond, Mapping) or len(cond) != 1:
        raise ValueError(f"{json.dumps(cond)} is not a condition")
    ((op, arg),) = cond.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str) or not arg:
            raise ValueError(f"{op}: a non-empty string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise ValueError("exists: true or false")
    elif op == "numeric":
        _numeric(arg)
    elif op == "anything-but":
        _anything_but(arg)
    elif op == "cidr":
        try:
            ipaddress.ip_network(arg, strict=False)
        except (TypeError, ValueError):
            raise ValueError(f"cidr: {arg!r} is not an IP prefix like 10.0.0.0/24") from None
    else:
        raise ValueError(
            f"{op!r} is not an operator (prefix, suffix, equals-ignore-case, numeric, exists, "
            "anything-but, cidr)"
        )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
        raise ValueError(f"{value} is outside -{NUMERIC_LIMIT:.0e}..{NUMERIC_LIMIT:.0e}")
    return float(value)


def _numeric(arg: Any) -> None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise ValueError('numeric: ["=", 5], [">", 0] or [">", 0, "<=", 150]')
    ops = arg[0::2]
    for op, value in zip(ops, arg[1::2], strict=True):
        if op not in _OPERATORS:
            raise ValueError(f"numeric: {op!r} is not one of {', '.join(_OPERATORS)}")
        _number(value)
    if len(arg) == 4:
        lower, upper = ops
        if lower not in (">", ">=") or upper not in ("<", "<="):
            raise ValueError("numeric: a range is a lower bound (> or >=) then an upper (< or <=)")
        if arg[1] >= arg[3]:
            raise ValueError(f"numeric: the range {arg[1]}..{arg[3]} is empty")


def _anything_but(arg: Any) -> None:
    if isinstance(arg, Mapping):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix"):
            raise ValueError('anything-but: a value, a list, {"prefix": s} or {"suffix": s}')
        ((_op, s),) = arg.items()
        if not isinstance(s, str) or not s:
            raise ValueError("anything-but: the prefix or suffix is a non-empty string")
        return
    for v in arg if isinstance(arg, list) else [arg]:
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ValueError(f"anything-but: {v!r} is not a string or a number")


# -- matching --------------------------------------------------------------------------


def matches(
    policy: Mapping[str, Any],
    scope: str,
    attributes: Mapping[str, Attribute],
    message: str,
) -> bool:
    """Whether a message (its attributes and body) passes a checked policy."""
    if scope == "MessageBody":
        try:
            body = json.loads(message)
        except ValueError:
            return False  # SNS: a body that is not JSON matches no body-scoped policy
        if not isinstance(body, dict):
            return False
        return any(_body_matches(branch, body) for branch in _branches(policy))
    return any(_attributes_match(branch, attributes) for branch in _branches(policy))


def _attributes_match(policy: Mapping[str, Any], attributes: Mapping[str, Attribute]) -> bool:
    for key, conds in policy.items():
        attr = attributes.get(key)
        values: list[Any]
        if attr is None or attr.type == "Binary":
            values = []
        elif attr.type == "Number":
            values = [_as_number(attr.value)]
        elif attr.type == "String.Array":
            try:
                parsed = json.loads(attr.value)
            except ValueError:
                parsed = None
            values = parsed if isinstance(parsed, list) else [attr.value]
        else:
            values = [attr.value]
        if not _leaf_matches(conds, values, attr is not None and attr.type != "Binary"):
            return False
    return True


def _body_matches(policy: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    for key, cond in policy.items():
        value = body.get(key, _MISSING) if isinstance(body, Mapping) else _MISSING
        if isinstance(cond, Mapping):
            if value is _MISSING or not isinstance(value, Mapping):
                return False
            if not _body_matches(cond, value):
                return False
            continue
        present = value is not _MISSING
        values = (value if isinstance(value, list) else [value]) if present else []
        if not _leaf_matches(cond, values, present):
            return False
    return True


def _as_number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _leaf_matches(conds: list[Any], values: list[Any], present: bool) -> bool:
    return any(_condition_matches(c, values, present) for c in conds)


def _condition_matches(cond: Any, values: list[Any], present: bool) -> bool:
    if isinstance(cond, Mapping):
        ((op, arg),) = cond.items()
        if op == "exists":
            return present is arg
        if not present:
            return False
        if op == "anything-but":
            return all(not _excluded(arg, v) for v in values) and bool(values)
        return any(_operator(op, arg, v) for v in values)
    if not present:
        return False
    return any(_equal(cond, v) for v in values)


def _equal(cond: Any, value: Any) -> bool:
    if cond is None:
        return value is None
    if isinstance(cond, str):
        return isinstance(value, str) and value == cond
    num = _numeric_value(value)
    return num is not None and num == float(cond)


def _numeric_value(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _operator(op: str, arg: Any, value: Any) -> bool:
    if op == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == arg.casefold()
    if op == "numeric":
        num = _numeric_value(value)
        if num is None:
            return False
        return all(_compare(o, num, float(b)) for o, b in zip(arg[0::2], arg[1::2], strict=True))
    if op == "cidr":
        try:
            return ipaddress.ip_address(str(value)) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    return False


def _compare(op: str, a: float, b: float) -> bool:
    return {
        "=": a == b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def _excluded(arg: Any, value: Any) -> bool:
    """Whether `value` is one that anything-but `arg` excludes."""
    if isinstance(arg, Mapping):
        ((op, s),) = arg.items()
        return _operator(op, s, value)
    return any(_equal(a, value) for a in (arg if isinstance(arg, list) else [arg]))
