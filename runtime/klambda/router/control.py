"""Local mode's control API: publish versions, set aliases, reserved and provisioned
concurrency. Every change is checked in full before anything is touched, so a refused
request leaves the previous configuration as it was; accepted changes are written to
`STATE/manifests/` (Versions, Aliases) and `STATE/concurrency.yaml`, and survive a restart.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from klambda.api import (
    Alias,
    AliasSpec,
    ObjectMeta,
    RoutingConfig,
    Version,
    VersionSpec,
    changes,
    limits,
    rules,
)
from klambda.api.autoscaling import ProvisionedAutoscaling
from klambda.api.manifest import dump
from klambda.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from klambda.router.admission import ReservationError
from klambda.router.invoke import Invoker
from klambda.router.local import check_alias, read_overrides, version_target, write_overrides
from klambda.router.registry import FunctionEntry, Target, provisioned_by_version


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def provisioned_of(entry: FunctionEntry, qualifier: str) -> int:
    """The provisioned concurrency an alias or a version asks for (0 if none)."""
    if qualifier in entry.aliases:
        return entry.aliases[qualifier].spec.provisioned_concurrency
    if qualifier in entry.versions:
        return entry.versions[qualifier].spec.provisioned_concurrency
    return 0


def check_provisioned(invoker: Invoker, entry: FunctionEntry, qualifier: str, count: int) -> None:
    """Lambda's budget for provisioned concurrency (klambda.api.rules) against this router's
    pools; InvalidParameterValue if `count` does not fit."""
    pools = invoker.pools
    function = entry.function.name
    total = rules.provisioned_total(
        (v.spec for v in entry.versions.values()), (a.spec for a in entry.aliases.values())
    )
    try:
        rules.check_provisioned(
            function,
            qualifier,
            count,
            total - provisioned_of(entry, qualifier),
            pools.reserved.get(function),
            pools.unreserved_limit - pools.unreserved_min,
            pools.unreserved_min,
        )
    except rules.RuleError as err:
        raise InvalidParameterValue(str(err)) from None


class LocalControl:
    def __init__(self, invoker: Invoker, state_dir: Path) -> None:
        self.invoker = invoker
        self.registry = invoker.registry
        self.state_dir = state_dir
        self.manifests = state_dir / "manifests"
        self._tasks: set[asyncio.Future[None]] = set()
        # told when aliases change, so that their triggers are served (or no longer)
        self.changed: Callable[[], None] = lambda: None

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # versions

    def publish_version(self, function: str, description: str = "") -> Target:
        entry = self.registry.get(function)
        latest = entry.latest.config
        spec = entry.function.spec
        newest = entry.versions[max(entry.versions, key=int)].spec if entry.versions else None
        if newest is not None and rules.unchanged_since(newest, latest.code_sha256, spec):
            return entry.targets[newest.version]
        number = rules.next_version(entry.versions)
        self.manifests.mkdir(parents=True, exist_ok=True)
        path = self.manifests / f"{function}.{number}.yaml"
        code: dict[str, Any]
        if spec.code.inline is not None:
            code = {"inline": dict(spec.code.inline)}
        else:
            code = {"path": os.path.relpath(latest.code_root, self.manifests)}
        config = rules.version_config(spec).model_copy(
            update={"code": type(spec.code).model_validate(code)}
        )
        version = Version(
            metadata=ObjectMeta(name=f"{function}.{number}"),
            spec=VersionSpec(
                function=function,
                version=number,
                description=description,
                code_sha256=latest.code_sha256,
                config=config,
            ),
        )
        target = version_target(version, path, self.state_dir / "code", self.invoker.settings)
        _write(path, dump(version))
        entry.versions[number] = version
        entry.targets[number] = target
        return target

    def delete_version(self, function: str, number: str) -> None:
        entry = self.registry.get(function)
        if number not in entry.versions:
            raise ResourceNotFound(f"Function not found: {function}:{number}")
        try:
            rules.check_delete_version(
                function, number, {n: a.spec for n, a in entry.aliases.items()}
            )
        except rules.RuleError as err:
            raise ResourceConflict(str(err)) from None
        (self.manifests / f"{function}.{number}.yaml").unlink(missing_ok=True)
        del entry.versions[number]
        target = entry.targets.pop(number)
        self._background(self.invoker.executor.discard(target))

    # aliases

    def put_alias(
        self,
        function: str,
        name: str,
        version: str | None,
        routing: dict[str, float] | None = None,
        description: str | None = None,
        triggers: dict[str, Any] | None = None,
    ) -> Alias:
        """Create or update an alias; `routing` is {additional version: weight} or {} to clear;
        `triggers` is klambda's `Triggers` ({} to clear), None to keep the alias's."""
        entry = self.registry.get(function)
        old = entry.aliases.get(name)
        if version is None:
            if old is None:
                raise InvalidParameterValue(f"alias {name} does not exist: give --version")
            version = old.spec.version
        if routing is None:
            rc = old.spec.routing if old else None
        elif len(routing) > 1:
            raise InvalidParameterValue(
                "routing: at most one additional version can be given "
                f"(got {', '.join(sorted(routing))})"
            )
        elif routing:
            ((extra, weight),) = routing.items()
            rc = _validated(RoutingConfig, additional_version=extra, weight=weight)
        else:
            rc = None
        spec = _validated(
            AliasSpec,
            function=function,
            version=version,
            routing=rc,
            description=description
            if description is not None
            else (old.spec.description if old else ""),
            provisioned_concurrency=old.spec.provisioned_concurrency if old else 0,
            provisioned_autoscaling=old.spec.provisioned_autoscaling if old else None,
            events=old.spec.events if old else None,
            function_url=old.spec.function_url if old else None,
        )
        if triggers is not None:
            try:
                spec = changes.alias_triggers(spec, triggers)
            except rules.RuleError as err:
                raise InvalidParameterValue(str(err)) from None
        alias: Alias = _validated(Alias, metadata=ObjectMeta(name=f"{function}.{name}"), spec=spec)
        try:
            check_alias(entry, alias)
        except rules.RuleError as err:
            raise InvalidParameterValue(str(err)) from None
        self.manifests.mkdir(parents=True, exist_ok=True)
        _write(self.manifests / f"{function}.{name}.yaml", dump(alias))
        entry.aliases[name] = alias
        self.apply_provisioned(entry)
        self.changed()
        return alias

    def delete_alias(self, function: str, name: str) -> None:
        entry = self.registry.get(function)
        if name not in entry.aliases:
            raise ResourceNotFound(f"Alias not found: {function}:{name}")
        (self.manifests / f"{function}.{name}.yaml").unlink(missing_ok=True)
        del entry.aliases[name]
        self.apply_provisioned(entry)
        self.changed()

    # concurrency

    def put_reserved(self, function: str, reserved: int | None) -> None:
        self.registry.get(function)
        try:
            self.invoker.pools.set_reserved(function, reserved)
        except ReservationError as err:
            raise InvalidParameterValue(f"ReservedConcurrentExecutions: {err}") from None
        overrides = read_overrides(self.state_dir)
        overrides[function] = reserved
        write_overrides(self.state_dir, overrides)

    def put_provisioned(self, function: str, qualifier: str, count: int) -> None:
        entry = self.registry.get(function)
        check_provisioned(self.invoker, entry, qualifier, count)
        if qualifier in entry.aliases:
            alias = entry.aliases[qualifier]
            updated_alias = alias.model_copy(
                update={"spec": alias.spec.model_copy(update={"provisioned_concurrency": count})}
            )
            _write(self.manifests / f"{function}.{qualifier}.yaml", dump(updated_alias))
            entry.aliases[qualifier] = updated_alias
        elif qualifier in entry.versions:
            v = entry.versions[qualifier]
            updated = v.model_copy(
                update={"spec": v.spec.model_copy(update={"provisioned_concurrency": count})}
            )
            _write(self.manifests / f"{function}.{qualifier}.yaml", dump(updated))
            entry.versions[qualifier] = updated
        else:
            raise ResourceNotFound(f"Function not found: {function}:{qualifier}")
        self.apply_provisioned(entry)

    def put_autoscaling(
        self, function: str, qualifier: str, policy: ProvisionedAutoscaling | None
    ) -> None:
        """Set (or remove, None) an alias's or a version's provisioned autoscaling; the
        router's autoscaler acts on it from its next tick."""
        entry = self.registry.get(function)
        if qualifier in entry.aliases:
            alias = entry.aliases[qualifier]
            updated_alias = alias.model_copy(
                update={"spec": alias.spec.model_copy(update={"provisioned_autoscaling": policy})}
            )
            _write(self.manifests / f"{function}.{qualifier}.yaml", dump(updated_alias))
            entry.aliases[qualifier] = updated_alias
        elif qualifier in entry.versions:
            v = entry.versions[qualifier]
            updated = v.model_copy(
                update={"spec": v.spec.model_copy(update={"provisioned_autoscaling": policy})}
            )
            _write(self.manifests / f"{function}.{qualifier}.yaml", dump(updated))
            entry.versions[qualifier] = updated
        else:
            raise ResourceNotFound(
                f"Function not found: {function}:{qualifier} (provisioned autoscaling is set on "
                "an alias or a published version)"
            )

    def _provisioned_of(self, entry: FunctionEntry, qualifier: str) -> int:
        return provisioned_of(entry, qualifier)

    def apply_provisioned(self, entry: FunctionEntry) -> None:
        want = provisioned_by_version(entry)
        for number, target in entry.targets.items():
            self.invoker.executor.set_provisioned(target, want.get(number, 0))

    def provisioned_configs(self, function: str) -> list[dict[str, Any]]:
        """Lambda's ListProvisionedConcurrencyConfigs: every alias and version with some."""
        entry = self.registry.get(function)
        arn = entry.latest.config.arn
        qualifiers = [q for q in (*entry.aliases, *entry.versions)]
        return [
            {"FunctionArn": f"{arn}:{q}", **self.provisioned_config(function, q)}
            for q in sorted(qualifiers)
            if self._provisioned_of(entry, q)
        ]

    def provisioned_config(self, function: str, qualifier: str) -> dict[str, Any]:
        entry = self.registry.get(function)
        requested = self._provisioned_of(entry, qualifier)
        if qualifier not in entry.aliases and qualifier not in entry.versions:
            raise ResourceNotFound(f"Function not found: {function}:{qualifier}")
        if qualifier in entry.aliases:
            a = entry.aliases[qualifier].spec
            numbers = [a.version] + ([a.routing.additional_version] if a.routing else [])
        else:
            numbers = [qualifier]
        states = [
            self.invoker.executor.provisioned(entry.targets[n])
            for n in numbers
            if n in entry.targets
        ]
        ready = sum(p.ready for p in states)
        failed = [p.error for p in states if p.error]
        status = "FAILED" if failed else ("READY" if ready >= requested else "IN_PROGRESS")
        return {
            "RequestedProvisionedConcurrentExecutions": requested,
            "AvailableProvisionedConcurrentExecutions": min(ready, requested),
            "AllocatedProvisionedConcurrentExecutions": min(ready, requested),
            "Status": status,
            **({"StatusReason": failed[0]} if failed else {}),
        }

    # power tuning

    def start_tuning(self, function: str, memory_mb: int) -> str:
        """A temporary copy of $LATEST at another memory size; its qualifier."""
        import uuid
        from dataclasses import replace

        entry = self.registry.get(function)
        if not limits.MEMORY_MIN_MB <= memory_mb <= limits.MEMORY_MAX_MB:
            raise InvalidParameterValue(
                f"MemorySize: {memory_mb} MB is outside "
                f"{limits.MEMORY_MIN_MB}-{limits.MEMORY_MAX_MB} MB"
            )
        qualifier = f"$TUNE-{uuid.uuid4().hex[:8]}-{memory_mb}"
        latest = entry.latest
        entry.tuning[qualifier] = Target(
            replace(latest.config, memory_mb=memory_mb),
            latest.state,
            latest.state_reason,
            qualifier=qualifier,
        )
        return qualifier

    async def stop_tuning(self, function: str, qualifier: str) -> None:
        entry = self.registry.get(function)
        target = entry.tuning.pop(qualifier, None)
        if target is None:
            raise ResourceNotFound(f"no tuning target {function}:{qualifier}")
        await self.invoker.executor.discard(target)

    def start(self) -> None:
        """Bring provisioned environments up for every function (at router start)."""
        for entry in self.registry.functions.values():
            self.apply_provisioned(entry)


def _validated(model: Any, **fields: Any) -> Any:
    """Build a pydantic model; InvalidParameterValue naming the field if it is refused."""
    from pydantic import ValidationError

    from klambda.api.manifest import describe_errors

    try:
        return model(**fields)
    except ValidationError as err:
        raise InvalidParameterValue("; ".join(describe_errors(err))) from None
