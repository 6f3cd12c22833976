"""Lambda's JSON shapes of the router's targets and aliases (built by klambda.shapes, which
the CLI also uses for the API server's objects)."""

from __future__ import annotations

from typing import Any

from klambda import shapes
from klambda.api import Alias
from klambda.router.registry import FunctionEntry, Target


def configuration(target: Target, description: str = "") -> dict[str, Any]:
    """Lambda's FunctionConfiguration of one version."""
    return shapes.function_configuration(
        target.config, target.state, target.state_reason, description
    )


def alias_configuration(entry: FunctionEntry, alias: Alias) -> dict[str, Any]:
    """Lambda's AliasConfiguration."""
    return shapes.alias_configuration(entry.latest.config, alias.alias_name, alias.spec)
