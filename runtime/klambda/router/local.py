"""Local mode's registry: Function, Version and Alias manifests from a folder.

Everything is read and checked first (manifests, code folders, runtimes, versions' code
hashes, aliases' versions, reserved concurrency against the account); only a folder that
passes every check starts. Code is snapshotted into the state folder, content-addressed,
so a version keeps its bytes. Versions and aliases made at run time (`klambda
publish-version`, `klambda alias set`) are written as manifests to `STATE/manifests/`, the
same kinds `kubectl apply` takes, and read back on the next start.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from klambda import codestore, layerstore
from klambda.api import Alias, FunctionSpec, Version, layer, limits, rules
from klambda.api.layer import Layer
from klambda.api.limits import LATEST
from klambda.api.manifest import ManifestError, Manifests, load
from klambda.execution import config_of
from klambda.router.admission import Admission, ReservationError
from klambda.router.registry import FunctionEntry, Registry, Target
from klambda.settings import RouterSettings
from klambda.worker import container, runtimes

log = logging.getLogger("klambda.router")

OVERRIDES = "concurrency.yaml"
# On a Function manifest in STATE/manifests that replaces one of the folder's (changed
# through the API): the fingerprint of the folder's Function it replaced. When the folder's
# manifest or code changes after that, the folder wins again.
ANNOTATION_REPLACES = f"{limits.GROUP}/replaces"


def fingerprint(spec: FunctionSpec, code_sha256: str) -> str:
    """What identifies a folder's Function: its spec and the digest of its code."""
    return codestore.digest(
        {"spec": json.dumps(spec.wire(), sort_keys=True).encode(), "code": code_sha256.encode()}
    )


def code_files(spec: FunctionSpec, source: Path) -> dict[str, bytes]:
    code = spec.code
    if code.path is not None:
        return codestore.collect(path=(source.parent / code.path).resolve())
    if code.inline is not None:
        return codestore.collect(inline=code.inline)
    if code.image is not None:
        return {}  # the code is in the image, which runs through the Docker engine
    field = "configMap" if code.config_map is not None else "s3Key"
    raise ValueError(
        f"spec.code.{field}: code from a {field} needs cluster mode; "
        "use code.inline or code.path locally"
    )


def layer_files(lay: Layer, source: Path) -> dict[str, bytes]:
    content = lay.spec.content
    if content.inline is not None:
        return codestore.collect(inline=content.inline)
    if content.path is not None:
        return layerstore.read_source((source.parent / content.path).resolve())
    if content.s3_key is not None:
        raise ValueError(
            "spec.content.s3Key: a .zip in the cluster's store needs cluster mode; "
            "use content.path or content.inline locally"
        )
    raise ValueError("give path (a folder or .zip) or inline")


def target_of(
    name: str,
    spec: FunctionSpec,
    version: str,
    code_root: Path,
    sha: str,
    settings: RouterSettings,
    layer_store: Path | None = None,
) -> Target:
    """The target of one version; ValueError naming spec.layers when a layer is missing
    or code and layers pass the unzipped limit (`layer_store`: STATE/layers, beside the
    code store by default)."""
    state = layer_store.parent if layer_store else code_root.parent.parent
    opt = ""
    if spec.layers:
        store = state / "layers"
        used = layerstore.resolve(store, spec.layers)
        code_bytes = sum(p.stat().st_size for p in code_root.rglob("*") if p.is_file())
        layer.check_size(code_bytes, [v.size for v in used])
        opt = str(layerstore.opt_root(store, used))
    mounts = []
    for fs in spec.file_system_configs:
        # local mode's file system: a folder of the state, shared by every function and
        # environment that names the same claim
        folder = state / "filesystems" / fs.claim_name
        folder.mkdir(parents=True, exist_ok=True)
        mounts.append((str(folder), fs.local_mount_path))
    cfg = config_of(
        name,
        version,
        spec,
        code_root=str(code_root),
        code_sha256=sha,
        region=settings.region,
        account=settings.account_id,
        opt_root=opt,
        mounts=tuple(mounts),
    )
    target = Target(cfg)
    if spec.code.image is not None:
        problem = container.engine_problem()
        reason = (
            None
            if problem is None
            else f"spec.code.image: images run locally through the Docker engine: {problem}"
        )
    else:
        reason = runtimes.missing(spec.runtime) or runtimes.cannot_mount(spec.runtime, bool(mounts))
    if reason is not None:
        target.state = "Failed"
        target.state_reason = reason
    return target


def version_target(v: Version, source: Path, store: Path, settings: RouterSettings) -> Target:
    files = code_files(v.spec.config, source)
    root, sha = codestore.snapshot(files, store)
    if sha != v.spec.code_sha256:
        raise ValueError(f"spec.codeSha256: {v.spec.code_sha256} does not match the code ({sha})")
    return target_of(v.spec.function, v.spec.config, v.spec.version, root, sha, settings)


def check_alias(entry: FunctionEntry, alias: Alias) -> None:
    """RuleError naming the field unless every version the alias routes to exists."""
    rules.check_alias_targets(alias.spec, entry.targets)


def read_overrides(state_dir: Path) -> dict[str, int | None]:
    path = state_dir / OVERRIDES
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {str(k): (None if v is None else int(v)) for k, v in data.items()}


def write_overrides(state_dir: Path, overrides: dict[str, int | None]) -> None:
    tmp = state_dir / (OVERRIDES + ".tmp")
    tmp.write_text(yaml.safe_dump(overrides, sort_keys=True))
    tmp.replace(state_dir / OVERRIDES)


def merge(into: Manifests, more: Manifests, problems: list[str]) -> None:
    for kind, table, extra in (
        ("Function", into.functions, more.functions),
        ("Version", into.versions, more.versions),
        ("Alias", into.aliases, more.aliases),
    ):
        for name, obj in extra.items():
            if name in table:
                problems.append(
                    f"{more.sources[(kind, name)]}: {kind} {name!r} is also defined in "
                    f"{into.sources[(kind, name)]}"
                )
                continue
            table[name] = obj  # type: ignore[assignment]
            into.sources[(kind, name)] = more.sources[(kind, name)]


def build_registry(
    manifests: Manifests, state_dir: Path, settings: RouterSettings, pools: Admission
) -> Registry:
    registry = Registry()
    problems: list[str] = []
    store = state_dir / "code"
    overrides = read_overrides(state_dir)
    for name, lay in manifests.layers.items():
        # the folder's Layers are published first (content-addressed: unchanged files keep
        # their version), so its Functions may name them
        source = manifests.sources[("Layer", name)]
        try:
            files = layer_files(lay, source)
            layerstore.publish(state_dir / "layers", name, files, lay.spec.description)
        except (ValueError, OSError) as err:
            problems.append(f"{source} Layer/{name}: spec.content: {err}")
    for name, fn in manifests.functions.items():
        source = manifests.sources[("Function", name)]
        where = f"{source} Function/{name}"
        try:
            root, sha = codestore.snapshot(code_files(fn.spec, source), store)
            reserved = overrides.get(name, fn.spec.reserved_concurrency)
            pools.set_reserved(name, reserved)
            target = target_of(name, fn.spec, LATEST, root, sha, settings, state_dir / "layers")
        except ReservationError as err:
            problems.append(f"{where}: spec.reservedConcurrency: {err}")
            continue
        except (ValueError, OSError) as err:
            problems.append(f"{where}: {err}")
            continue
        registry.functions[name] = FunctionEntry(fn, target)
    for name, v in sorted(manifests.versions.items(), key=lambda kv: kv[1].number):
        source = manifests.sources[("Version", name)]
        entry = registry.functions.get(v.spec.function)
        if entry is None:
            problems.append(
                f"{source} Version/{name}: spec.function: no Function {v.spec.function!r}"
            )
            continue
        try:
            entry.targets[v.spec.version] = version_target(v, source, store, settings)
        except (ValueError, OSError) as err:
            problems.append(f"{source} Version/{name}: {err}")
            continue
        entry.versions[v.spec.version] = v
    for name, a in manifests.aliases.items():
        source = manifests.sources[("Alias", name)]
        entry = registry.functions.get(a.spec.function)
        if entry is None:
            problems.append(
                f"{source} Alias/{name}: spec.function: no Function {a.spec.function!r}"
            )
            continue
        try:
            check_alias(entry, a)
        except ValueError as err:
            problems.append(f"{source} Alias/{name}: {err}")
            continue
        entry.aliases[a.alias_name] = a
    if problems:
        raise ManifestError(problems)
    return registry


def replace_changed(folder: Manifests, saved: Manifests) -> None:
    """Functions of the folder that were changed through the API since: the saved one
    replaces the folder's while the folder's is what it replaced; once the folder's manifest
    or code has changed, the folder's is used again and the saved one is removed."""
    for name, fn in list(saved.functions.items()):
        if name not in folder.functions:
            continue
        path = saved.sources.pop(("Function", name))
        del saved.functions[name]
        mine = folder.functions[name]
        try:
            files = code_files(mine.spec, folder.sources[("Function", name)])
        except (ValueError, OSError):
            continue  # the folder's is broken: build_registry says how
        mark = (fn.metadata.annotations or {}).get(ANNOTATION_REPLACES)
        if mark == fingerprint(mine.spec, codestore.digest(files)):
            folder.functions[name] = fn
            folder.sources[("Function", name)] = path
        else:
            log.warning(
                "Function %s: %s changed after the API changed it; using the folder's",
                name,
                folder.sources[("Function", name)],
            )
            path.unlink(missing_ok=True)


def load_registry(
    functions_dir: Path, state_dir: Path, settings: RouterSettings, pools: Admission
) -> Registry:
    manifests = load(functions_dir, allow_empty=True)
    saved = state_dir / "manifests"
    if saved.is_dir() and any(saved.glob("*.yaml")):
        problems: list[str] = []
        kept = load(saved)
        replace_changed(manifests, kept)
        merge(manifests, kept, problems)
        if problems:
            raise ManifestError(problems)
    return build_registry(manifests, state_dir, settings, pools)
