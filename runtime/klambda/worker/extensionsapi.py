"""Lambda's Extensions API (2020-01-01), served on an environment's Runtime API listener
beside the runtime's routes: `POST /extension/register`, `GET /extension/event/next`,
`POST /extension/init/error` and `/extension/exit/error`, answered as Lambda answers them
(403 with Lambda's errorType for a call the extension's state does not allow).

This is the HTTP half only: the states and events are `klambda.worker.extensions`, and
when init ends, what an invocation waits for and the shutdown belong to
`klambda.worker.custom`, which reads `roster`, waits with `until` and sends with `send`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from klambda.worker.extensions import (
    FINAL,
    MAX_EXTENSIONS,
    PREFIX,
    ApiError,
    Extension,
    Failure,
    Roster,
    State,
    crashed,
    parse_events,
    reported,
    transition,
)

NAME = "Lambda-Extension-Name"
IDENTIFIER = "Lambda-Extension-Identifier"
ERROR_TYPE = "Lambda-Extension-Function-Error-Type"
EVENT_IDENTIFIER = "Lambda-Extension-Event-Identifier"
ACCEPT_FEATURE = "Lambda-Extension-Accept-Feature"


def _problem(err: ApiError) -> web.Response:
    body = {"errorMessage": err.message, "errorType": err.error_type}
    return web.json_response(body, status=err.status)


class ExtensionsApi:
    """The extensions of one environment and the routes they call."""

    def __init__(self, function: str, version: str, handler: str, account: str) -> None:
        self.roster = Roster()
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._metadata = {"functionName": function, "functionVersion": version, "handler": handler}
        self._account = account
        # closed when the runtime first asks for an invocation (Lambda's init order)
        self.registration_open = True
        # exits are not crashes once the environment is shutting down
        self.shutting_down = False
        # the first failure an extension caused: the environment ends with it
        self.failure: asyncio.Future[Failure] = asyncio.get_running_loop().create_future()
        self._changed = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/register", self._register)
        app.router.add_get(f"{PREFIX}/event/next", self._next)
        app.router.add_post(f"{PREFIX}/init/error", self._init_error)
        app.router.add_post(f"{PREFIX}/exit/error", self._exit_error)

    # -- what the environment does ---------------------------------------------------------

    def expect(self, name: str) -> Extension:
        """An external extension about to start; it registers as `name`, its file's."""
        ext = self.roster.add(Extension(name, str(uuid.uuid4())))
        self._queues[ext.id] = asyncio.Queue()
        return ext

    def fail(self, failure: Failure) -> None:
        if not self.failure.done():
            self.failure.set_result(failure)
        self._touch()

    def exited(self, ext: Extension, returncode: int) -> None:
        """`ext`'s process is gone: a crash unless it had reported an error, or the
        environment is shutting down."""
        was = ext.state
        ext.state = State.EXITED
        if was not in FINAL and not self.shutting_down:
            self.fail(crashed(ext, returncode))
        self._touch()

    def send(self, event: str, body: dict[str, Any]) -> list[Extension]:
        """Queue `body` for each extension subscribed to `event`; those extensions."""
        to = self.roster.subscribed(event)
        for ext in to:
            ext.sent += 1
            self._queues[ext.id].put_nowait(body)
        self._touch()
        return to

    async def until(self, check: Callable[[], bool]) -> None:
        """Until `check()` holds, looked at again whenever an extension calls or exits."""
        while not check():
            await self._changed.wait()

    def _touch(self) -> None:
        # wake every waiter of `until`; later ones wait on a fresh event
        self._changed.set()
        self._changed = asyncio.Event()

    # -- the routes ------------------------------------------------------------------------

    def _caller(self, request: web.Request) -> Extension:
        raw = request.headers.get(IDENTIFIER)
        if not raw:
            raise ApiError(403, "Extension.MissingExtensionIdentifier", f"Missing {IDENTIFIER}")
        try:
            uuid.UUID(raw)
        except ValueError:
            raise ApiError(
                403, "Extension.InvalidExtensionIdentifier", f"Invalid {IDENTIFIER}"
            ) from None
        ext = self.roster.by_id.get(raw)
        if ext is None:
            raise ApiError(403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {raw}")
        return ext

    async def _register(self, request: web.Request) -> web.Response:
        name = request.headers.get(NAME, "")
        try:
            if not name:
                raise ApiError(403, "Extension.InvalidExtensionName", "Empty extension name")
            raw = await request.read()
            ext = next((e for e in self.roster.all() if e.name == name and not e.internal), None)
            if ext is not None:
                events = parse_events(raw, internal=False)
                transition(ext, "register")
                ext.events = events
            else:
                ext = self._internal(name, parse_events(raw, internal=True))
        except ApiError as err:
            return _problem(err)
        self._touch()
        body = dict(self._metadata)
        if "accountId" in request.headers.get(ACCEPT_FEATURE, ""):
            body["accountId"] = self._account
        return web.json_response(body, headers={IDENTIFIER: ext.id})

    def _internal(self, name: str, events: tuple[str, ...]) -> Extension:
        """An extension registering from inside the runtime during its init."""
        if not self.registration_open:
            raise ApiError(
                403, "Extension.RegistrationClosed", "Extension registration closed already"
            )
        if self.roster.named(name) is not None:
            raise ApiError(
                403,
                "Extension.InvalidExtensionState",
                "Extension with this name already registered",
            )
        if len(self.roster.all()) >= MAX_EXTENSIONS:
            raise ApiError(
                403, "Extension.TooManyExtensions", f"Extension limit ({MAX_EXTENSIONS}) reached"
            )
        ext = Extension(name, str(uuid.uuid4()), internal=True, events=events)
        transition(ext, "register")
        self._queues[ext.id] = asyncio.Queue()
        return self.roster.add(ext)

    async def _next(self, request: web.Request) -> web.StreamResponse:
        try:
            ext = self._caller(request)
            transition(ext, "next")
        except ApiError as err:
            return _problem(err)
        ext.asked += 1
        self._touch()
        try:
            event = await self._queues[ext.id].get()
        except asyncio.CancelledError:
            # it went away before it had an event: that call said nothing
            ext.asked -= 1
            raise
        return web.json_response(event, headers={EVENT_IDENTIFIER: str(uuid.uuid4())})

    async def _init_error(self, request: web.Request) -> web.Response:
        return await self._reported(request, "init_error")

    async def _exit_error(self, request: web.Request) -> web.Response:
        return await self._reported(request, "exit_error")

    async def _reported(self, request: web.Request, call: str) -> web.Response:
        try:
            ext = self._caller(request)
            error_type = request.headers.get(ERROR_TYPE, "")
            if not error_type:
                raise ApiError(403, "Extension.MissingHeader", f"{ERROR_TYPE} not found")
            transition(ext, call)
        except ApiError as err:
            return _problem(err)
        ext.error_type = error_type
        detail = ""
        try:
            doc = json.loads(await request.read() or b"{}")
            if isinstance(doc, dict) and doc.get("errorMessage"):
                detail = str(doc["errorMessage"])
        except ValueError:
            pass
        failure = reported(ext, error_type, call)
        if detail:
            failure = Failure(failure.error_type, f"{failure.message}: {detail}", ext.name)
        self.fail(failure)
        return web.json_response({"status": "OK"}, status=202)
