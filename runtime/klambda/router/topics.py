"""Topics (SNS's role): a published message fans out to every subscribed function.

A topic exists while some Function or Alias subscribes to it (an `SNS` trigger). Publishing
checks the message, then queues one asynchronous event per subscription whose filter
policy the message passes (klambda.triggers.filterpolicy), each with SNS's event and the
subscription's own retry and dead-letter settings. So every subscription is retried and
dead-lettered on its own: one failing function does not hold back the others. The
publisher's answer (a MessageId) comes once every event is durable in the queue.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from klambda import lineage
from klambda.api.triggers import TopicEvent
from klambda.errors import ResourceNotFound
from klambda.queue.event import Origin
from klambda.router.scheduler import Submit
from klambda.router.triggers import Triggers
from klambda.trigger_metrics import TriggerMetrics
from klambda.triggers import filterpolicy, sns
from klambda.triggers.filterpolicy import Attribute


@dataclass(frozen=True)
class Published:
    message_id: str
    delivered: int  # subscriptions the message was queued for
    filtered: int  # subscriptions whose filter policy kept it out


class Topics:
    def __init__(
        self,
        triggers: Triggers,
        submit: Submit,
        metrics: TriggerMetrics,
        *,
        region: str,
        account: str,
    ) -> None:
        self.triggers = triggers
        self.submit = submit
        self.metrics = metrics
        self.region = region
        self.account = account

    def names(self) -> list[str]:
        return sorted(self.triggers.table.subscriptions)

    async def publish(
        self,
        topic: str,
        message: str,
        *,
        subject: str | None = None,
        attributes: Mapping[str, Attribute] | None = None,
        trace: str | None = None,
    ) -> Published:
        """Fan a message out; ResourceNotFound for a topic nobody subscribes to, and
        sns.InvalidMessage for a message SNS would refuse. `trace`: the publisher's
        X-Amzn-Trace-Id (a handler's SDK sends it), so a loop through a topic is stopped
        like any other (klambda.lineage)."""
        hop = lineage.of_request(trace).header()
        name = topic.rsplit(":", 1)[-1]
        subs = self.triggers.table.subscriptions.get(name)
        if not subs:
            raise ResourceNotFound(f"Topic does not exist: {name} (no function subscribes to it)")
        attrs = dict(attributes or {})
        sns.check_message(message, subject, attrs)
        message_id = str(uuid.uuid4())
        arn = sns.topic_arn(self.region, self.account, name)
        now = time.time()
        delivered = filtered = 0
        for d in subs:
            event = d.event
            assert isinstance(event, TopicEvent)
            labels = (d.function, d.alias or "", d.name)
            if event.filter_policy is not None and not filterpolicy.matches(
                event.filter_policy, event.filter_policy_scope, attrs, message
            ):
                self.metrics.filtered.labels(*labels).inc()
                filtered += 1
                continue
            payload = sns.notification_event(
                message_id=message_id,
                topic=arn,
                subscription=sns.subscription_arn(arn, d.key),
                message=message,
                subject=subject,
                attrs=attrs,
                published=now,
            )
            dl = event.dead_letter
            origin = Origin(
                trigger=d.name,
                type="SNS",
                retry_attempts=event.retry_attempts,
                max_event_age_seconds=event.max_event_age_seconds,
                dead_letter_function=dl.function if dl else None,
                dead_letter_queue=dl.queue if dl else None,
            )
            try:
                await self.submit(
                    d.function,
                    json.dumps(payload).encode(),
                    qualifier=d.alias,
                    origin=origin,
                    trace=hop,
                )
            except Exception:
                self.metrics.failures.labels(*labels, "SNS", "QueueError").inc()
                raise
            self.metrics.events.labels(*labels, "SNS").inc()
            delivered += 1
        return Published(message_id, delivered, filtered)
