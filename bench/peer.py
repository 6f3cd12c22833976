"""5. The peer: the same no-op handler under AWS's Runtime Interface Emulator.

RIE (built from its Go module) runs `python -m awslambdaric app.handler` from PyPI's
awslambdaric, in a venv of its own, and serves Lambda's Invoke on HTTP. It starts the
runtime on the first invoke, so the first invoke after RIE listens is its cold start; a
fresh RIE process is started for each one. Warm figures use the same clients against
RIE and against klambda's REST API (not gRPC: RIE only speaks HTTP), in the same run:
one keep-alive Python client calling one at a time, and wrk at concurrency 1 (RIE runs
one request at a time, like one Lambda environment).

RIE gives the runtime no CPU or memory limit; klambda's function here is 1,769 MB
(one vCPU after init).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from klambda.testing import accepts_tcp, eventually, free_port, still_running

from bench import clients, functions, stats, tools
from bench.lab import Lab
from bench.procs import stop

RIE_FUNCTION = "function"  # RIE serves any name; this is the one its docs use


def start_rie(rie: str, python: str, code: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port, api = free_port(), free_port()
    log = work / f"rie-{port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                rie,
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{port}",
                "--runtime-api-address",
                f"127.0.0.1:{api}",
                "--log-level",
                "error",
                python,
                "-m",
                "awslambdaric",
                "app.handler",
            ],
            cwd=code,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    eventually(
        lambda: still_running(proc, log) and accepts_tcp(port),
        f"the emulator to listen on {port}",
        interval=0.01,
    )
    return proc, port


def run(lab: Lab) -> dict[str, Any]:
    s = lab.sizes
    rie = lab.tools["aws-lambda-rie"]
    python = tools.ric_python()
    code = functions.write_handler(lab.work / "rie-code", functions.NOOP)
    kl_http = clients.HttpInvoker(lab.router.http_port)
    kl_http.invoke("noop")
    rie_cold, rie_start_to_reply, kl_cold = [], [], []
    proc: subprocess.Popen[bytes] | None = None
    try:
        names = functions.cold_names("rest-cold", s.peer_cold)
        for i, name in enumerate(names):
            # one side at a time: klambda's cold invoke while no RIE runs, then a fresh RIE
            kl_cold.append(kl_http.invoke(name).seconds)
            t_spawn = time.perf_counter()
            proc, port = start_rie(rie, python, code, lab.work)
            rie_client = clients.HttpInvoker(port)
            rie_cold.append(rie_client.invoke(RIE_FUNCTION).seconds)
            rie_start_to_reply.append(time.perf_counter() - t_spawn)
            rie_client.close()
            if i < len(names) - 1:
                stop(proc)
                proc = None
        assert proc is not None
        # warm: the last RIE stays up, its runtime already started
        rie_client = clients.HttpInvoker(port)
        rie_warm: list[float] = []
        kl_warm: list[float] = []
        for _ in range(s.latency_rounds):
            rie_warm += [rie_client.invoke(RIE_FUNCTION).seconds for _ in range(s.latency_calls)]
            kl_warm += [kl_http.invoke("noop").seconds for _ in range(s.latency_calls)]
        rie_client.close()
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/{RIE_FUNCTION}/invocations"
        rie_wrk = tools.wrk(url, 1, s.load_seconds, lab.work)
        kl_wrk = tools.wrk(
            f"{lab.router.url}/2015-03-31/functions/noop/invocations", 1, s.load_seconds, lab.work
        )
    finally:
        kl_http.close()
        if proc is not None:
            stop(proc)
    version = subprocess.run(
        [python, "-m", "pip", "show", "awslambdaric"], capture_output=True, text=True, check=False
    ).stdout
    ric_version = next(
        (x.split(":", 1)[1].strip() for x in version.splitlines() if x.startswith("Version:")), "?"
    )
    return {
        "rie_binary": rie,
        "awslambdaric": ric_version,
        "cold": {
            "rie_first_invoke": stats.summary_ms(rie_cold),
            "rie_process_start_to_reply": stats.summary_ms(rie_start_to_reply),
            "klambda": stats.summary_ms(kl_cold),
            "ratio_klambda_vs_rie": stats.ratio(
                stats.percentile(kl_cold, 50), stats.percentile(rie_cold, 50)
            ),
        },
        "warm": {
            "rie": stats.summary_ms(rie_warm),
            "klambda": stats.summary_ms(kl_warm),
            "ratio_klambda_vs_rie": stats.ratio(
                stats.percentile(kl_warm, 50), stats.percentile(rie_warm, 50)
            ),
            "wrk_rie": {
                "rps": rie_wrk.rps,
                "p50_ms": rie_wrk.p50_ms,
                "p99_ms": rie_wrk.p99_ms,
                "errors": rie_wrk.errors,
            },
            "wrk_klambda": {
                "rps": kl_wrk.rps,
                "p50_ms": kl_wrk.p50_ms,
                "p99_ms": kl_wrk.p99_ms,
                "errors": kl_wrk.errors,
            },
        },
    }
