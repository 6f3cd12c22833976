"""What the reconciles of one operator process share: the API, the settings, a lock per
object and the objects seen so far.

kopf may deliver a watch event for an object while the resync loop reconciles it, so
each object has a lock; `known` maps every Function, Version and Alias seen in a watch
event to its last generation, which tells a spec change from a status or annotation
change and is the list the resync loop walks. `proxied` keeps the functions each
DatabaseProxy listed when last seen, so that a function taken off a list is reconciled
(out of the proxy's reach) as well as one put on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from klambda_operator import scaling
from klambda_operator.kube import Kube
from klambda_operator.settings import OperatorSettings
from klambda_operator.store import Store

Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Context:
    kube: Kube
    settings: OperatorSettings
    store: Store | None = None  # the cluster's store of code and layers, if it has one
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    known: dict[Key, int | None] = field(default_factory=dict)
    proxied: dict[Key, frozenset[str]] = field(default_factory=dict)

    def lock(self, kind: str, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((kind, namespace, name), asyncio.Lock())

    def seen(self, key: Key, generation: int | None) -> bool:
        """Record `key` at `generation`; True if that is new (first sight or a spec edit)."""
        changed = key not in self.known or self.known[key] != generation
        self.known[key] = generation
        return changed

    def forget(self, key: Key) -> None:
        self.known.pop(key, None)
        self.locks.pop(key, None)
        self.proxied.pop(key, None)

    @property
    def policy(self) -> scaling.ScalingPolicy:
        s = self.settings
        return scaling.ScalingPolicy(s.idle_seconds, s.scale_up_per_minute, s.max_environments)
