"""`free_port` gives a port that can be bound at once; `accepts_tcp` tells a listener."""

from __future__ import annotations

import socket

import pytest
from klambda.testing import accepts_tcp, free_port


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_free_port_can_be_bound(host: str) -> None:
    port = free_port(host)
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind((host, port))


def test_nothing_listens_on_a_free_port_until_something_does() -> None:
    port = free_port()
    assert not accepts_tcp(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert accepts_tcp(port)
