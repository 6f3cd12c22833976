"""Loading klambda manifests from YAML files, with errors that name file, field and limit.

Local mode reads the same files that `kubectl apply` takes. Everything in a folder is
validated before anything starts: a single bad document refuses the whole load.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from klambda.api import limits
from klambda.api.alias import Alias
from klambda.api.databaseproxy import DatabaseProxy
from klambda.api.eventsourcemapping import EventSourceMapping
from klambda.api.function import Function
from klambda.api.layer import Layer
from klambda.api.queue import Queue
from klambda.api.stream import Stream
from klambda.api.version import Version

Resource = Function | Version | Alias | Layer | Queue | Stream | EventSourceMapping | DatabaseProxy
KINDS: dict[str, type[Resource]] = {
    "Function": Function,
    "Version": Version,
    "Alias": Alias,
    "Layer": Layer,
    "Queue": Queue,
    "Stream": Stream,
    "EventSourceMapping": EventSourceMapping,
    "DatabaseProxy": DatabaseProxy,
}


class ManifestError(ValueError):
    """One or more manifests are invalid; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid manifests:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class Manifests:
    functions: dict[str, Function] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)
    # -- polled sources: queues, streams and the event source mappings that read them
    queues: dict[str, Queue] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)
    mappings: dict[str, EventSourceMapping] = field(default_factory=dict)
    proxies: dict[str, DatabaseProxy] = field(default_factory=dict)
    # where each object came from, for error messages and for resolving `code.path`
    sources: dict[tuple[str, str], Path] = field(default_factory=dict)


def _part(p: str | int) -> str:
    """A path element as written; a key with spaces, colons or semicolons in quotes, so
    that the field a message names is never ambiguous."""
    text = str(p)
    return text if re.fullmatch(r"[^\s;:\"]+", text) else json.dumps(text)


def describe_errors(err: ValidationError) -> list[str]:
    """`spec.memoryMB: Input should be greater than or equal to 128` lines."""
    lines = []
    for e in err.errors():
        loc = ".".join(_part(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def parse_document(doc: Any) -> Resource:
    """One YAML document to a model; ValueError naming the field otherwise."""
    if not isinstance(doc, dict):
        raise ValueError("a manifest must be a mapping with apiVersion, kind, metadata, spec")
    if doc.get("apiVersion") != limits.API_VERSION:
        raise ValueError(f"apiVersion: must be {limits.API_VERSION!r}")
    model = KINDS.get(str(doc.get("kind")))
    if model is None:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}")
    try:
        return model.model_validate(doc)
    except ValidationError as err:
        raise ValueError("; ".join(describe_errors(err))) from None


def manifest_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".yaml", ".yml")
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def load(root: Path, allow_empty: bool = False) -> Manifests:
    """All klambda manifests under `root` (a file or a folder), or ManifestError; a folder
    with none is an error unless `allow_empty` (functions may come from the API)."""
    out = Manifests()
    problems: list[str] = []
    files = manifest_files(root)
    if not files:
        if allow_empty and root.is_dir():
            return out
        raise ManifestError([f"{root}: no .yaml manifests found"])
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as err:
            problems.append(f"{path}: not valid YAML: {err}")
            continue
        for i, doc in enumerate(d for d in docs if d is not None):
            where = f"{path} (document {i + 1})"
            if isinstance(doc, dict) and doc.get("apiVersion") != limits.API_VERSION:
                # other kinds may live in the same folder (ConfigMaps, ...): not ours
                if str(doc.get("apiVersion", "")).startswith(limits.GROUP):
                    problems.append(f"{where}: apiVersion: must be {limits.API_VERSION!r}")
                continue
            try:
                obj = parse_document(doc)
            except ValueError as err:
                name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
                problems.append(f"{where} {doc.get('kind', '?')}/{name}: {err}")
                continue
            tables: dict[str, dict[str, Any]] = {
                "Function": out.functions,
                "Version": out.versions,
                "Alias": out.aliases,
                "Layer": out.layers,
                "Queue": out.queues,
                "Stream": out.streams,
                "DatabaseProxy": out.proxies,
                "EventSourceMapping": out.mappings,
            }
            table = tables[obj.kind]
            if obj.metadata.name in table:
                problems.append(f"{where}: {obj.kind} {obj.metadata.name!r} is defined twice")
                continue
            table[obj.metadata.name] = obj
            out.sources[(obj.kind, obj.metadata.name)] = path
    for key, fn in out.functions.items():
        if fn.spec.code.path is not None:
            code_dir = (out.sources[("Function", key)].parent / fn.spec.code.path).resolve()
            if not code_dir.is_dir():
                problems.append(
                    f"{out.sources[('Function', key)]} Function/{key}: spec.code.path: "
                    f"{code_dir} is not a directory"
                )
    problems += _check_sources(out)
    if problems:
        raise ManifestError(problems)
    return out


def _check_sources(out: Manifests) -> list[str]:
    """What one document cannot say: a mapping's queue and function, a queue's DLQ."""
    problems = []
    for name, queue in out.queues.items():
        rp = queue.spec.redrive_policy
        if rp is not None and rp.dead_letter_queue not in out.queues:
            problems.append(
                f"{out.sources[('Queue', name)]} Queue/{name}: spec.redrivePolicy."
                f"deadLetterQueue: no Queue {rp.dead_letter_queue!r} is declared"
            )
    for name, esm in out.mappings.items():
        where = f"{out.sources[('EventSourceMapping', name)]} EventSourceMapping/{name}"
        source = esm.spec.source
        if source.queue is not None and source.queue not in out.queues:
            problems.append(f"{where}: spec.source.queue: no Queue {source.queue!r} is declared")
        if source.stream is not None and source.stream not in out.streams:
            problems.append(f"{where}: spec.source.stream: no Stream {source.stream!r} is declared")
        on_failure = esm.spec.destination_config.on_failure if esm.spec.destination_config else None
        if on_failure is not None and on_failure.queue and on_failure.queue not in out.queues:
            problems.append(
                f"{where}: spec.destinationConfig.onFailure.queue: no Queue "
                f"{on_failure.queue!r} is declared"
            )
    return problems


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (inline code) as literal blocks, readable as written."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data and not any(c in data for c in "\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(obj: Function | Version | Alias | Layer) -> str:
    return yaml.dump(obj.wire(), Dumper=_Dumper, sort_keys=False, width=100)
