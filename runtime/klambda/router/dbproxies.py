"""Local mode's database proxies: one PgBouncer process per DatabaseProxy manifest, on the
loopback port the manifest names, started with the router and stopped with it; the
functions it lists get libpq's PGHOST/PGPORT/PGDATABASE pointing at it (their own values,
when they set them, win).

The target's password is PGPASSWORD of the router's own environment, written into the
configuration (PgBouncer reads no PGPASSWORD itself), which then only PgBouncer's user
may read; a manifest's `target.passwordSecret` names a cluster's Secret and is not used.

PgBouncer refuses to run as root: a router running as root starts it with `-u nobody`, and
it is given its configuration on the command line and logs to the router's state folder
through its stderr, so it never opens a file after dropping privileges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
from collections.abc import Mapping
from pathlib import Path

from klambda.api.databaseproxy import DatabaseProxy
from klambda.dbproxy import environments, pgbouncer_ini
from klambda.router.registry import Registry

log = logging.getLogger("klambda.router.dbproxies")


def inject(registry: Registry, proxies: Mapping[str, DatabaseProxy]) -> None:
    """Give each listed function (every version of it) the proxy's address."""
    specs = {name: proxy.spec for name, proxy in proxies.items()}
    for name, env in environments(specs, lambda _proxy: "127.0.0.1").items():
        entry = registry.functions.get(name)
        if entry is None:
            continue
        for target in {id(t): t for t in (entry.latest, *entry.targets.values())}.values():
            for key, value in env.items():
                target.config.environment.setdefault(key, value)


class DatabaseProxies:
    def __init__(self, proxies: Mapping[str, DatabaseProxy], state_dir: Path) -> None:
        self.proxies = dict(proxies)
        self.dir = state_dir / "dbproxies"
        self._procs: dict[str, asyncio.subprocess.Process] = {}

    def _command(self, name: str, proxy: DatabaseProxy) -> list[str]:
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(exe):
            raise RuntimeError("DatabaseProxy needs PgBouncer: install the pgbouncer package")
        self.dir.mkdir(parents=True, exist_ok=True)
        ini = self.dir / f"{name}.ini"
        password = os.environ.get("PGPASSWORD")
        try:
            text = pgbouncer_ini(proxy.spec, password=password)
        except ValueError as err:
            raise RuntimeError(f"DatabaseProxy {name}: PGPASSWORD: {err}") from None
        ini.touch(mode=0o600)
        ini.chmod(0o600 if password else 0o644)  # the password: PgBouncer's user alone
        ini.write_text(text)
        root = os.geteuid() == 0
        if root:
            nobody = pwd.getpwnam("nobody")
            os.chown(ini, nobody.pw_uid, nobody.pw_gid)
        return [exe, *(["-u", "nobody"] if root else []), str(ini)]

    async def start(self) -> None:
        for name, proxy in sorted(self.proxies.items()):
            args = await asyncio.to_thread(self._command, name, proxy)
            out = await asyncio.to_thread(open, self.dir / f"{name}.log", "ab")
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL
                )
            finally:
                out.close()
            self._procs[name] = proc
            await self._listening(name, proxy.spec.port, proc)

    async def _listening(self, name: str, port: int, proc: asyncio.subprocess.Process) -> None:
        for _ in range(100):
            if proc.returncode is not None:
                raise RuntimeError(
                    f"DatabaseProxy {name}: pgbouncer exited ({proc.returncode}); see "
                    f"{self.dir / (name + '.log')}"
                )
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"DatabaseProxy {name}: pgbouncer does not listen on {port}")

    async def stop(self) -> None:
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.terminate()
        for proc in self._procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self._procs.clear()
