"""Lambda's control rules, as pure functions of the resource models.

Local mode's control API (klambda.router.control), the CLI against a cluster
(klambda.cli.kube) and the operator decide with these, so a request refused in one mode
is refused in the other with the same words. Each raises `RuleError` naming the field and
the limit, or returns what was decided; none reads or writes anything.

- publishing: the next version number, whether `$LATEST` is unchanged since the newest
  version (then Lambda returns that version instead of publishing another), and the
  configuration a version snapshots (without triggers);
- aliases: every version an alias routes to must be published;
- deleting a version: refused while an alias routes to it;
- budgets: a reservation leaves at least the unreserved minimum of the account; the
  provisioned concurrency of a function fits in its reservation (or in what the account
  can reserve);
- the split of provisioned concurrency over versions, an alias's by its routing weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from klambda.api.alias import AliasSpec
from klambda.api.function import FunctionSpec
from klambda.api.limits import LATEST
from klambda.api.version import VersionSpec


class RuleError(ValueError):
    """A request that Lambda's rules refuse; the message names the field and the limit."""


# -- publishing


def next_version(published: Iterable[str]) -> str:
    """The number the next published version gets: one more than the highest so far."""
    return str(max((int(v) for v in published), default=0) + 1)


def unchanged_since(newest: VersionSpec | None, code_sha256: str, spec: FunctionSpec) -> bool:
    """Whether `$LATEST` (its code hash and configuration) is what `newest` snapshotted.

    Where the code comes from (`code.inline`, `path`, `configMap`) is not configuration:
    the same bytes from another place are the same code, as Lambda compares CodeSha256.
    """
    if newest is None:
        return False
    ignored = {"code", *TRIGGER_FIELDS}
    return newest.code_sha256 == code_sha256 and newest.config.model_dump(
        exclude=ignored
    ) == spec.model_dump(exclude=ignored)


# Triggers invoke a function or an alias; they are not part of a version's configuration,
# as Lambda's event sources and URLs are not.
TRIGGER_FIELDS = ("events", "function_url")


def version_config(spec: FunctionSpec) -> FunctionSpec:
    """The configuration a published version snapshots: `$LATEST`'s, without triggers."""
    return spec.model_copy(update=dict.fromkeys(TRIGGER_FIELDS))


# -- aliases


def alias_targets(spec: AliasSpec) -> list[tuple[str, str]]:
    """(field, version) of every version an alias routes to."""
    out = [("spec.version", spec.version)]
    if spec.routing is not None:
        out.append(("spec.routing.additionalVersion", spec.routing.additional_version))
    return out


def check_alias_targets(spec: AliasSpec, published: Iterable[str]) -> None:
    """RuleError naming the field unless every version the alias routes to is published."""
    have = set(published)
    for field, version in alias_targets(spec):
        if version != LATEST and version not in have:
            listed = ", ".join(sorted(have, key=int)) or "none"
            raise RuleError(
                f"{field}: version {version} of {spec.function} does not exist "
                f"(published: {listed})"
            )


def aliases_routing_to(aliases: Mapping[str, AliasSpec], version: str) -> list[str]:
    """The names of the aliases that route to `version`, sorted."""
    return sorted(
        name
        for name, spec in aliases.items()
        if any(v == version for _field, v in alias_targets(spec))
    )


def check_delete_version(function: str, version: str, aliases: Mapping[str, AliasSpec]) -> None:
    users = aliases_routing_to(aliases, version)
    if users:
        many = len(users) > 1
        raise RuleError(
            f"version {version} of {function} cannot be deleted: "
            f"{'aliases' if many else 'alias'} {', '.join(users)} "
            f"{'route' if many else 'routes'} to it"
        )


# -- budgets


def check_reservation(
    function: str,
    reserved: int | None,
    reservations: Mapping[str, int],
    account_limit: int,
    unreserved_min: int,
) -> None:
    """RuleError unless `reserved` can be given to `function` while the others keep theirs
    (`reservations`: every function's, this one's included or not) and at least
    `unreserved_min` of the account stays unreserved."""
    if reserved is None:
        return
    if reserved < 0:
        raise RuleError(f"reservedConcurrency must be >= 0, got {reserved}")
    others = sum(n for name, n in reservations.items() if name != function)
    most = account_limit - unreserved_min - others
    if reserved > most:
        raise RuleError(
            f"reservedConcurrency {reserved} for {function} would leave "
            f"{account_limit - others - reserved} unreserved; at least "
            f"{unreserved_min} of the account's {account_limit} must stay "
            f"unreserved (at most {max(0, most)} can be reserved for it)"
        )


def check_provisioned(
    function: str,
    qualifier: str,
    count: int,
    others: int,
    reserved: int | None,
    reservable: int,
    unreserved_min: int,
) -> None:
    """RuleError unless `count` provisioned environments for `function:qualifier` fit, with
    the `others` the function's other versions and aliases have, in its reservation or, with
    none, in the `reservable` part of the account (its limit less the other functions'
    reservations and the unreserved minimum)."""
    if count < 0:
        raise RuleError(f"ProvisionedConcurrentExecutions: must be >= 0, got {count}")
    if qualifier in ("", LATEST):
        raise RuleError(
            "Qualifier: provisioned concurrency needs a version or an alias, not $LATEST"
        )
    total = others + count
    if reserved is not None and total > reserved:
        raise RuleError(
            f"ProvisionedConcurrentExecutions: {total} provisioned in all for "
            f"{function} is more than its reserved concurrency of {reserved}"
        )
    if reserved is None and total > reservable:
        raise RuleError(
            f"ProvisionedConcurrentExecutions: {total} is more than the "
            f"{reservable} the account can give while keeping "
            f"{unreserved_min} unreserved"
        )


def provisioned_total(versions: Iterable[VersionSpec], aliases: Iterable[AliasSpec]) -> int:
    """All the provisioned concurrency a function's versions and aliases ask for."""
    return sum(v.provisioned_concurrency for v in versions) + sum(
        a.provisioned_concurrency for a in aliases
    )


# -- the split of provisioned concurrency


def provisioned_by_version(
    versions: Iterable[VersionSpec], aliases: Iterable[AliasSpec]
) -> dict[str, int]:
    """How many provisioned environments each version of a function should have.

    A version's own setting plus its share of every alias's, split by the alias's routing
    weight as Lambda does (the additional version gets round(n * weight), the main version
    the rest). Versions with none are left out.
    """
    want: dict[str, int] = {}

    def add(version: str, n: int) -> None:
        if n > 0:
            want[version] = want.get(version, 0) + n

    for v in versions:
        add(v.version, v.provisioned_concurrency)
    for a in aliases:
        n = a.provisioned_concurrency
        extra = round(n * a.routing.weight) if a.routing and n else 0
        add(a.version, n - extra)
        if a.routing is not None:
            add(a.routing.additional_version, extra)
    return want
