"""Resource models shared by the router, the worker, the CLI and the operator.

One module per kind (`function`, `version`, `alias`), Lambda's limits in `limits`, and the
loading of YAML manifests in `manifest`. This package imports nothing else of ours, so
both planes can depend on it without depending on each other.
"""

from klambda.api.alias import Alias, AliasSpec, RoutingConfig
from klambda.api.function import Code, Destination, Function, FunctionSpec
from klambda.api.meta import Condition, ObjectMeta
from klambda.api.version import Version, VersionSpec

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
