"""The operator tests' fixtures that the cluster tests use too: the CRDs once, and the
garbage collector once it watches klambda's kinds."""

from tests.integration.operator.conftest import garbage_collector, klambda_crds

__all__ = ["garbage_collector", "klambda_crds"]
