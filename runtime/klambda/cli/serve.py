"""Serving verbs: `up` (local mode), `router` (cluster mode) and `worker` (a function pod)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from klambda.cli.options import NAMESPACE
from klambda.cli.output import fail
from klambda.shutdown import run_until_signal


def up(
    directory: Annotated[Path, typer.Argument(help="Folder (or file) of Function manifests")],
    http_port: Annotated[int, typer.Option(help="Lambda REST API, /metrics, /healthz")] = 8080,
    grpc_port: Annotated[int, typer.Option(help="gRPC klambda.v1.Invoker")] = 50051,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    state: Annotated[Path | None, typer.Option(help="State folder (default DIR/.klambda)")] = None,
    account_concurrency: Annotated[
        int | None, typer.Option(help="Account concurrency limit")
    ] = None,
    keep_warm: Annotated[
        float | None, typer.Option(help="Seconds an idle environment is kept")
    ] = None,
    cgroups: Annotated[
        bool, typer.Option(help="Limit memory/CPU with cgroups where possible")
    ] = True,
    cpu_limits: Annotated[
        bool, typer.Option(help="CPU in proportion to memory (1769 MB = 1 vCPU)")
    ] = True,
    sandbox: Annotated[
        bool | None,
        typer.Option(
            help="As root: a uid per function, a private /tmp, code at /var/task "
            "(default on; KLAMBDA_SANDBOX=0 turns it off too)"
        ),
    ] = None,
    auth: Annotated[
        Path | None,
        typer.Option(
            help="Require SigV4 signed with a key of this AWS credentials file "
            "(off by default, like SAM local)"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not echo function logs")] = False,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Router processes serving the same ports (SO_REUSEPORT), to use every core; "
            "throttling stays exact across them (default 1; KLAMBDA_PROCESSES)",
        ),
    ] = None,
) -> None:
    """Run the functions in DIRECTORY locally: router, workers and environments."""
    from klambda.api.manifest import ManifestError
    from klambda.router.server import Router
    from klambda.settings import RouterSettings

    if not directory.exists():
        fail(f"{directory}: no such file or folder", 2)
    if auth is not None:
        from klambda.router.access import CredentialsFile

        try:
            CredentialsFile(auth)
        except (ValueError, OSError) as err:
            fail(f"--auth: {err}", 2)
    settings = RouterSettings.from_env(
        http_port=http_port,
        grpc_port=grpc_port,
        http_host=host,
        grpc_host=host,
        state_dir=state,
        account_concurrency=account_concurrency,
        keep_warm_seconds=keep_warm,
        cgroups=cgroups,
        cpu_limits=cpu_limits,
        sandbox=sandbox,
        auth=str(auth.resolve()) if auth else None,
        echo_logs=not quiet,
        processes=processes,
    )
    router = Router(settings, directory)
    try:
        invoker = router.load()
    except ManifestError as err:
        typer.echo(f"klambda up: nothing started, {err}", err=True)
        raise typer.Exit(2) from None

    async def start() -> None:
        try:
            await router.start()
        except OSError as err:
            await router.stop()
            fail(f"cannot start the router: {err}", 2)
        ep = router.endpoint()
        typer.echo(f"klambda: {len(invoker.registry.functions)} function(s) from {directory}")
        for name, entry in sorted(invoker.registry.functions.items()):
            t = entry.latest
            note = "" if t.state == "Active" else f"  {t.state}: {t.state_reason}"
            typer.echo(
                f"  {name:<24} {t.config.runtime:<11} {t.config.memory_mb:>5} MB "
                f"{t.config.timeout_s:>4} s{note}"
            )
        cg = router.cgroups
        typer.echo(f"  memory limits: {'cgroups' if cg and cg.available else 'RLIMIT_AS'}")
        typer.echo(f"  isolation: {router.isolation()}")
        if len(ep["processes"]) > 1:
            pids = ", ".join(str(p) for p in ep["processes"])
            typer.echo(f"  router processes: {len(ep['processes'])} (pids {pids})")
        typer.echo(f"klambda: REST API on {ep['http']}, gRPC on {ep['grpc']}  (Ctrl-C stops)")

    async def stop() -> None:
        typer.echo("klambda: stopping")
        await router.stop()

    run_until_signal(start, stop)


def router(
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Learn functions from the API server")
    ] = True,
    namespace: Annotated[
        str, typer.Option(*NAMESPACE, help="Where the Functions, Versions, Aliases are")
    ] = "default",
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Default: in-cluster service account")
    ] = None,
    http_port: Annotated[int, typer.Option()] = 8080,
    grpc_port: Annotated[int, typer.Option()] = 50051,
    host: Annotated[str, typer.Option()] = "0.0.0.0",
    account_concurrency: Annotated[int | None, typer.Option()] = None,
    wait_for_worker: Annotated[
        float,
        typer.Option(
            help="Seconds a request waits for a worker pod of its version, or a pool pod, "
            "when none is ready (scaling from zero)"
        ),
    ] = 60.0,  # klambda.router.remote.WAIT_FOR_WORKER_S, not imported by the command line
    auth: Annotated[
        bool,
        typer.Option(
            help="Callers need a Kubernetes token or a SigV4 key and RBAC's permission "
            "(SubjectAccessReview); --no-auth lets anyone who reaches the router in"
        ),
    ] = True,
) -> None:
    """Cluster mode: route to worker pods of the Functions, Versions, Aliases in NAMESPACE."""
    from klambda.router.server import ClusterOptions, Router
    from klambda.settings import RouterSettings

    if not cluster:
        fail("use `klambda up DIR` for local mode", 2)
    settings = RouterSettings.from_env(
        http_port=http_port,
        grpc_port=grpc_port,
        http_host=host,
        grpc_host=host,
        account_concurrency=account_concurrency,
        auth="kubernetes" if auth else "",
        echo_logs=False,
    )
    r = Router(settings, cluster=ClusterOptions(namespace, kubeconfig, wait_for_worker))
    r.load()

    async def start() -> None:
        await r.start()
        ep = r.endpoint()
        typer.echo(
            f"klambda router: namespace {namespace}; REST API on {ep['http']}, gRPC on {ep['grpc']}"
        )

    run_until_signal(start, r.stop)


def worker(
    function: Annotated[
        str | None, typer.Option("--function", help="The version's own worker: its function")
    ] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    pool: Annotated[
        str | None,
        typer.Option("--pool", help="A pool worker of this runtime: no function until specialised"),
    ] = None,
    code_dir: Annotated[
        Path, typer.Option(help="Pool worker: where the specialised code is written")
    ] = Path("/var/task"),
    host: Annotated[str, typer.Option()] = "0.0.0.0",
    port: Annotated[int | None, typer.Option(envvar="KLAMBDA_WORKER_PORT")] = None,
    lane_port: Annotated[
        int | None,
        typer.Option(
            envvar="KLAMBDA_WORKER_LANE_PORT",
            help="Also serve unary invocations on this port's invoke lane (0: a free port)",
        ),
    ] = None,
    max_environments: Annotated[
        int, typer.Option(help="Environments this worker may run at once")
    ] = 1,
    cgroups: Annotated[bool, typer.Option()] = True,
    runtime_api_port: Annotated[
        int | None,
        typer.Option(
            help="An image function's worker: serve the Runtime API on 127.0.0.1:PORT to the "
            "pod's runtime container"
        ),
    ] = None,
) -> None:
    """A function pod's agent: serve klambda.v1.Worker for one function version, or wait
    in the warm pool of a runtime (--pool) until the router specialises it. With
    KLAMBDA_CODE_OBJECT or KLAMBDA_LAYER_OBJECTS, the version's code and layers are fetched
    from the code store (KLAMBDA_STORE_URL) before it serves."""
    import os

    from klambda.contract import (
        OPT_ROOT,
        OPT_ROOT_ENV,
        PROVISIONED_ENV,
        STORE_URL_ENV,
        WorkerConfigError,
        config_from_environment,
        store_objects_from_environment,
    )
    from klambda.worker.server import serve, serve_pool

    if pool is not None:
        if function is not None or version is not None:
            fail("--pool starts a worker with no function: leave out --function/--version", 2)
        from klambda.worker import runtimes

        if runtimes.missing(pool) is not None:
            fail(f"--pool {pool}: runtime {pool} is not installed here", 2)
        opt_root = Path(os.environ.get(OPT_ROOT_ENV) or OPT_ROOT)
        store_url = os.environ.get(STORE_URL_ENV, "").rstrip("/")
        asyncio.run(
            serve_pool(
                pool,
                host,
                port or 9000,
                max_environments,
                code_dir,
                cgroups,
                opt_root,
                store_url,
                lane_port,
            )
        )
        return
    if function is None or version is None:
        fail("give --function and --version (a version's worker) or --pool RUNTIME", 2)
    try:
        cfg = config_from_environment(os.environ)
        objects = store_objects_from_environment(os.environ)
    except WorkerConfigError as err:
        fail(str(err), 2)
    if (cfg.function, cfg.version) != (function, version):
        fail(
            f"--function/--version {function}:{version} do not match the environment's "
            f"{cfg.function}:{cfg.version}",
            2,
        )
    provisioned = os.environ.get(PROVISIONED_ENV) == "1"

    async def run() -> None:
        config = cfg
        if objects is not None:
            # before the port is served: the pod's probes wait for the code and layers
            from klambda.worker import store

            try:
                config, done = await store.prepare(cfg, objects)
            except store.StoreError as err:
                fail(f"klambda worker: {err.subject} from {objects.url}: {err.reason}")
            typer.echo(f"klambda worker: {done}")
        await serve(
            config,
            host,
            port or 9000,
            max_environments,
            cgroups,
            provisioned,
            runtime_api_port,
            lane_port,
        )

    asyncio.run(run())
