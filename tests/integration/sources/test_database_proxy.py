"""A DatabaseProxy (PgBouncer, Debian's) in front of a real PostgreSQL server in local
mode: 500 concurrent invocations of a function that connects with libpq's variables the
proxy gave it, and the server never sees more connections than the proxy's pool."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import aiohttp
import psycopg
from klambda.testing import RouterRunner, free_port

from tests.integration.sources.pgserver import postgres_server

INVOCATIONS = 500
POOL = 5

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: query}}
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 60
  code:
    inline:
      app.py: |
        # PostgreSQL's wire protocol in a few lines (startup, one query, terminate), so
        # that 500 environments on two cores spend their time waiting on the pool, not
        # importing a driver; PGHOST, PGPORT, PGDATABASE are the proxy's, set by klambda
        import os, socket, struct

        def recv(s, n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            return buf

        def until_ready(s):
            while True:
                tag = recv(s, 1)
                body = recv(s, struct.unpack("!i", recv(s, 4))[0] - 4)
                if tag == b"E":
                    raise RuntimeError(body.decode(errors="replace"))
                if tag == b"Z":
                    return

        def handler(event, context):
            s = socket.create_connection((os.environ["PGHOST"], int(os.environ["PGPORT"])), 50)
            params = b"user\\0app\\0database\\0" + os.environ["PGDATABASE"].encode() + b"\\0\\0"
            s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            until_ready(s)
            sql = b"SELECT pg_sleep(0.05)\\0"
            s.sendall(b"Q" + struct.pack("!i", 4 + len(sql)) + sql)
            until_ready(s)
            s.sendall(b"X" + struct.pack("!i", 4))
            s.close()
            return {{"port": os.environ["PGPORT"], "db": os.environ["PGDATABASE"]}}
---
apiVersion: klambda.io/v1alpha1
kind: DatabaseProxy
metadata: {{name: app-db}}
spec:
  target: {{host: 127.0.0.1, port: {pg_port}, database: postgres, user: postgres}}
  poolSize: {pool}
  port: {proxy_port}
  functions: [query]
"""


async def invoke_all(url: str) -> list[dict[str, str]]:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=INVOCATIONS),
        timeout=aiohttp.ClientTimeout(total=300),
    ) as session:

        async def one(i: int) -> dict[str, str]:
            # started over 2 s rather than in one instant: a burst of 500 cold starts at
            # once overflows the zygote's control socket (EAGAIN), a worker matter; the
            # invocations still overlap, all waiting on the pool of 5 at the proxy
            await asyncio.sleep(i * 0.004)
            while True:
                async with session.post(
                    url + "/2015-03-31/functions/query/invocations", data=b"{}"
                ) as resp:
                    body = await resp.read()
                    if resp.status == 429:  # the scale-up rate: retried, as SDKs do
                        await asyncio.sleep(0.5)
                        continue
                    assert resp.status == 200, body
                    assert "X-Amz-Function-Error" not in resp.headers, body
                    return dict(json.loads(body))

        return await asyncio.gather(*(one(i) for i in range(INVOCATIONS)))


def test_500_concurrent_invocations_share_the_pool(tmp_path: Path) -> None:
    with postgres_server() as pg:
        proxy_port = free_port()
        fns = tmp_path / "fns"
        fns.mkdir()
        (fns / "functions.yaml").write_text(
            FUNCTIONS.format(pg_port=pg.port, pool=POOL, proxy_port=proxy_port)
        )
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            with psycopg.connect(pg.dsn, autocommit=True) as conn:
                while not done.is_set():
                    (n,) = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND pid <> pg_backend_pid()"
                    ).fetchone() or (0,)
                    peak = max(peak, int(n))
                    done.wait(0.01)

        env = {"KLAMBDA_SCALE_UP_PER_MINUTE": "5000"}
        with RouterRunner.up(fns, "-q", workdir=tmp_path, env=env) as r:
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                answers = asyncio.run(invoke_all(r.url))
            finally:
                done.set()
                sampler.join()
        assert len(answers) == INVOCATIONS
        assert {(a["port"], a["db"]) for a in answers} == {(str(proxy_port), "postgres")}
        assert 1 <= peak <= POOL, f"the server saw {peak} connections, the pool is {POOL}"
