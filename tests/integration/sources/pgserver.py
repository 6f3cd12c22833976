"""A real PostgreSQL server (Debian's `postgresql`, installed by scripts/setup-system.sh)
on a free loopback port, with `wal_level = logical`, for the tests.

PostgreSQL refuses to run as root: when the tests run as root the cluster belongs to the
`postgres` system user the package creates, in a folder of its own. A missing install
fails loudly, never skips.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from klambda.testing import eventually, free_port


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} is not installed: run scripts/setup-system.sh (postgresql)")
    return found[-1]


@dataclass
class PostgresServer:
    port: int
    data: Path
    log: Path
    user: str | None  # the system user it runs as, when not ourselves

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*(["runuser", "-u", self.user, "--"] if self.user else []), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)

    def pg_ctl(self, *args: str) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", *args)

    def start(self) -> None:
        self.pg_ctl("start", "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1")

    def restart(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-m", mode)
        self.start()

    def sql(self, statement: str) -> str:
        out = self._run(
            pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", statement,
        )  # fmt: skip
        return out.stdout.strip()


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="klambda-pg-"))
    if user:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    server = PostgresServer(free_port(), base / "data", base / "postgres.log", user)
    try:
        server._run(pg_bin("initdb"), "-D", str(server.data), "-U", "postgres", "-A", "trust")
        with open(server.data / "postgresql.conf", "a") as conf:
            conf.write("wal_level = logical\nmax_replication_slots = 10\nmax_wal_senders = 10\n")
        server.start()
        eventually(lambda: server.sql("SELECT 1") == "1", "PostgreSQL to answer")
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            server.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)
