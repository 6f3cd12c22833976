"""`klambda layer publish NAME ./dir|file.zip` and `klambda layer list NAME`: layer
versions in local mode's state folder, which `klambda up` reads when a Function names
them (`spec.layers: [NAME:VERSION]`), or with `--kubeconfig` a cluster's Layer: the .zip
is written to the cluster's store and the Layer points at it; the operator publishes the
version (klambda_operator.layers), which this waits for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from klambda.cli.options import KubeconfigOpt, NamespaceOpt
from klambda.cli.output import fail

layer_app = typer.Typer(help="Layers: libraries and data added to functions, in /opt")

DirOpt = Annotated[Path, typer.Option("--dir", help="the functions folder of `klambda up`")]


def _store(state: Path | None, folder: Path) -> Path:
    return (state or folder / ".klambda").resolve() / "layers"


@layer_app.command("publish")
def publish(
    name: Annotated[str, typer.Argument(help="the layer's name")],
    source: Annotated[Path, typer.Argument(help="a folder or a .zip of the layer's files")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    folder: DirOpt = Path("."),
    state: Annotated[Path | None, typer.Option("--state", help="klambda up's --state")] = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Publish a layer version (the same files again give back their version)."""
    import re

    from klambda import layerstore
    from klambda.api import layer, limits

    if not re.match(limits.LAYER_NAME_PATTERN, name):
        fail(f"NAME {name!r}: must match {limits.LAYER_NAME_PATTERN}", 2)
    if kubeconfig:
        _publish_to_cluster(name, source, description, kubeconfig, namespace)
        return
    try:
        files = layerstore.read_source(source)
        v = layerstore.publish(_store(state, folder), name, files, description)
    except (ValueError, OSError) as err:
        fail(f"{source}: {err}", 2)
    arn = layer.layer_arn("us-east-1", "000000000000", v.name, v.version)
    typer.echo(f"{v.name}:{v.version}\t{arn}\t{v.size} bytes\tsha256 {v.sha256}")


@layer_app.command("list")
def list_versions(
    name: Annotated[str, typer.Argument(help="the layer's name")],
    folder: DirOpt = Path("."),
    state: Annotated[Path | None, typer.Option("--state", help="klambda up's --state")] = None,
) -> None:
    """The versions of a layer."""
    from klambda import layerstore

    for v in layerstore.versions(_store(state, folder), name):
        typer.echo(f"{v.name}:{v.version}\t{v.size} bytes\tsha256 {v.sha256}\t{v.description}")


LAYER_WAIT_S = 60.0


def _publish_to_cluster(
    name: str, source: Path, description: str, kubeconfig: str, namespace: str | None
) -> None:
    import time

    from lightkube import ApiError
    from lightkube.types import PatchType

    from klambda import codestore, contract, kinds, layerstore
    from klambda.api import layer
    from klambda.cli.kube import Cluster
    from klambda.cli.store import StoreError, StoreUpload

    try:
        data = codestore.zip_tree(source) if source.is_dir() else source.read_bytes()
        facts = codestore.zip_facts(data)
        layer.check_size(0, [facts.unzipped])
        if not source.is_dir():
            layerstore.read_source(source)  # its entries, checked as local mode does
    except (ValueError, OSError) as err:
        fail(f"{source}: {err}", 2)
    cluster = Cluster(kubeconfig, namespace)
    try:
        with StoreUpload(kubeconfig) as store:
            key = store.put("layers", data)
    except StoreError as err:
        fail(str(err), 1)
    spec = {"description": description, "content": {"s3Key": key}}
    body = {
        "apiVersion": f"{contract.GROUP}/{contract.VERSION}",
        "kind": "Layer",
        "metadata": {"name": name, "namespace": cluster.namespace},
        "spec": spec,
    }
    res = kinds.LayerResource
    try:
        cluster.client.patch(
            res,
            name,
            body,
            namespace=cluster.namespace,
            patch_type=PatchType.APPLY,
            field_manager="klambda-cli",
            force=True,
        )
    except ApiError as err:
        fail(f"Layer {name}: {err.status.message}", 1)
    deadline = time.monotonic() + LAYER_WAIT_S
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        obj = cluster.client.get(res, name, namespace=cluster.namespace)
        status = dict(obj.to_dict().get("status") or {})
        versions = status.get("versions") or []
        assert isinstance(versions, list)
        for v in versions:
            if v.get("sha256") == facts.code_sha256:
                arn = layer.layer_arn("us-east-1", "000000000000", name, int(v["version"]))
                typer.echo(f"{name}:{v['version']}\t{arn}\t{v['size']} bytes\tsha256 {v['sha256']}")
                return
        time.sleep(0.5)
    fail(
        f"Layer {name}: no version of {key} after {LAYER_WAIT_S:.0f} s "
        f"(state {status.get('state')!r}: {status.get('stateReason') or 'no reason given'})",
        1,
    )
