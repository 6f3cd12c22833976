"""Lambda's Runtime API (version 2018-06-01), served by the worker to one environment.

Custom runtimes (`provided`, `provided.al2023`: an executable `bootstrap`) and the runtime
interface clients AWS ships (awslambdaric and the others in Lambda's base images) run a
loop against it: `GET /runtime/invocation/next` blocks until there is an invocation, whose
event is the body and whose context is in `Lambda-Runtime-*` headers; the runtime then
posts `/runtime/invocation/{id}/response` or `.../error`, or `/runtime/init/error` when it
cannot start. Each environment gets a listener of its own on a loopback port, so a request
needs no token to tell environments apart, and the listener's lifetime is the
environment's; except in an image function's pod, where the one listener outlives the
runtime containers that use it in turn (`renew`, klambda.worker.sidecar).

The same listener serves the Extensions API when the environment has one
(`klambda.worker.extensionsapi`): its extensions find it by the same variable.

This is the HTTP half only: what an invocation is, its timeout, its log lines and its
outcome belong to `klambda.worker.custom`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web

from klambda.worker.extensionsapi import ExtensionsApi

API_VERSION = "2018-06-01"
PREFIX = f"/{API_VERSION}/runtime"
# Lambda's limit on a synchronous response's size
RESPONSE_LIMIT = 6 * 1024 * 1024
# the largest request body read from a runtime: room to see that a response is too large
BODY_LIMIT = RESPONSE_LIMIT + 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """What a runtime posted for an invocation."""

    ok: bool
    body: bytes
    error_type: str | None = None


@dataclass(eq=False)
class Invocation:
    """One event waiting for, or handed to, the runtime."""

    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str | None = None
    client_context: str | None = None
    cognito_identity: str | None = None
    delivered: asyncio.Event = field(default_factory=asyncio.Event)
    answer: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def headers(self) -> dict[str, str]:
        h = {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Content-Type": "application/json",
        }
        optional = {
            "Lambda-Runtime-Trace-Id": self.trace_id,
            "Lambda-Runtime-Client-Context": self.client_context,
            "Lambda-Runtime-Cognito-Identity": self.cognito_identity,
        }
        h.update({k: v for k, v in optional.items() if v})
        return h


def error_body(raw: bytes, header_type: str | None) -> tuple[bytes, str]:
    """Lambda's error JSON and its type from what a runtime posted to `.../error`: its JSON
    as given (errorType from the body, else the `Lambda-Runtime-Function-Error-Type`
    header), or a body that is not an error object wrapped in one."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        error_type = doc.get("errorType") or header_type or "Unhandled"
        doc.setdefault("errorType", error_type)
        doc.setdefault("errorMessage", "")
        return json.dumps(doc).encode(), str(error_type)
    error_type = header_type or "Unhandled"
    text = raw.decode("utf-8", "replace")
    return json.dumps({"errorMessage": text, "errorType": error_type}).encode(), error_type


def _problem(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response({"errorMessage": message, "errorType": error_type}, status=status)


class RuntimeApi:
    """The Runtime API of one environment: `submit` an invocation, await its answer."""

    def __init__(self, extensions: ExtensionsApi | None = None) -> None:
        self.extensions = extensions
        self._pending: asyncio.Queue[Invocation] = asyncio.Queue(maxsize=1)
        self.current: Invocation | None = None
        # set when the runtime first asks for an invocation: its init is over
        self.ready = asyncio.Event()
        self.ready_at = 0.0  # when (time.perf_counter) it was set
        self.waiting = 0  # runtimes in `.next` now
        self.init_error: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        app = web.Application(client_max_size=BODY_LIMIT)
        app.router.add_get(f"{PREFIX}/invocation/next", self._next)
        app.router.add_post(f"{PREFIX}/invocation/{{id}}/response", self._response)
        app.router.add_post(f"{PREFIX}/invocation/{{id}}/error", self._error)
        app.router.add_post(f"{PREFIX}/init/error", self._init_error)
        if extensions is not None:
            extensions.add_routes(app)
        # an environment is closed at once: a runtime still waiting in `.next` is not waited
        # for (aiohttp would give handlers 60 s), and a runtime that went away ends its wait
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True
        )
        self.address = ""

    async def start(self, port: int = 0) -> str:
        """Listen on a loopback port (a free one by default); `host:port`, for
        AWS_LAMBDA_RUNTIME_API."""
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        site = web.SockSite(self._runner, sock)
        await site.start()
        host, port = sock.getsockname()[:2]
        self.address = f"{host}:{port}"
        return self.address

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._runner.cleanup()

    def renew(self) -> None:
        """A new environment's init begins on this listener: it ends at the next runtime's
        first `.next` (already so when a runtime waits there now) or `/init/error`."""
        if not self.waiting:
            self.ready.clear()
        if self.init_error.done():
            self.init_error = asyncio.get_running_loop().create_future()

    def submit(self, inv: Invocation) -> None:
        """Hand `inv` to the runtime's next `GET .../next` (one at a time)."""
        self._pending.put_nowait(inv)

    def forget(self, inv: Invocation) -> None:
        """`inv` is over: a late post about it is refused. (An invocation that times out
        kills its environment, so none is left waiting in the queue.)"""
        if self.current is inv:
            self.current = None

    async def _next(self, request: web.Request) -> web.StreamResponse:
        if not self.ready.is_set():
            self.ready_at = time.perf_counter()
            if self.extensions is not None:  # the runtime's init is over: no more may join
                self.extensions.registration_open = False
        self.ready.set()
        self.waiting += 1
        try:
            inv = await self._pending.get()
        finally:
            self.waiting -= 1
        self.current = inv
        inv.delivered.set()
        return web.Response(body=inv.payload, headers=inv.headers())

    def _of(self, request: web.Request) -> Invocation | web.Response:
        rid = request.match_info["id"]
        inv = self.current
        if inv is None or inv.request_id != rid or inv.answer.done():
            return _problem(400, "InvalidRequestID", f"Invalid request ID: {rid}")
        return inv

    async def _response(self, request: web.Request) -> web.Response:
        inv = self._of(request)
        if isinstance(inv, web.Response):
            return inv
        body = await request.read()
        if len(body) > RESPONSE_LIMIT:
            message = (
                f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload "
                f"size ({RESPONSE_LIMIT} bytes)."
            )
            err = {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}
            inv.answer.set_result(
                Answer(False, json.dumps(err).encode(), "Function.ResponseSizeTooLarge")
            )
            return _problem(413, "RequestEntityTooLarge", message)
        inv.answer.set_result(Answer(True, body))
        return web.json_response({"status": "OK"}, status=202)

    async def _error(self, request: web.Request) -> web.Response:
        inv = self._of(request)
        if isinstance(inv, web.Response):
            return inv
        body, error_type = error_body(
            await request.read(), request.headers.get("Lambda-Runtime-Function-Error-Type")
        )
        inv.answer.set_result(Answer(False, body, error_type))
        return web.json_response({"status": "OK"}, status=202)

    async def _init_error(self, request: web.Request) -> web.Response:
        if self.ready.is_set() or self.init_error.done():
            return _problem(403, "InvalidStateTransition", "init error after init")
        body, error_type = error_body(
            await request.read(), request.headers.get("Lambda-Runtime-Function-Error-Type")
        )
        self.init_error.set_result(Answer(False, body, error_type))
        return web.json_response({"status": "OK"}, status=202)
