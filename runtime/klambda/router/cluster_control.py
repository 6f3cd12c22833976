"""What a cluster-mode router writes to the API server on its own account: the provisioned
concurrency its autoscaler decides, as a merge patch of `spec.provisionedConcurrency` on
the Alias or Version (what `klambda provisioned put --kubeconfig` writes), which the
operator then turns into worker pods.

The router decides because it holds the readings (its calls in flight against the
provisioned pods); the operator sees no invocations. The chart lets the router's
ServiceAccount change that one field, and only on objects that carry
`provisionedAutoscaling` (admission-policies.yaml).
"""

from __future__ import annotations

from lightkube import ApiError
from lightkube.types import PatchType

from klambda import kinds
from klambda.errors import ResourceConflict
from klambda.router.cluster import ClusterSource
from klambda.router.control import check_provisioned
from klambda.router.invoke import Invoker


class ClusterProvisioned:
    def __init__(self, invoker: Invoker, source: ClusterSource) -> None:
        self.invoker = invoker
        self.source = source

    async def put(self, function: str, qualifier: str, count: int) -> None:
        entry = self.invoker.registry.get(function)
        check_provisioned(self.invoker, entry, qualifier, count)
        res = kinds.VersionResource if qualifier.isdigit() else kinds.AliasResource
        assert self.source.client is not None
        try:
            await self.source.client.patch(
                res,
                f"{function}.{qualifier}",
                {"spec": {"provisionedConcurrency": count}},
                namespace=self.source.namespace,
                patch_type=PatchType.MERGE,
            )
        except ApiError as err:
            raise ResourceConflict(
                f"{function}:{qualifier}: provisionedConcurrency {count} not written: "
                f"{err.status.message}"
            ) from None
