"""The invoke lane's framing, and where the router finds a worker's lane. Pure."""

from __future__ import annotations

from typing import Any

import pytest
from klambda import lane
from klambda.router.cluster import endpoints_of, lanes_of
from klambda.router.laneclient import Lane


def test_frames_come_out_whole_however_the_bytes_arrive() -> None:
    sent = [
        lane.encode(lane.INVOKE, 1, b"first"),
        lane.encode(lane.OUTCOME, 2, b""),
        lane.encode(lane.BUSY, 0xFFFFFFFF, b"all 1 environments are busy"),
        lane.encode(lane.INVOKE, 7, bytes(range(256)) * 40),
    ]
    stream = b"".join(sent)
    want = [
        (lane.INVOKE, 1, b"first"),
        (lane.OUTCOME, 2, b""),
        (lane.BUSY, 0xFFFFFFFF, b"all 1 environments are busy"),
        (lane.INVOKE, 7, bytes(range(256)) * 40),
    ]
    for step in (1, 2, 5, 9, 10, 4096, len(stream)):
        reader = lane.FrameReader()
        got = []
        for i in range(0, len(stream), step):
            got += reader.feed(stream[i : i + step])
        assert got == want, step
    assert lane.FrameReader().feed(b"") == []


def test_a_frame_over_the_limit_is_refused_before_its_body_arrives() -> None:
    reader = lane.FrameReader(limit=1024)
    assert reader.feed(lane.encode(lane.INVOKE, 1, b"x" * 1024)) == [(lane.INVOKE, 1, b"x" * 1024)]
    with pytest.raises(lane.FrameError, match="2048 bytes is over the lane's 1024"):
        reader.feed(lane.HEADER.pack(lane.INVOKE, 2, 2048))


def version_slice(ports: list[dict[str, Any]], *addresses: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"klambda.io/function": "hello", "klambda.io/version": "latest"}},
        "ports": ports,
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
    }


def test_a_workers_lane_is_found_in_its_slice_beside_its_grpc_port() -> None:
    both = [{"name": "grpc", "port": 9000}, {"name": "lane", "port": 9002}]
    slices = [
        version_slice(both, "198.18.0.1", "198.18.0.2"),
        # a pod that declares no lane port (an older worker) is in a slice without it
        version_slice([{"name": "grpc", "port": 9000}], "198.18.0.3"),
    ]
    assert endpoints_of(slices) == {
        "hello:$LATEST": ["198.18.0.1:9000", "198.18.0.2:9000", "198.18.0.3:9000"]
    }
    assert lanes_of(slices) == {
        "198.18.0.1:9000": "198.18.0.1:9002",
        "198.18.0.2:9000": "198.18.0.2:9002",
    }


def test_a_lane_address_is_split_into_host_and_port() -> None:
    assert (Lane.to("198.18.0.1:9002").host, Lane.to("198.18.0.1:9002").port) == (
        "198.18.0.1",
        9002,
    )
    assert Lane.to("[fd00::1]:9002").host == "fd00::1"
