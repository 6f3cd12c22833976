"""Bucket notifications (S3's role): an S3-compatible server sends its object events to
the router, and every S3 trigger whose bucket, event types and key filter match invokes
its function asynchronously with S3's event.

The server is told once to send a bucket's events to the router (MinIO: a webhook target
whose endpoint is `/klambda/v1/s3/events`, then PutBucketNotificationConfiguration with
that target for the bucket); which functions they reach, and for which keys, is what the
Functions and Aliases declare. Each matching trigger gets one event per object event,
queued durably with the trigger's own retry and dead-letter settings, before the router
answers: a server that gets no answer sends the notification again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from klambda.api.triggers import S3Event
from klambda.queue.event import Origin
from klambda.router.scheduler import Submit
from klambda.router.triggers import Triggers
from klambda.trigger_metrics import TriggerMetrics
from klambda.triggers import s3


@dataclass(frozen=True)
class Delivered:
    records: int
    delivered: int
    unmatched: int


class Buckets:
    def __init__(
        self, triggers: Triggers, submit: Submit, metrics: TriggerMetrics, *, region: str
    ) -> None:
        self.triggers = triggers
        self.submit = submit
        self.metrics = metrics
        self.region = region

    async def notify(self, notification: Mapping[str, Any]) -> Delivered:
        """Deliver a notification; s3.InvalidNotification when it is not S3's shape."""
        events = s3.parse(notification)
        delivered = unmatched = 0
        for e in events:
            hits = 0
            for d in self.triggers.table.buckets.get(e.bucket, []):
                trig = d.event
                assert isinstance(trig, S3Event)
                rule = s3.KeyFilter(trig.key_rule("prefix"), trig.key_rule("suffix"))
                labels = (d.function, d.alias or "", d.name)
                if not s3.matches(trig.events, rule, e):
                    self.metrics.filtered.labels(*labels).inc()
                    continue
                payload = {"Records": [s3.record(e, region=self.region, configuration=d.key)]}
                dl = trig.dead_letter
                origin = Origin(
                    trigger=d.name,
                    type="S3",
                    retry_attempts=trig.retry_attempts,
                    max_event_age_seconds=trig.max_event_age_seconds,
                    dead_letter_function=dl.function if dl else None,
                    dead_letter_queue=dl.queue if dl else None,
                )
                try:
                    await self.submit(
                        d.function, json.dumps(payload).encode(), qualifier=d.alias, origin=origin
                    )
                except Exception:
                    self.metrics.failures.labels(*labels, "S3", "QueueError").inc()
                    raise
                self.metrics.events.labels(*labels, "S3").inc()
                hits += 1
            delivered += hits
            unmatched += hits == 0
        return Delivered(len(events), delivered, unmatched)
