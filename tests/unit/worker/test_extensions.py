"""The pure half of Lambda's Extensions API: which calls each state allows, what a register
call may subscribe to, the events' bodies, and when init, a call and a shutdown are over."""

from __future__ import annotations

from pathlib import Path

import pytest
from klambda import logformat
from klambda.worker.extensionprocs import extension_paths
from klambda.worker.extensions import (
    INVOKE,
    SHUTDOWN,
    ApiError,
    Extension,
    Roster,
    State,
    crashed,
    exit_detail,
    invoke_event,
    parse_events,
    reported,
    shutdown_event,
    transition,
)

S = State


@pytest.mark.parametrize(
    ("state", "call", "to"),
    [
        (S.STARTED, "register", S.REGISTERED),
        (S.STARTED, "next", None),
        (S.STARTED, "init_error", None),
        (S.STARTED, "exit_error", None),
        (S.REGISTERED, "register", None),
        (S.REGISTERED, "next", S.READY),
        (S.REGISTERED, "init_error", S.INIT_ERROR),
        (S.REGISTERED, "exit_error", S.EXIT_ERROR),
        (S.READY, "register", None),
        (S.READY, "next", S.READY),
        (S.READY, "init_error", None),
        (S.READY, "exit_error", S.EXIT_ERROR),
        (S.INIT_ERROR, "next", None),
        (S.INIT_ERROR, "exit_error", None),
        (S.EXIT_ERROR, "next", None),
        (S.EXITED, "register", None),
        (S.EXITED, "next", None),
    ],
)
def test_calls_each_state_allows(state: State, call: str, to: State | None) -> None:
    ext = Extension("x", "id", state=state)
    if to is None:
        with pytest.raises(ApiError) as refused:
            transition(ext, call)
        assert (refused.value.status, refused.value.error_type) == (
            403,
            "Extension.InvalidExtensionState",
        )
        assert ext.state == state
    else:
        transition(ext, call)
        assert ext.state == to


@pytest.mark.parametrize(
    ("body", "internal", "events", "error_type"),
    [
        (b'{"events": ["INVOKE", "SHUTDOWN"]}', False, ("INVOKE", "SHUTDOWN"), None),
        (b'{"events": ["SHUTDOWN"]}', False, ("SHUTDOWN",), None),
        (b'{"events": []}', False, (), None),
        (b"", False, (), None),
        (b'{"events": ["INVOKE", "INVOKE"]}', False, ("INVOKE",), None),
        (b'{"events": ["INVOKE"]}', True, ("INVOKE",), None),
        (b'{"events": ["SHUTDOWN"]}', True, None, "Extension.InvalidEventType"),
        (b'{"events": ["START"]}', False, None, "Extension.InvalidEventType"),
        (b'{"events": "INVOKE"}', False, None, "InvalidRequestFormat"),
        (b"{nope", False, None, "InvalidRequestFormat"),
        (b'{"events": [], "configurationKeys": ["k"]}', False, None, "InvalidRequestFormat"),
    ],
)
def test_register_bodies(
    body: bytes, internal: bool, events: tuple[str, ...] | None, error_type: str | None
) -> None:
    if error_type is None:
        assert parse_events(body, internal) == events
    else:
        with pytest.raises(ApiError) as refused:
            parse_events(body, internal)
        assert (refused.value.status, refused.value.error_type) == (403, error_type)


def test_event_bodies_are_lambdas() -> None:
    assert invoke_event("r1", 1700000000000, "arn:f", "Root=1-abc") == {
        "eventType": "INVOKE",
        "deadlineMs": 1700000000000,
        "requestId": "r1",
        "invokedFunctionArn": "arn:f",
        "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-abc"},
    }
    assert shutdown_event("spindown", 1700000002000) == {
        "eventType": "SHUTDOWN",
        "shutdownReason": "spindown",
        "deadlineMs": 1700000002000,
    }


def _ext(name: str, events: tuple[str, ...], sent: int, asked: int) -> Extension:
    return Extension(
        name, name, state=S.READY, events=events, sent=sent, asked=asked, registered=True
    )


def test_init_a_call_and_a_shutdown_end_when_each_extension_has_asked_again() -> None:
    roster = Roster()
    both = roster.add(_ext("both", (INVOKE, SHUTDOWN), 0, 0))
    quiet = roster.add(_ext("quiet", (), 0, 0))
    assert not roster.all_ready()
    both.asked = quiet.asked = 1
    assert roster.all_ready()
    assert roster.settled()
    assert roster.subscribed(INVOKE) == [both]
    both.sent += 1  # an INVOKE: the call is over for the extensions when it asks again
    assert not roster.settled()
    both.asked += 1
    assert roster.settled()
    assert roster.subscribed(SHUTDOWN) == [both]
    both.state = S.EXITED  # gone: sent nothing more
    assert roster.subscribed(SHUTDOWN) == []


def test_unregistered_extensions_hold_the_runtime_back() -> None:
    roster = Roster()
    roster.add(Extension("a", "a"))
    assert not roster.all_registered()
    transition(roster.by_id["a"], "register")
    assert roster.all_registered()
    assert roster.registered() == [roster.by_id["a"]]


@pytest.mark.parametrize(
    ("code", "detail"),
    [(0, "exit status 0"), (3, "exit status 3"), (-9, "signal: killed"), (-7, "signal: 7")],
)
def test_exit_details(code: int, detail: str) -> None:
    assert exit_detail(code) == detail


def test_failures_name_the_extension_and_lambdas_type() -> None:
    ext = Extension("logger", "id")
    assert crashed(ext, 1).error_type == "Extension.Crash"
    assert crashed(ext, 1).message == "Extension logger exited: exit status 1"
    init = reported(ext, "Extension.ConfigMissing", "init_error")
    assert (init.error_type, init.extension) == ("Extension.InitError", "logger")
    assert "Extension.ConfigMissing" in init.message
    assert reported(ext, "Extension.Boom", "exit_error").error_type == "Extension.ExitError"


def test_extension_lines() -> None:
    assert (
        logformat.extension("logger", "Ready", ["INVOKE", "SHUTDOWN"], None)
        == "EXTENSION\tName: logger\tState: Ready\tEvents: [INVOKE,SHUTDOWN]"
    )
    assert logformat.extension("x", "InitError", [], "Extension.Foo").endswith(
        "Events: []\tError Type: Extension.Foo"
    )
    record = logformat.JsonPlatform(None).extension("x", "Ready", ["INVOKE"])
    assert record is not None
    assert '"type":"platform.extension"' in record
    assert '"record":{"name":"x","state":"Ready","events":["INVOKE"]}' in record


def test_extensions_are_the_files_of_opt_extensions_by_name(tmp_path: Path) -> None:
    assert extension_paths(str(tmp_path)) == []
    folder = tmp_path / "extensions"
    (folder / "a-folder").mkdir(parents=True)
    for name in ("zeta", "alpha", "mid"):
        (folder / name).write_text("#!/bin/sh\n")
    assert [p.name for p in extension_paths(str(tmp_path))] == ["alpha", "mid", "zeta"]
