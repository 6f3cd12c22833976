"""Running the router: gRPC and HTTP servers, zygotes, and the idle-environment reaper.

`Router` owns every long-lived piece of a router process and starts and stops them in
order; `klambda up` and the tests use it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from klambda.metrics import Metrics
from klambda.router.admission import ConcurrencyPools
from klambda.router.control import LocalControl
from klambda.router.grpc_api import build_server
from klambda.router.http_api import HttpApi
from klambda.router.invoke import Invoker
from klambda.router.local import load_registry
from klambda.settings import RouterSettings
from klambda.worker import runtimes
from klambda.worker.cgroups import Cgroups
from klambda.worker.logs import LogHub
from klambda.worker.zygote import Zygote


class Router:
    def __init__(self, settings: RouterSettings, functions_dir: Path) -> None:
        self.settings = settings
        self.functions_dir = functions_dir
        self.state_dir = (settings.state_dir or functions_dir / ".klambda").resolve()
        self.invoker: Invoker | None = None
        self.grpc_server: grpc.aio.Server | None = None
        self.http_runner: web.AppRunner | None = None
        self.grpc_port = 0
        self.http_port = 0
        self._reaper: asyncio.Task[None] | None = None
        self.cgroups: Cgroups | None = None
        self.control: LocalControl | None = None

    def load(self) -> Invoker:
        """Read and check everything; raises ManifestError before anything starts."""
        s = self.settings
        self.state_dir.mkdir(parents=True, exist_ok=True)
        metrics = Metrics(prices=s.prices)
        logs = LogHub(self.state_dir / "logs", sys.stdout if s.echo_logs else None)
        self.cgroups = Cgroups(enabled=s.cgroups)
        pools = ConcurrencyPools(s.account_concurrency, s.unreserved_min)
        registry = load_registry(self.functions_dir, self.state_dir, s, pools)
        self.invoker = Invoker(registry, s, logs, metrics, {}, self.cgroups, pools)
        return self.invoker

    async def start(self) -> None:
        invoker = self.invoker or self.load()
        s = self.settings
        for runtime in {e.latest.config.runtime for e in invoker.registry.functions.values()}:
            python = runtimes.interpreter(runtime)
            if python is None:
                continue
            zygote = Zygote(python, s.preload)
            await zygote.start()
            invoker.zygotes[runtime] = zygote
        self.grpc_server, self.grpc_port = build_server(invoker, s.grpc_host, s.grpc_port)
        if self.grpc_port == 0:
            raise OSError(f"cannot listen for gRPC on {s.grpc_host}:{s.grpc_port}")
        await self.grpc_server.start()
        self.control = LocalControl(invoker, self.state_dir)
        self.control.start()
        self.http_runner = web.AppRunner(HttpApi(invoker, self.control).app(), access_log=None)
        await self.http_runner.setup()
        site = web.TCPSite(self.http_runner, s.http_host, s.http_port)
        await site.start()
        self.http_port = int(self.http_runner.addresses[0][1])
        self._reaper = asyncio.create_task(self._reap(), name="reaper")
        (self.state_dir / "endpoint.json").write_text(json.dumps(self.endpoint()))

    def endpoint(self) -> dict[str, Any]:
        s = self.settings
        return {
            "http": f"http://{s.http_host}:{self.http_port}",
            "grpc": f"{s.grpc_host}:{self.grpc_port}",
            "pid": os.getpid(),
        }

    async def _reap(self) -> None:
        assert self.invoker is not None
        period = max(1.0, min(30.0, self.settings.keep_warm_seconds / 4))
        while True:
            await asyncio.sleep(period)
            await self.invoker.reclaim_idle()

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=1.0)
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.invoker is not None:
            await self.invoker.close()
            self.invoker.logs.close()
        if self.cgroups is not None:
            self.cgroups.close()
        with contextlib.suppress(OSError):
            (self.state_dir / "endpoint.json").unlink()
