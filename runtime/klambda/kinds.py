"""The klambda.io kinds as lightkube resources, for the processes that read and write them
on the API server: the router in cluster mode, the command line with `--kubeconfig`, the
operator. Their group, version and labels are the contract's (klambda.contract), which a
worker pod imports without the Kubernetes client."""

from __future__ import annotations

from lightkube.generic_resource import create_namespaced_resource

from klambda.contract import GROUP, VERSION

FunctionResource = create_namespaced_resource(GROUP, VERSION, "Function", "functions")
VersionResource = create_namespaced_resource(GROUP, VERSION, "Version", "versions")
AliasResource = create_namespaced_resource(GROUP, VERSION, "Alias", "aliases")
LayerResource = create_namespaced_resource(GROUP, VERSION, "Layer", "layers")
QueueResource = create_namespaced_resource(GROUP, VERSION, "Queue", "queues")
StreamResource = create_namespaced_resource(GROUP, VERSION, "Stream", "streams")
EventSourceMappingResource = create_namespaced_resource(
    GROUP, VERSION, "EventSourceMapping", "eventsourcemappings"
)
DatabaseProxyResource = create_namespaced_resource(
    GROUP, VERSION, "DatabaseProxy", "databaseproxies"
)
