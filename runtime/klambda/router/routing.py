"""Which function and version a request names, and where an alias sends it. Pure.

`parse_function_name` reads Lambda's FunctionName (and Qualifier) the way Lambda does; every
entry point (REST handlers, gRPC, the async dispatcher) resolves names through it and the
registry. `pick_version` is Lambda's weighted RoutingConfig.
"""

from __future__ import annotations

import functools
import re

from klambda.api.alias import AliasSpec
from klambda.errors import InvalidParameterValue

FUNCTION_NAME_FIELD_MAX = 170  # a full ARN with a qualifier, Invoke's limit
NAME_MAX = 64  # the function's own name, however it is written
QUALIFIER_MAX = 128

_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
_QUALIFIER = re.compile(r"\$LATEST|[a-zA-Z0-9_-]+")  # in a name or an ARN
_QUALIFIER_FIELD = re.compile(r"[a-zA-Z0-9$_-]+")  # the Qualifier parameter
_PARTITION = re.compile(r"aws[a-zA-Z-]*")
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
_ACCOUNT = re.compile(r"\d{12}")

FORMS = (
    "a name (my-function), NAME:QUALIFIER, a partial ARN (123456789012:function:my-function) "
    "or an ARN (arn:aws:lambda:us-east-1:123456789012:function:my-function)"
)


def _invalid(field: str, value: str, why: str) -> InvalidParameterValue:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return InvalidParameterValue(f"{field}: {shown!r} {why}")


def _split(name: str, field: str) -> list[str]:
    """The function's name and any qualifier, from the four forms Lambda accepts."""
    parts = name.split(":")
    if parts[0] == "arn" and len(parts) > 2:  # `arn` and `arn:prod` are a name (and alias)
        if len(parts) < 6:
            raise _invalid(field, name, f"is not a Lambda function ARN; give {FORMS}")
        partition, service, region, account, kind = parts[1:6]
        if service != "lambda":
            raise _invalid(
                field, name, f"is an ARN of {service or 'no service'}, not of a Lambda function"
            )
        if not _PARTITION.fullmatch(partition):
            raise _invalid(field, name, f"has an unknown partition {partition!r} (aws, aws-cn...)")
        if not _REGION.fullmatch(region):
            raise _invalid(field, name, f"has no valid region (e.g. us-east-1), got {region!r}")
        if not _ACCOUNT.fullmatch(account):
            raise _invalid(field, name, f"has no 12-digit account id, got {account!r}")
        if kind != "function" or len(parts) not in (7, 8):
            raise _invalid(field, name, "is not a function ARN (...:function:NAME[:QUALIFIER])")
        return parts[6:]
    if len(parts) >= 3 and parts[1] == "function":
        if not _ACCOUNT.fullmatch(parts[0]):
            raise _invalid(field, name, "is a partial ARN without a 12-digit account id")
        if len(parts) > 4:
            raise _invalid(field, name, f"has more than one qualifier; give {FORMS}")
        return parts[2:]
    if len(parts) > 2:
        raise _invalid(field, name, f"is none of the forms Lambda accepts: {FORMS}")
    return parts


def parse_function_name(
    name: str, qualifier: str | None = None, field: str = "FunctionName"
) -> tuple[str, str | None]:
    """FunctionName and Qualifier as Lambda accepts them, to (function, qualifier or None).

    FunctionName is `my-function`, `my-function:v1`, `123456789012:function:my-function[:v1]`
    or `arn:aws:lambda:us-west-2:123456789012:function:my-function[:v1]`; a qualifier in the
    name and the Qualifier parameter must agree. Anything else is refused naming the field
    (InvalidParameterValue). The region and account of an ARN are checked for form only:
    a router serves one account, whose functions are found (or not) by name.
    """
    if not name:
        raise InvalidParameterValue(f"{field}: must not be empty; give {FORMS}")
    if len(name) > FUNCTION_NAME_FIELD_MAX:
        raise _invalid(field, name, f"is longer than {FUNCTION_NAME_FIELD_MAX} characters")
    parts = _split(name, field)
    fn = parts[0]
    if not fn:
        raise _invalid(field, name, "has an empty function name")
    if len(fn) > NAME_MAX:
        raise _invalid(field, name, f"has a function name longer than {NAME_MAX} characters")
    if not _NAME.fullmatch(fn):
        raise _invalid(
            field, name, "has a function name that is not letters, digits, '-', '_' or '.'"
        )
    q = parts[1] if len(parts) > 1 else None
    if q is not None and (len(q) > QUALIFIER_MAX or not _QUALIFIER.fullmatch(q)):
        raise _invalid(
            field,
            name,
            f"has a qualifier that is not $LATEST, a version or an alias "
            f"(1-{QUALIFIER_MAX} letters, digits, '-' or '_')",
        )
    if qualifier and (len(qualifier) > QUALIFIER_MAX or not _QUALIFIER_FIELD.fullmatch(qualifier)):
        raise _invalid(
            "Qualifier",
            qualifier,
            f"is not a version or alias (1-{QUALIFIER_MAX} letters, digits, '$', '-' or '_')",
        )
    if q and qualifier and q != qualifier:
        raise InvalidParameterValue(
            f"the qualifier in the name ({q}) and Qualifier ({qualifier}) differ"
        )
    return fn, (q or qualifier or None)


@functools.lru_cache(maxsize=4096)
def parsed_function_name(name: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """`parse_function_name` of an invoke's FunctionName, remembered: callers name the same
    few functions over and over (a name refused is not remembered: it raises again)."""
    return parse_function_name(name, qualifier)


def parse_function(name: str, field: str = "FunctionName") -> str:
    """The function named, for operations on the function itself (versions, aliases,
    concurrency, dead letters, logs): any of the forms above, without a qualifier."""
    fn, q = parse_function_name(name, None, field)
    if q is not None:
        raise _invalid(field, name, "names a version or alias; this operation takes the function")
    return fn


def pick_version(alias: AliasSpec, rnd: float) -> str:
    """`rnd` is uniform in [0, 1): below the weight goes to the additional version."""
    routing = alias.routing
    if routing is not None and rnd < routing.weight:
        return routing.additional_version
    return alias.version
