"""Lambda's JSON shapes of a function version and an alias, as the control API returns them."""

from __future__ import annotations

from typing import Any

from klambda.api import Alias, limits
from klambda.router.registry import FunctionEntry, Target


def configuration(target: Target, description: str = "") -> dict[str, Any]:
    """Lambda's FunctionConfiguration of one version."""
    cfg = target.config
    arn = cfg.arn if cfg.version == limits.LATEST else f"{cfg.arn}:{cfg.version}"
    return {
        "FunctionName": cfg.function,
        "FunctionArn": arn,
        "Runtime": cfg.runtime,
        "Role": f"arn:aws:iam::{cfg.account}:role/klambda",
        "Handler": cfg.handler,
        "Description": description,
        "Timeout": cfg.timeout_s,
        "MemorySize": cfg.memory_mb,
        "CodeSha256": cfg.code_sha256,
        "Version": cfg.version,
        "Environment": {"Variables": dict(cfg.environment)},
        "State": target.state,
        "StateReason": target.state_reason or "",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
    }


def alias_configuration(entry: FunctionEntry, alias: Alias) -> dict[str, Any]:
    """Lambda's AliasConfiguration."""
    spec = alias.spec
    out: dict[str, Any] = {
        "AliasArn": f"{entry.latest.config.arn}:{alias.alias_name}",
        "Name": alias.alias_name,
        "FunctionVersion": spec.version,
        "Description": spec.description,
    }
    if spec.routing is not None:
        out["RoutingConfig"] = {
            "AdditionalVersionWeights": {spec.routing.additional_version: spec.routing.weight}
        }
    return out
