"""The stored form of an event and a dead letter, and the async payload limit."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from klambda.api import limits
from klambda.errors import RequestTooLarge
from klambda.queue import AsyncEvent, DeadLetter, check_payload
from klambda.queue.backend import decode_dead_letter, encode_dead_letter, redriven
from klambda.queue.event import Response, decode, encode

FULL = replace(
    AsyncEvent.new("hello", b'{"k": "\n v"}\n\x00\xff', qualifier="prod"),
    attempts=2,
    throttles=5,
    not_before=123.5,
    last_error_type="ValueError",
    last_error="line 1\nline 2",
    last_response=Response(200, "7", "Unhandled", b'{"errorMessage": "\xe2\x9c\x93"}\xff'),
    redrives=1,
)


@pytest.mark.parametrize("e", [AsyncEvent.new("hello", b""), AsyncEvent.new("hi", b"{}"), FULL])
def test_events_round_trip_byte_for_byte(e: AsyncEvent) -> None:
    assert decode(encode(e)) == e


def test_the_payload_is_stored_verbatim_after_one_header_line() -> None:
    data = encode(FULL)
    head, _, payload = data.partition(b"\n")
    assert payload == FULL.payload
    assert b"requestId" in head


def test_dead_letters_round_trip() -> None:
    dead = DeadLetter(FULL, "RetriesExhausted", time.time(), "arn:x")
    back = decode_dead_letter(encode_dead_letter(dead))
    assert back == dead
    assert back.summary()["errorMessage"] == "line 1\nline 2"


def test_a_redriven_event_keeps_its_request_id_and_starts_afresh() -> None:
    again = redriven(FULL, now=5000.0)
    assert (again.request_id, again.function, again.payload, again.qualifier) == (
        FULL.request_id,
        FULL.function,
        FULL.payload,
        FULL.qualifier,
    )
    assert (again.attempts, again.throttles, again.not_before, again.received_at) == (0, 0, 0, 5000)
    assert again.last_response is None
    assert again.redrives == 2


def test_request_ids_are_new_unless_given() -> None:
    assert AsyncEvent.new("f", b"").request_id != AsyncEvent.new("f", b"").request_id
    assert AsyncEvent.new("f", b"", request_id="mine").request_id == "mine"


def test_payload_limit_is_256_kb_and_the_error_names_it() -> None:
    check_payload(b"x" * limits.ASYNC_PAYLOAD_MAX_BYTES)
    with pytest.raises(RequestTooLarge, match="smaller than 262144 bytes") as err:
        check_payload(b"x" * (limits.ASYNC_PAYLOAD_MAX_BYTES + 1))
    assert err.value.http_status == 413


@pytest.mark.parametrize("data", [b"no header", b"[1]\n", b"\n"])
def test_garbage_is_not_an_event(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an encoded klambda event"):
        decode(data)
