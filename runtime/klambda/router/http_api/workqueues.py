"""Work queues and event source mappings over HTTP:

    POST /klambda/v1/work-queues/{queue}/messages  JSON: {"MessageBody": str,
                                                   "MessageAttributes": {name: {"DataType":
                                                   "String", "StringValue": str}}}
                                                   -> {"MessageId", "MD5OfMessageBody"}
    GET  /klambda/v1/work-queues/{queue}           {"Queue", "Depth", "Messages": [...]}
                                                   (the oldest `limit`, not received)
    POST /klambda/v1/streams/{stream}/records      JSON: {"PartitionKey": str, "Data":
                                                   base64} (Kinesis's PutRecord)
                                                   -> {"ShardId", "SequenceNumber"}
    POST /klambda/v1/s3/events                     an S3-compatible server's bucket
                                                   notification (S3's `Records`), fanned out
                                                   to the S3 triggers it matches
    GET  /klambda/v1/event-source-mappings         each mapping's state, concurrency, last
                                                   processing result, record counts and
                                                   (streams) iterator age

A message is checked as SQS checks it (a body of 1 byte to 256 KiB), a record as Kinesis
does (a partition key of 1-256 characters, data of at most 1 MiB), before it is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from aiohttp import web

from klambda.api.queue import MESSAGE_MAX_BYTES
from klambda.api.stream import PARTITION_KEY_MAX, RECORD_MAX_BYTES
from klambda.errors import InvalidParameterValue, ResourceNotFound
from klambda.router.buckets import Buckets
from klambda.router.dbchanges import PostgresPollers
from klambda.router.http_api.params import json_body
from klambda.router.pollers import MappingState, Pollers
from klambda.router.streams import StreamPollers
from klambda.triggers import s3
from klambda.triggers.kinesis import shard_id

MESSAGE_ATTRIBUTES_MAX = 10  # SQS


def message_attributes(raw: Any) -> dict[str, str]:
    """SQS's `MessageAttributes` (String and Number) as name -> value."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidParameterValue("MessageAttributes: a JSON object is required")
    if len(raw) > MESSAGE_ATTRIBUTES_MAX:
        raise InvalidParameterValue(
            f"MessageAttributes: at most {MESSAGE_ATTRIBUTES_MAX} attributes, got {len(raw)}"
        )
    out = {}
    for name, attr in raw.items():
        if not isinstance(attr, dict) or not isinstance(attr.get("StringValue"), str):
            raise InvalidParameterValue(f"MessageAttributes.{name}: a StringValue is required")
        out[str(name)] = attr["StringValue"]
    return out


class WorkQueueApi:
    def __init__(
        self,
        pollers: Pollers | None,
        streams: StreamPollers | None,
        tables: PostgresPollers | None = None,
        buckets: Buckets | None = None,
    ) -> None:
        self.pollers = pollers
        self.streams = streams
        self.tables = tables
        self.buckets = buckets

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/klambda/v1/work-queues/{queue}/messages", self.send)
        router.add_get("/klambda/v1/work-queues/{queue}", self.show)
        router.add_post("/klambda/v1/streams/{stream}/records", self.put_record)
        router.add_get("/klambda/v1/event-source-mappings", self.mappings)
        router.add_post("/klambda/v1/s3/events", self.s3_events)

    async def s3_events(self, request: web.Request) -> web.Response:
        if self.buckets is None:
            raise InvalidParameterValue("this router has no queue for S3 triggers' events")
        body = await json_body(request)
        try:
            done = await self.buckets.notify(body)
        except s3.InvalidNotification as err:
            raise InvalidParameterValue(str(err)) from None
        return web.json_response(
            {"Records": done.records, "Delivered": done.delivered, "Unmatched": done.unmatched}
        )

    async def put_record(self, request: web.Request) -> web.Response:
        name = request.match_info["stream"]
        if self.streams is None or name not in self.streams.declared:
            raise ResourceNotFound(f"Stream does not exist: {name}")
        body = await json_body(request)
        key = body.get("PartitionKey")
        if not isinstance(key, str) or not 1 <= len(key) <= PARTITION_KEY_MAX:
            raise InvalidParameterValue(
                f"PartitionKey: a string of 1-{PARTITION_KEY_MAX} characters is required"
            )
        raw = body.get("Data")
        if not isinstance(raw, str):
            raise InvalidParameterValue("Data: a base64 string is required")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterValue("Data: not valid base64") from None
        if len(data) > RECORD_MAX_BYTES:
            raise InvalidParameterValue(f"Data: at most {RECORD_MAX_BYTES} bytes, got {len(data)}")
        r = await self.streams.put(name, key, data)
        return web.json_response({"ShardId": shard_id(r.shard), "SequenceNumber": str(r.sequence)})

    def _queue(self, request: web.Request) -> tuple[Pollers, str]:
        name = request.match_info["queue"]
        if self.pollers is None or name not in self.pollers.declared:
            raise ResourceNotFound(f"Queue does not exist: {name}")
        return self.pollers, name

    async def send(self, request: web.Request) -> web.Response:
        pollers, queue = self._queue(request)
        body = await json_body(request)
        text = body.get("MessageBody")
        if not isinstance(text, str) or not text:
            raise InvalidParameterValue("MessageBody: a non-empty string is required")
        size = len(text.encode())
        if size > MESSAGE_MAX_BYTES:
            raise InvalidParameterValue(
                f"MessageBody: at most {MESSAGE_MAX_BYTES} bytes, got {size}"
            )
        attrs = message_attributes(body.get("MessageAttributes"))
        message_id = await pollers.queues.send(queue, text, attrs)
        md5 = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        return web.json_response({"MessageId": message_id, "MD5OfMessageBody": md5})

    async def show(self, request: web.Request) -> web.Response:
        pollers, queue = self._queue(request)
        limit = int(request.query.get("limit", "100") or 100)
        messages = await pollers.queues.peek(queue, limit)
        return web.json_response(
            {
                "Queue": queue,
                "Depth": await pollers.queues.depth(queue),
                "Messages": [
                    {
                        "MessageId": m.message_id,
                        "Body": m.body,
                        "MessageAttributes": dict(m.attributes),
                        "SentTimestamp": int(m.sent_at * 1000),
                    }
                    for m in messages
                ],
            }
        )

    async def mappings(self, request: web.Request) -> web.Response:
        rows = []
        every = []
        if self.pollers is not None:
            every += [(n, m, self.pollers.state) for n, m in self.pollers.mappings.items()]
        if self.streams is not None:
            every += [(n, m, self.streams.state) for n, m in self.streams.mappings.items()]
        if self.tables is not None:
            every += [(n, m, self.tables.state) for n, m in self.tables.mappings.items()]
        for name, esm, state_of in sorted(every, key=lambda x: x[0]):
            s: MappingState = state_of(name)
            rows.append(
                {
                    "Name": name,
                    "Function": esm.spec.function,
                    "Queue": esm.spec.source.queue,
                    "Stream": esm.spec.source.stream,
                    "Tables": esm.spec.source.postgres.tables if esm.spec.source.postgres else None,
                    "IteratorAgeSeconds": s.iterator_age,
                    "State": s.state,
                    "StateTransitionReason": s.reason,
                    "BatchSize": esm.spec.effective_batch_size,
                    "Concurrency": s.concurrency,
                    "PeakInFlight": s.peak_in_flight,
                    "LastProcessingResult": s.last_processing_result,
                    "Records": dict(s.counts),
                }
            )
        return web.json_response({"EventSourceMappings": rows})
