"""Local mode's functions through Lambda's API: CreateFunction, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction, the asynchronous invocation configuration and
tags.

The request becomes a new `$LATEST` by the pure rules of klambda.api.changes; code sent as
a .zip is unpacked into the content-addressed store (`STATE/code/`, as every snapshot), and
the Function is written as a manifest to `STATE/manifests/<name>.yaml`, the kind `kubectl
apply` takes, so a restart keeps it. A changed `$LATEST` is used by new environments from
the next request on; the old ones finish what they run and are closed (drained).

A function defined by a manifest in the folder `klambda up` reads may be changed too: the
changed one is saved with the fingerprint of the folder's (klambda.router.local), and the
folder wins again once its manifest or code is edited. Deleting such a function is refused:
its manifest would bring it back at the next start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from klambda import codestore
from klambda.api import Code, Function, FunctionSpec, ObjectMeta, changes, limits, rules
from klambda.api.limits import LATEST
from klambda.api.manifest import dump
from klambda.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from klambda.router.control import LocalControl
from klambda.router.executor import LocalEnvironments
from klambda.router.local import (
    ANNOTATION_REPLACES,
    code_files,
    fingerprint,
    read_overrides,
    target_of,
    write_overrides,
)
from klambda.router.registry import FunctionEntry, Target
from klambda.router.routing import parse_function


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


P = ParamSpec("P")
R = TypeVar("R")


def _ruled(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a klambda.api.changes rule; its RuleError becomes InvalidParameterValue."""
    try:
        return work(*args, **kwargs)
    except rules.RuleError as err:
        raise InvalidParameterValue(str(err)) from None


class LocalFunctions:
    def __init__(self, control: LocalControl) -> None:
        self.control = control
        self.invoker = control.invoker
        self.registry = control.registry
        self.state_dir = control.state_dir
        self.manifests = control.manifests

    # -- where a function's manifest lives

    def _path(self, function: str) -> Path:
        return self.manifests / f"{function}.yaml"

    def _from_folder(self, entry: FunctionEntry) -> bool:
        """Defined by the folder's manifests (maybe replaced through the API since)."""
        saved = self._path(entry.function.name)
        return not saved.exists() or ANNOTATION_REPLACES in (
            entry.function.metadata.annotations or {}
        )

    # -- code

    def _stored(self, upload: changes.CodeUpload, field: str) -> Code:
        """The code of a request, unpacked into the content-addressed store."""
        if upload.image_uri is not None:
            raise InvalidParameterValue(
                f"{field}.ImageUri: code from an image needs cluster mode "
                "(klambda ... --kubeconfig); send a .zip locally"
            )
        assert upload.zip_file is not None
        try:
            files = codestore.unzip(upload.zip_file, limits.UNZIPPED_MAX_BYTES)
        except codestore.ZipError as err:
            raise InvalidParameterValue(f"{field}.ZipFile: {err}") from None
        root, _sha = codestore.snapshot(files, self.state_dir / "code")
        return Code(path=os.path.relpath(root, self.manifests))

    def _portable(self, entry: FunctionEntry) -> FunctionSpec:
        """`$LATEST`'s spec with its code where a manifest in STATE/manifests finds it."""
        spec = entry.function.spec
        if spec.code.inline is not None:
            return spec
        rel = os.path.relpath(entry.latest.config.code_root, self.manifests)
        return spec.model_copy(update={"code": Code(path=rel)})

    # -- $LATEST

    async def _runtime_ready(self, spec: FunctionSpec) -> None:
        executor = self.invoker.executor
        if isinstance(executor, LocalEnvironments):
            await executor.start({spec.runtime})

    def _save(self, fn: Function) -> Target:
        """Write the Function's manifest and build its `$LATEST` target (nothing is
        changed in the registry yet)."""
        self.manifests.mkdir(parents=True, exist_ok=True)
        path = self._path(fn.name)
        files = code_files(fn.spec, path)
        root, sha = codestore.snapshot(files, self.state_dir / "code")
        target = target_of(fn.name, fn.spec, LATEST, root, sha, self.invoker.settings)
        _write(path, dump(fn))
        return target

    def _replace(self, entry: FunctionEntry, spec: FunctionSpec) -> Target:
        """A new `$LATEST` for `entry`: new environments use it, old ones are drained."""
        annotations = dict(entry.function.metadata.annotations or {})
        if not self._path(entry.function.name).exists():  # the folder's, changed now
            annotations[ANNOTATION_REPLACES] = fingerprint(
                entry.function.spec, entry.latest.config.code_sha256
            )
        meta = ObjectMeta(name=entry.function.name, annotations=annotations or None)
        fn = Function(metadata=meta, spec=spec)
        target = self._save(fn)
        old = entry.latest
        entry.function = fn
        if target.config != old.config or target.state != old.state:
            entry.latest = target
            self.control._background(self.invoker.executor.discard(old))
        return entry.latest  # tags alone leave the environments as they are

    def _entry(self, name: str) -> FunctionEntry:
        return self.registry.get(parse_function(name))

    async def create(self, body: Mapping[str, Any]) -> Target:
        name = parse_function(str(body.get("FunctionName") or ""), "FunctionName")
        upload = _ruled(changes.code_of, body.get("Code") or {}, "Code")
        code = self._stored(upload, "Code")
        spec: FunctionSpec = _ruled(changes.create_spec, body, code)
        try:
            fn = Function(metadata=ObjectMeta(name=name), spec=spec)
        except ValueError as err:
            raise InvalidParameterValue(f"FunctionName: {err}") from None
        await self._runtime_ready(spec)
        if name in self.registry.functions:
            raise ResourceConflict(f"Function already exist: {name}")
        target = self._save(fn)
        self.registry.functions[name] = FunctionEntry(fn, target)
        if body.get("Publish"):
            return self.control.publish_version(name)
        return target

    async def update_code(self, name: str, body: Mapping[str, Any]) -> Target:
        entry = self._entry(name)
        upload = _ruled(changes.code_of, body, "")
        code = self._stored(upload, "Code")
        spec = _ruled(changes.update_code, entry.function.spec, code)
        if body.get("DryRun"):
            return entry.latest
        self._replace(entry, spec)
        if body.get("Publish"):
            return self.control.publish_version(entry.function.name)
        return entry.latest

    async def update_configuration(self, name: str, body: Mapping[str, Any]) -> Target:
        entry = self._entry(name)
        spec = _ruled(changes.update_configuration, self._portable(entry), body)
        await self._runtime_ready(spec)
        self._replace(entry, spec)
        return entry.latest

    def delete(self, name: str) -> None:
        """The function, its versions and its aliases (Lambda's DeleteFunction)."""
        entry = self._entry(name)
        function = entry.function.name
        if self._from_folder(entry):
            raise ResourceConflict(
                f"Function {function} is defined by a manifest in the folder klambda up "
                "reads: remove that manifest and restart to delete it"
            )
        for alias in entry.aliases:
            (self.manifests / f"{function}.{alias}.yaml").unlink(missing_ok=True)
        for number in entry.versions:
            (self.manifests / f"{function}.{number}.yaml").unlink(missing_ok=True)
        self._path(function).unlink(missing_ok=True)
        del self.registry.functions[function]
        for target in [entry.latest, *entry.targets.values(), *entry.tuning.values()]:
            self.control._background(self.invoker.executor.discard(target))
        self.invoker.pools.set_reserved(function, None)
        overrides = read_overrides(self.state_dir)
        if overrides.pop(function, None) is not None or function in overrides:
            write_overrides(self.state_dir, overrides)

    # -- asynchronous invocation

    @staticmethod
    def _latest_only(qualifier: str | None) -> None:
        if qualifier not in (None, "", LATEST):
            raise InvalidParameterValue(
                f"Qualifier: {qualifier!r}: klambda keeps the asynchronous invocation "
                "configuration on the function ($LATEST); a version keeps the one it was "
                "published with"
            )

    def put_event_invoke_config(
        self, name: str, qualifier: str | None, body: Mapping[str, Any], replace: bool
    ) -> FunctionSpec:
        self._latest_only(qualifier)
        entry = self._entry(name)
        spec = _ruled(changes.put_event_invoke_config, self._portable(entry), body, replace)
        self._replace(entry, spec)
        return spec

    def event_invoke_config(self, name: str, qualifier: str | None) -> FunctionSpec:
        self._latest_only(qualifier)
        entry = self._entry(name)
        if not changes.has_event_invoke_config(entry.function.spec):
            raise ResourceNotFound(
                f"The function {entry.function.name} doesn't have an EventInvokeConfig"
            )
        return entry.function.spec

    def delete_event_invoke_config(self, name: str, qualifier: str | None) -> None:
        self.event_invoke_config(name, qualifier)
        entry = self._entry(name)
        self._replace(entry, changes.clear_event_invoke_config(self._portable(entry)))

    # -- tags

    def tag(self, name: str, tags: Mapping[str, Any]) -> None:
        entry = self._entry(name)
        self._replace(entry, _ruled(changes.tag, self._portable(entry), tags))

    def untag(self, name: str, keys: list[str]) -> None:
        entry = self._entry(name)
        self._replace(entry, _ruled(changes.untag, self._portable(entry), keys))

    def tags(self, name: str) -> dict[str, str]:
        return dict(self._entry(name).function.spec.tags or {})
