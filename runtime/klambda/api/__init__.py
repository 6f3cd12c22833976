"""Resource models shared by the router, the worker, the CLI and the operator.

One module per kind (`function`, `version`, `alias`), Lambda's limits in `limits`, and the
loading of YAML manifests in `manifest`. This package imports nothing else of ours, so
both planes can depend on it without depending on each other.

The models named below are imported on first use, not with the package: importing
`klambda.api.limits` (plain constants, all a worker needs) costs no pydantic model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from klambda.api.alias import Alias, AliasSpec, RoutingConfig
    from klambda.api.function import Code, Destination, Function, FunctionSpec
    from klambda.api.meta import Condition, ObjectMeta
    from klambda.api.version import Version, VersionSpec

# name: its module
_MODELS = {
    "Alias": "klambda.api.alias",
    "AliasSpec": "klambda.api.alias",
    "RoutingConfig": "klambda.api.alias",
    "Code": "klambda.api.function",
    "Destination": "klambda.api.function",
    "Function": "klambda.api.function",
    "FunctionSpec": "klambda.api.function",
    "Condition": "klambda.api.meta",
    "ObjectMeta": "klambda.api.meta",
    "Version": "klambda.api.version",
    "VersionSpec": "klambda.api.version",
}

__all__ = [
    "Alias",
    "AliasSpec",
    "Code",
    "Condition",
    "Destination",
    "Function",
    "FunctionSpec",
    "ObjectMeta",
    "RoutingConfig",
    "Version",
    "VersionSpec",
]

if not TYPE_CHECKING:  # the type checker sees the imports above, and no other name

    def __getattr__(name: str) -> Any:
        module = _MODELS.get(name)
        if module is None:  # a submodule (`from klambda.api import limits`) imports as usual
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
