"""Function verbs: create, update-code, update-config, delete, tags, and the asynchronous
invocation configuration; Lambda's CreateFunction, UpdateFunctionCode, ... sent to a router
(`--endpoint`) or written as the cluster's Function objects (`--kubeconfig`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from klambda import codestore
from klambda.cli.function_control import ClusterFunctions, FunctionControl, RouterFunctions
from klambda.cli.options import EndpointOpt, KubeconfigOpt, NamespaceOpt, client
from klambda.cli.output import fail, reported

function_app = typer.Typer(
    help="Create, change and delete functions (Lambda's API).", no_args_is_help=True
)
event_invoke_app = typer.Typer(
    help="Retries, event age and destinations of asynchronous invocation.", no_args_is_help=True
)
function_app.add_typer(event_invoke_app, name="event-invoke-config")

ZipOpt = Annotated[Path | None, typer.Option("--zip-file", help="A .zip of the code")]
CodeOpt = Annotated[Path | None, typer.Option("--code", help="A folder of code (zipped for you)")]
ImageOpt = Annotated[str | None, typer.Option("--image", help="An image (cluster mode)")]
PublishOpt = Annotated[bool, typer.Option("--publish", help="Publish a version as well")]


def functions(ep: str | None, kubeconfig: str | None, namespace: str | None) -> FunctionControl:
    if kubeconfig:
        return ClusterFunctions(kubeconfig, namespace)
    return RouterFunctions(client(ep))


def code_body(zip_file: Path | None, code: Path | None, image: str | None) -> dict[str, Any]:
    given = [x for x in (zip_file, code, image) if x is not None]
    if len(given) != 1:
        fail("give exactly one of --zip-file, --code, --image", 2)
    if image is not None:
        return {"ImageUri": image}
    if zip_file is not None:
        if not zip_file.is_file():
            fail(f"--zip-file: no such file {zip_file}", 2)
        return {"ZipFile": zip_file.read_bytes()}
    assert code is not None
    if not code.is_dir():
        fail(f"--code: {code} is not a folder", 2)
    return {"ZipFile": codestore.zip_files(codestore.collect(path=code))}


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key:
            fail(f"{flag} {v!r}: expected KEY=VALUE", 2)
        out[key] = value
    return out


def show(cfg: dict[str, Any]) -> None:
    typer.echo(
        f"{cfg['FunctionName']}: {cfg['Version']}  {cfg['Runtime']} {cfg['Handler']}  "
        f"{cfg['MemorySize']} MB {cfg['Timeout']} s  code {str(cfg['CodeSha256'])[:12]}  "
        f"{cfg['State']}"
    )


def config_body(
    handler: str | None,
    runtime: str | None,
    memory: int | None,
    timeout: int | None,
    description: str | None,
    env: list[str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in (
        ("Handler", handler),
        ("Runtime", runtime),
        ("MemorySize", memory),
        ("Timeout", timeout),
        ("Description", description),
    ):
        if value is not None:
            body[key] = value
    if env is not None:
        body["Environment"] = {"Variables": pairs(env, "--env")}
    return body


HandlerOpt = Annotated[str | None, typer.Option("--handler", help="module.function")]
RuntimeOpt = Annotated[
    str | None, typer.Option("--runtime", help="python3.9 ... python3.13, provided.al2023")
]
MemoryOpt = Annotated[int | None, typer.Option("--memory", help="MB, 128-10240")]
TimeoutOpt = Annotated[int | None, typer.Option("--timeout", help="seconds, 1-900")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", "-d")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE (repeat)")]


@function_app.command("create")
def create(
    name: Annotated[str, typer.Argument()],
    handler: HandlerOpt = None,
    runtime: RuntimeOpt = None,
    memory: MemoryOpt = None,
    timeout: TimeoutOpt = None,
    description: DescriptionOpt = None,
    env: EnvOpt = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE (repeat)")] = None,
    zip_file: ZipOpt = None,
    code: CodeOpt = None,
    image: ImageOpt = None,
    publish: PublishOpt = False,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Create a function from a .zip, a folder or an image (Lambda's CreateFunction)."""
    body = {
        "FunctionName": name,
        "Role": "arn:aws:iam::000000000000:role/klambda",
        **config_body(handler, runtime, memory, timeout, description, env),
        "Code": code_body(zip_file, code, image),
        "PackageType": "Image" if image else "Zip",
        "Publish": publish,
    }
    if tag:
        body["Tags"] = pairs(tag, "--tag")
    with reported():
        show(functions(ep, kubeconfig, namespace).create_function(body))


@function_app.command("update-code")
def update_code(
    name: Annotated[str, typer.Argument()],
    zip_file: ZipOpt = None,
    code: CodeOpt = None,
    image: ImageOpt = None,
    publish: PublishOpt = False,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Replace the code of $LATEST (Lambda's UpdateFunctionCode)."""
    body = {**code_body(zip_file, code, image), "Publish": publish}
    with reported():
        show(functions(ep, kubeconfig, namespace).update_function_code(name, body))


@function_app.command("update-config")
def update_config(
    name: Annotated[str, typer.Argument()],
    handler: HandlerOpt = None,
    runtime: RuntimeOpt = None,
    memory: MemoryOpt = None,
    timeout: TimeoutOpt = None,
    description: DescriptionOpt = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE (repeat); replaces them all")
    ] = None,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Change the configuration of $LATEST (Lambda's UpdateFunctionConfiguration)."""
    body = config_body(handler, runtime, memory, timeout, description, env)
    if not body:
        fail("nothing to change: give --memory, --timeout, --handler, --env, ...", 2)
    with reported():
        show(functions(ep, kubeconfig, namespace).update_function_configuration(name, body))


@function_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete a function with its versions and aliases (Lambda's DeleteFunction)."""
    with reported():
        functions(ep, kubeconfig, namespace).delete_function(name)
    typer.echo(f"{name} deleted")


@function_app.command("tag")
def tag(
    name: Annotated[str, typer.Argument()],
    tags: Annotated[list[str], typer.Argument(help="KEY=VALUE ...")],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Add or change tags of a function."""
    with reported():
        functions(ep, kubeconfig, namespace).tag(name, pairs(tags, "tag"))


@function_app.command("untag")
def untag(
    name: Annotated[str, typer.Argument()],
    keys: Annotated[list[str], typer.Argument(help="KEY ...")],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Remove tags of a function."""
    with reported():
        functions(ep, kubeconfig, namespace).untag(name, keys)


@function_app.command("tags")
def list_tags(
    name: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A function's tags, KEY=VALUE a line."""
    with reported():
        got = functions(ep, kubeconfig, namespace).function(name)
    if got is None:
        fail(f"Function not found: {name}")
    for key, value in sorted((got.get("Tags") or {}).items()):
        typer.echo(f"{key}={value}")


@event_invoke_app.command("put")
def event_invoke_put(
    name: Annotated[str, typer.Argument()],
    retries: Annotated[int | None, typer.Option("--retries", help="0-2")] = None,
    max_age: Annotated[int | None, typer.Option("--max-age", help="seconds, 60-21600")] = None,
    on_success: Annotated[
        str | None, typer.Option("--on-success", help="a function or queue ARN")
    ] = None,
    on_failure: Annotated[
        str | None, typer.Option("--on-failure", help="a function or queue ARN")
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Change only what is given (else replace all)")
    ] = False,
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Set retries, maximum event age and destinations (Put/UpdateFunctionEventInvokeConfig)."""
    body: dict[str, Any] = {}
    if retries is not None:
        body["MaximumRetryAttempts"] = retries
    if max_age is not None:
        body["MaximumEventAgeInSeconds"] = max_age
    dest = {
        key: {"Destination": arn}
        for key, arn in (("OnSuccess", on_success), ("OnFailure", on_failure))
        if arn
    }
    if dest:
        body["DestinationConfig"] = dest
    with reported():
        got = functions(ep, kubeconfig, namespace).put_event_invoke_config(
            name, body, replace=not update
        )
    typer.echo(json.dumps(got, indent=2, default=str))


@event_invoke_app.command("get")
def event_invoke_get(
    name: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """The asynchronous invocation configuration of a function."""
    with reported():
        got = functions(ep, kubeconfig, namespace).event_invoke_config(name)
    if got is None:
        fail(f"{name} has no event invoke configuration (Lambda's defaults apply)")
    typer.echo(json.dumps(got, indent=2, default=str))


@event_invoke_app.command("delete")
def event_invoke_delete(
    name: Annotated[str, typer.Argument()],
    ep: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Back to Lambda's defaults: 2 retries, 6 hours, no destinations."""
    with reported():
        functions(ep, kubeconfig, namespace).delete_event_invoke_config(name)
    typer.echo(f"{name}: event invoke configuration deleted")
