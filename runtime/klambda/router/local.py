"""Local mode's registry: Function, Version and Alias manifests from a folder.

Everything is read and checked first (manifests, code folders, runtimes, reserved
concurrency against the account); only a folder that passes every check starts. Code is
snapshotted into the state folder, content-addressed, so versions keep their bytes.
"""

from __future__ import annotations

from pathlib import Path

from klambda import codestore
from klambda.api import Function
from klambda.api.limits import LATEST
from klambda.api.manifest import ManifestError, Manifests, load
from klambda.router.admission import ConcurrencyPools, ReservationError
from klambda.router.registry import FunctionEntry, Registry, Target
from klambda.settings import RouterSettings
from klambda.worker import runtimes
from klambda.worker.environment import FunctionConfig


def code_files(fn: Function, source: Path) -> dict[str, bytes]:
    code = fn.spec.code
    if code.path is not None:
        return codestore.collect(path=(source.parent / code.path).resolve())
    if code.inline is not None:
        return codestore.collect(inline=code.inline)
    field = "configMap" if code.config_map else "image"
    raise ValueError(
        f"spec.code.{field}: code from a {field} needs cluster mode; "
        "use code.inline or code.path locally"
    )


def target_of(
    fn: Function, version: str, code_root: Path, sha: str, settings: RouterSettings
) -> Target:
    spec = fn.spec
    cfg = FunctionConfig(
        function=fn.name,
        version=version,
        handler=spec.handler,
        runtime=spec.runtime,
        memory_mb=spec.memory_mb,
        timeout_s=spec.timeout_seconds,
        environment=dict(spec.environment),
        code_root=str(code_root),
        code_sha256=sha,
        region=settings.region,
        account=settings.account_id,
    )
    target = Target(cfg)
    if runtimes.interpreter(spec.runtime) is None:
        target.state = "Failed"
        target.state_reason = (
            f"runtime {spec.runtime} is not installed here (no {spec.runtime} on PATH)"
        )
    return target


def build_registry(
    manifests: Manifests, state_dir: Path, settings: RouterSettings, pools: ConcurrencyPools
) -> Registry:
    registry = Registry()
    problems: list[str] = []
    store = state_dir / "code"
    for name, fn in manifests.functions.items():
        source = manifests.sources[("Function", name)]
        try:
            files = code_files(fn, source)
            root, sha = codestore.snapshot(files, store)
            pools.check_reservation(name, fn.spec.reserved_concurrency)
            pools.set_reserved(name, fn.spec.reserved_concurrency)
        except (ValueError, OSError) as err:
            where = f"{source} Function/{name}"
            if isinstance(err, ReservationError):
                problems.append(f"{where}: spec.reservedConcurrency: {err}")
            else:
                problems.append(f"{where}: {err}")
            continue
        registry.functions[name] = FunctionEntry(fn, target_of(fn, LATEST, root, sha, settings))
    if problems:
        raise ManifestError(problems)
    return registry


def load_registry(
    functions_dir: Path, state_dir: Path, settings: RouterSettings, pools: ConcurrencyPools
) -> Registry:
    return build_registry(load(functions_dir), state_dir, settings, pools)
