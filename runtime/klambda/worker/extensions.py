"""Lambda's extensions (Extensions API 2020-01-01): what an extension is to the platform,
the calls it may make in each of its states, and the events it is sent. Pure: the HTTP
half is `klambda.worker.extensionsapi`, the processes `klambda.worker.custom`.

An external extension is a program in `/opt/extensions` (a layer's `extensions/`), started
before the runtime with the runtime's environment. It registers under its file's name for
INVOKE and SHUTDOWN events, or neither, then loops on `GET /extension/event/next`: each
call says it is done with the last event and waits for the next one. An internal extension
registers from inside the runtime process during its init, under a name of its choosing,
for INVOKE alone.

The platform counts, for each extension, the events it was sent and the `next` calls it
made: it is idle (done with everything it was sent) when it has asked once more than it
was sent. Init ends when every registered extension is idle; an environment takes its next
invocation only when every extension sent the last one is idle again (Lambda's
post-runtime phase); a shutdown waits for the ones sent SHUTDOWN to be idle or gone.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

API_VERSION = "2020-01-01"
PREFIX = f"/{API_VERSION}/extension"
INVOKE = "INVOKE"
SHUTDOWN = "SHUTDOWN"
EVENTS = (INVOKE, SHUTDOWN)
# Lambda runs at most ten extensions per function
MAX_EXTENSIONS = 10
# Lambda's shutdown phase when extensions are registered: the runtime gets a SIGTERM and
# up to 30 % of it to exit, the extensions sent SHUTDOWN the rest
SHUTDOWN_S = 2.0
RUNTIME_SHUTDOWN_SHARE = 0.3

# shutdown reasons
SPINDOWN = "spindown"
TIMEOUT = "timeout"
FAILURE = "failure"

# the failures that end an environment, as Lambda names them
CRASH = "Extension.Crash"  # an extension exited on its own
INIT_ERROR = "Extension.InitError"  # one posted /extension/init/error
EXIT_ERROR = "Extension.ExitError"  # one posted /extension/exit/error
LAUNCH_ERROR = "Extension.LaunchError"  # one could not be started


class State(enum.StrEnum):
    """An extension's state, by the names Lambda's EXTENSION log line gives them."""

    STARTED = "Started"  # its process runs; it has not registered
    REGISTERED = "Registered"  # it has not asked for an event yet
    READY = "Ready"  # it has asked for events
    INIT_ERROR = "InitError"
    EXIT_ERROR = "ExitError"
    EXITED = "Exited"


FINAL = frozenset({State.INIT_ERROR, State.EXIT_ERROR, State.EXITED})

# what each call may move an extension from, and to
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "register": (frozenset({State.STARTED}), State.REGISTERED),
    "next": (frozenset({State.REGISTERED, State.READY}), State.READY),
    "init_error": (frozenset({State.REGISTERED}), State.INIT_ERROR),
    "exit_error": (frozenset({State.REGISTERED, State.READY}), State.EXIT_ERROR),
}


class ApiError(Exception):
    """A call the Extensions API refuses: its HTTP status and Lambda's errorType."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(eq=False)
class Extension:
    name: str
    id: str
    internal: bool = False  # registered from inside the runtime: no process of its own
    state: State = State.STARTED
    events: tuple[str, ...] = ()
    sent: int = 0  # events queued for it
    asked: int = 0  # its calls to `event/next`
    error_type: str | None = None  # what it posted to init/error or exit/error
    registered: bool = False

    @property
    def idle(self) -> bool:
        """Done with every event it was sent: it asked for the next one since."""
        return self.asked > self.sent

    def wants(self, event: str) -> bool:
        return event in self.events and self.state not in FINAL


def transition(ext: Extension, call: str) -> None:
    """Move `ext` as `call` does; ApiError (403, Lambda's InvalidExtensionState) when its
    state does not allow the call."""
    allowed, to = TRANSITIONS[call]
    if ext.state not in allowed:
        raise ApiError(
            403,
            "Extension.InvalidExtensionState",
            f"State transition from {ext.state} to {to} failed for extension {ext.name}",
        )
    ext.state = to
    if call == "register":
        ext.registered = True


def parse_events(raw: bytes, internal: bool) -> tuple[str, ...]:
    """The events a register call subscribes to: `{"events": [...]}`, INVOKE and SHUTDOWN
    (INVOKE alone for an internal extension); ApiError (403, as Lambda) otherwise."""
    try:
        doc = json.loads(raw or b"{}")
    except ValueError as err:
        raise ApiError(403, "InvalidRequestFormat", str(err)) from None
    events = doc.get("events", []) if isinstance(doc, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ApiError(403, "InvalidRequestFormat", "events must be a list of event names")
    if isinstance(doc, dict) and doc.get("configurationKeys"):
        raise ApiError(
            403,
            "InvalidRequestFormat",
            "configurationKeys are deprecated; use environment variables instead",
        )
    allowed = (INVOKE,) if internal else EVENTS
    for e in events:
        if e not in allowed:
            raise ApiError(403, "Extension.InvalidEventType", f"{e}: invalid event type")
    return tuple(dict.fromkeys(events))


def invoke_event(
    request_id: str, deadline_ms: int, function_arn: str, trace_id: str | None
) -> dict[str, object]:
    return {
        "eventType": INVOKE,
        "deadlineMs": deadline_ms,
        "requestId": request_id,
        "invokedFunctionArn": function_arn,
        "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id or ""},
    }


def shutdown_event(reason: str, deadline_ms: int) -> dict[str, object]:
    return {"eventType": SHUTDOWN, "shutdownReason": reason, "deadlineMs": deadline_ms}


def exit_detail(returncode: int) -> str:
    """An exit status as Lambda words it: `exit status 1`, `signal: killed`."""
    if returncode < 0:
        names = {9: "killed", 11: "segmentation fault", 6: "aborted", 15: "terminated"}
        return f"signal: {names.get(-returncode, str(-returncode))}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class Failure:
    """What ended an environment because of an extension: the error type the call gets."""

    error_type: str
    message: str
    extension: str = ""


def crashed(ext: Extension, returncode: int) -> Failure:
    return Failure(CRASH, f"Extension {ext.name} exited: {exit_detail(returncode)}", ext.name)


def reported(ext: Extension, error_type: str, call: str) -> Failure:
    """An extension's init/error or exit/error: Lambda's type for the call, the
    extension's own type in the message."""
    kind = INIT_ERROR if call == "init_error" else EXIT_ERROR
    return Failure(kind, f"Extension {ext.name} reported {error_type}", ext.name)


@dataclass
class Roster:
    """The extensions of one environment, by id."""

    by_id: dict[str, Extension] = field(default_factory=dict)

    def add(self, ext: Extension) -> Extension:
        self.by_id[ext.id] = ext
        return ext

    def named(self, name: str) -> Extension | None:
        return next((e for e in self.by_id.values() if e.name == name), None)

    def all(self) -> list[Extension]:
        return list(self.by_id.values())

    def registered(self) -> list[Extension]:
        return [e for e in self.by_id.values() if e.registered]

    def unregistered(self) -> list[Extension]:
        """External extensions started that have not registered yet."""
        return [e for e in self.by_id.values() if e.state == State.STARTED]

    def all_registered(self) -> bool:
        return not self.unregistered()

    def all_ready(self) -> bool:
        """Init's end for the extensions: each registered one has asked for an event."""
        return all(e.idle for e in self.registered() if e.state not in FINAL)

    def settled(self) -> bool:
        """Every extension sent an event is done with it (or gone)."""
        return all(e.idle or e.state in FINAL for e in self.by_id.values())

    def subscribed(self, event: str) -> list[Extension]:
        return [e for e in self.by_id.values() if e.wants(event)]
