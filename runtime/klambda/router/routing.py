"""Which version an alias sends a request to: Lambda's weighted RoutingConfig. Pure."""

from __future__ import annotations

from klambda.api.alias import AliasSpec


def pick_version(alias: AliasSpec, rnd: float) -> str:
    """`rnd` is uniform in [0, 1): below the weight goes to the additional version."""
    routing = alias.routing
    if routing is not None and rnd < routing.weight:
        return routing.additional_version
    return alias.version


def parse_function_name(name: str, qualifier: str | None) -> tuple[str, str | None]:
    """A name, `name:qualifier`, or a (partial) ARN, to (function, qualifier).

    Lambda accepts `my-function`, `my-function:v1`, `123456789012:function:my-function`
    and `arn:aws:lambda:us-west-2:123456789012:function:my-function[:qualifier]`.
    """
    parts = name.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        fn, q = parts[6], (parts[7] if len(parts) > 7 else None)
    elif len(parts) >= 3 and parts[1] == "function":
        fn, q = parts[2], (parts[3] if len(parts) > 3 else None)
    elif len(parts) == 2:
        fn, q = parts
    else:
        fn, q = name, None
    if q and qualifier and q != qualifier:
        raise ValueError(f"the qualifier in the name ({q}) and Qualifier ({qualifier}) differ")
    return fn, (q or qualifier or None)
