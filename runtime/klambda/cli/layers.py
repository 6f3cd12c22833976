"""`klambda layer publish NAME ./dir|file.zip` and `klambda layer list NAME`: layer
versions in local mode's state folder, which `klambda up` reads when a Function names
them (`spec.layers: [NAME:VERSION]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
) -> None:
    """Publish a layer version (the same files again give back their version)."""
    import re

    from klambda import layerstore
    from klambda.api import layer, limits

    if not re.match(limits.LAYER_NAME_PATTERN, name):
        fail(f"NAME {name!r}: must match {limits.LAYER_NAME_PATTERN}", 2)
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
