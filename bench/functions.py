"""The functions every benchmark runs, written as Function manifests into a folder.

The handlers are the same files the peer (RIE + awslambdaric) runs. Cold starts are
forced honestly by giving each measured cold invoke a function of its own (`cold-000`,
`cold-001`, ...): a function that was never invoked has no environment, so the router
must fork one from the zygote, run init, and then invoke. Nothing is killed or waited
out between requests, and the zygote is the one every function shares.
"""

from __future__ import annotations

from pathlib import Path

import yaml

NOOP = "def handler(event, context):\n    return None\n"
SLEEP_5MS = (
    "import time\n\n\ndef handler(event, context):\n    time.sleep(0.005)\n    return None\n"
)
HEAVY_STDLIB_MODULES = "json, decimal, email, http.client, xml.etree.ElementTree, asyncio"
HEAVY_STDLIB = f"import {HEAVY_STDLIB_MODULES}\n\n\n" + NOOP
HEAVY_BOTO3 = "import boto3\n\n\n" + NOOP

# memoryMB 1769 is one full vCPU (the CPU quota local mode applies after init); 128 is
# Lambda's default and smallest size: 128/1769 = 7 % of a CPU.
FULL_VCPU_MB = 1769
SMALL_MB = 128


def function(name: str, source: str, memory_mb: int, timeout_s: int = 30) -> dict[str, object]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": "python3.11",
            "handler": "app.handler",
            "memoryMB": memory_mb,
            "timeoutSeconds": timeout_s,
            "code": {"inline": {"app.py": source}},
        },
    }


def cold_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(count)]


def write_lab(folder: Path, cold: int, heavy: int, rest_cold: int, series: int) -> Path:
    """The folder `klambda up` serves for every part but scale."""
    docs = [
        function("noop", NOOP, FULL_VCPU_MB),
        function("noop-128", NOOP, SMALL_MB),
        function("sleep5", SLEEP_5MS, FULL_VCPU_MB),
        function("sleep5-128", SLEEP_5MS, SMALL_MB),
    ]
    docs += [function(n, NOOP, FULL_VCPU_MB) for n in cold_names("cold", cold)]
    docs += [function(n, HEAVY_STDLIB, FULL_VCPU_MB) for n in cold_names("heavy-std", heavy)]
    docs += [function(n, HEAVY_BOTO3, FULL_VCPU_MB) for n in cold_names("heavy-boto3", heavy)]
    docs += [function(n, NOOP, FULL_VCPU_MB) for n in cold_names("rest-cold", rest_cold)]
    docs += [function(n, NOOP, SMALL_MB) for n in cold_names("series", series)]
    return write_manifests(folder, docs)


def write_scale(folder: Path) -> Path:
    return write_manifests(folder, [function("scale", NOOP, SMALL_MB)])


def write_manifests(folder: Path, docs: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def write_handler(folder: Path, source: str) -> Path:
    """A code folder holding app.py, for the peer and the in-process call."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(source)
    return folder


# returns when it ran, so a client can count how many ran at once
TIMED_SLEEP = (
    "import os, time\n\n\ndef handler(event, context):\n    start = time.time()\n"
    "    time.sleep(event.get('sleep', 0.02))\n"
    "    return {'start': start, 'end': time.time(), 'zygote': os.getppid()}\n"
)


def write_processes(folder: Path, reserved: int) -> Path:
    """Part 11: the no-op of part 2, and a sleeping function with reserved concurrency."""
    timed = function("reserved", TIMED_SLEEP, SMALL_MB)
    timed["spec"]["reservedConcurrency"] = reserved  # type: ignore[index]
    return write_manifests(folder, [function("noop", NOOP, FULL_VCPU_MB), timed])
