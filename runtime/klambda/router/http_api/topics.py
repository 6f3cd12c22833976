"""Publishing to topics over HTTP, two ways:

    POST /klambda/v1/topics/{topic}/messages   JSON: {"Message", "Subject",
                                               "MessageAttributes": {name: {"DataType",
                                               "StringValue" | "BinaryValue"}}}
                                               -> {"MessageId", "Delivered", "Filtered"}
    GET  /klambda/v1/topics                    the topics and their subscriptions
    POST /  Action=Publish                     SNS's own query API, so that boto3's `sns`
                                               client (endpoint_url = the router) publishes

SNS's API answers in XML, errors included (`<ErrorResponse>`), so boto3 raises what SNS
would (`NotFound`, `InvalidParameter`).
"""

from __future__ import annotations

import uuid
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from klambda import lineage
from klambda.errors import InvalidParameterValue, KlambdaError, ResourceNotFound
from klambda.router.http_api.params import json_body
from klambda.router.topics import Topics
from klambda.triggers import sns

XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


class TopicApi:
    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/klambda/v1/topics", self.list_topics)
        router.add_post("/klambda/v1/topics/{topic}/messages", self.publish)
        router.add_post("/", self.query_api)

    async def list_topics(self, request: web.Request) -> web.Response:
        table = self.topics.triggers.table
        return web.json_response(
            {
                "Topics": [
                    {
                        "Name": name,
                        "Subscriptions": [
                            {"Function": d.function, "Alias": d.alias, "Trigger": d.name}
                            for d in subs
                        ],
                    }
                    for name, subs in sorted(table.subscriptions.items())
                ]
            }
        )

    async def publish(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        message = body.get("Message")
        if not isinstance(message, str):
            raise InvalidParameterValue("Message: a string is required")
        subject = body.get("Subject")
        try:
            attrs = sns.attributes(body.get("MessageAttributes"))
            done = await self.topics.publish(
                request.match_info["topic"],
                message,
                subject=None if subject is None else str(subject),
                attributes=attrs,
                trace=request.headers.get(lineage.HEADER),
            )
        except sns.InvalidMessage as err:
            raise InvalidParameterValue(str(err)) from None
        return web.json_response(
            {"MessageId": done.message_id, "Delivered": done.delivered, "Filtered": done.filtered}
        )

    # -- SNS's query API -----------------------------------------------------------------

    async def query_api(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        rid = str(uuid.uuid4())
        action = params.get("Action", "")
        try:
            if action == "Publish":
                return await self._publish(params, rid, request.headers.get(lineage.HEADER))
            if action == "ListTopics":
                return self._list(rid)
            raise InvalidParameterValue(f"Action {action!r} is not supported (Publish, ListTopics)")
        except sns.InvalidMessage as err:
            return _error(400, "InvalidParameter", str(err), rid)
        except ResourceNotFound as err:
            return _error(404, "NotFound", err.message, rid)
        except KlambdaError as err:
            return _error(err.http_status, "InvalidParameter", err.message, rid)

    async def _publish(
        self, params: dict[str, str], rid: str, trace: str | None = None
    ) -> web.Response:
        topic = params.get("TopicArn") or params.get("TargetArn")
        if not topic:
            raise InvalidParameterValue("TopicArn: required")
        message = params.get("Message")
        if message is None:
            raise InvalidParameterValue("Message: required")
        done = await self.topics.publish(
            topic,
            message,
            subject=params.get("Subject"),
            attributes=sns.attributes(_query_attributes(params)),
            trace=trace,
        )
        return _xml(
            "Publish",
            f"<PublishResult><MessageId>{done.message_id}</MessageId></PublishResult>",
            rid,
        )

    def _list(self, rid: str) -> web.Response:
        t = self.topics
        members = "".join(
            f"<member><TopicArn>{escape(sns.topic_arn(t.region, t.account, n))}</TopicArn></member>"
            for n in t.names()
        )
        return _xml(
            "ListTopics", f"<ListTopicsResult><Topics>{members}</Topics></ListTopicsResult>", rid
        )


def _query_attributes(params: dict[str, str]) -> dict[str, Any]:
    """`MessageAttributes.entry.N.Name` / `.Value.DataType` / `.Value.StringValue` ..."""
    out: dict[str, Any] = {}
    n = 1
    while f"MessageAttributes.entry.{n}.Name" in params:
        prefix = f"MessageAttributes.entry.{n}."
        value: dict[str, Any] = {"DataType": params.get(prefix + "Value.DataType", "")}
        for field in ("StringValue", "BinaryValue"):
            if prefix + "Value." + field in params:
                value[field] = params[prefix + "Value." + field]
        out[params[prefix + "Name"]] = value
        n += 1
    return out


def _xml(action: str, result: str, rid: str) -> web.Response:
    text = (
        f'<{action}Response xmlns="{XMLNS}">{result}'
        f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{action}Response>"
    )
    return web.Response(text=text, content_type="text/xml")


def _error(status: int, code: str, message: str, rid: str) -> web.Response:
    text = (
        f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{rid}</RequestId>"
        "</ErrorResponse>"
    )
    return web.Response(status=status, text=text, content_type="text/xml")
