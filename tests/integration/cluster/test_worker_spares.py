"""A worker pod keeps a spare environment (forked, waiting for a spec) only while it has
room for another environment: one that runs one at a time has none beside it once its
environment started, so a burst of cold starts on a node does not also pay for forking
and rehearsing spares nobody will take. Real `klambda worker` processes, their zygotes'
real children."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

from klambda.contract import worker_environment
from klambda.router.laneclient import Lane
from klambda.testing import children, cmdline, eventually

from tests.integration.cluster.test_lane import CODE, Worker, _start, answer, config, request


def forked(w: Worker) -> list[int]:
    """The processes the worker's zygote forked: its spares and its environments."""
    zygotes = [p for p in children(w.proc.pid) if "klambda.environment.zygote" in cmdline(p)]
    assert len(zygotes) == 1, zygotes
    return children(zygotes[0])


def dedicated(tmp: Path, max_environments: int) -> Iterator[Worker]:
    code = tmp / "code"
    code.mkdir()
    (code / "app.py").write_text(CODE)
    env = {**os.environ, **worker_environment(config(code))}
    argv = ["--function", "laned", "--version", "$LATEST"]
    yield from _start(tmp, [*argv, "--max-environments", str(max_environments)], env)


async def call(w: Worker, event: bytes = b"{}") -> int:
    """One call over the lane: the pid of the environment that ran it."""
    lane = Lane.to(w.lane)
    try:
        out = answer(await lane.invoke(request(event), 10))
    finally:
        lane.close()
    assert out.status == "ok", (out, w.log.read_text()[-3000:])
    return int(json.loads(out.body)["pid"])


async def test_a_worker_of_one_environment_keeps_no_spare_beside_it(tmp_path: Path) -> None:
    for w in dedicated(tmp_path, 1):
        # ready for its first cold start: one spare
        eventually(lambda w=w: len(forked(w)) == 1, "the zygote's spare", timeout=30)
        spare = forked(w)[0]
        env = await call(w)
        assert env == spare, (env, spare)  # the cold start took the spare...
        await call(w)
        await asyncio.sleep(1.0)  # a spare would be forked within milliseconds
        assert forked(w) == [env], w.log.read_text()[-3000:]  # ...and none was made for it
        # the environment dies: the next call starts another without a spare, and there
        # is still none beside it afterwards
        os.kill(env, signal.SIGKILL)
        eventually(lambda w=w, env=env: env not in forked(w), "the killed environment reaped")
        again = await call(w, b'{"echo": "%s"}' % uuid.uuid4().hex.encode())
        assert again != env
        await asyncio.sleep(1.0)
        assert forked(w) == [again], w.log.read_text()[-3000:]


async def test_a_worker_with_room_for_more_keeps_its_spare(tmp_path: Path) -> None:
    for w in dedicated(tmp_path, 2):
        eventually(lambda w=w: len(forked(w)) == 1, "the zygote's spare", timeout=30)
        env = await call(w)
        # room for one more environment: the next spare is made after the first call
        eventually(lambda w=w: len(forked(w)) == 2, "a new spare beside the environment")
        assert env in forked(w)
