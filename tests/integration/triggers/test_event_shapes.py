"""klambda's trigger events beside the AWS SAM CLI's sample events (`sam local
generate-event`), field by field: the same keys, the same types, the same constants."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from klambda.triggers import eventbridge, httpapi, sns

from tests.samcli import generate_event, shape

ISO_SECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def test_scheduled_event_matches_sam() -> None:
    sam = generate_event("cloudwatch", "scheduled-event")
    tick = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)
    rule = eventbridge.rule_arn("us-east-1", "123456789012", "hello-nightly")
    ours = eventbridge.scheduled_event(
        event_id=eventbridge.event_id("hello/nightly", tick),
        tick=tick,
        region="us-east-1",
        account="123456789012",
        rule=rule,
    )
    # every field SAM's sample has, with its type; EventBridge also sends "version": "0"
    # (the event envelope AWS documents), which SAM's sample leaves out
    assert set(ours) - set(sam) == {"version"}
    assert {k: shape(v) for k, v in ours.items() if k in sam} == shape(sam)
    for constant in ("detail-type", "source", "detail", "region", "account"):
        assert ours[constant] == sam[constant], constant
    assert ours["version"] == "0"
    assert re.match(ISO_SECONDS, sam["time"])
    assert ours["time"] == "2024-01-01T03:00:00Z"
    assert re.match(r"^arn:aws:events:[a-z0-9-]+:\d{12}:rule/.+$", sam["resources"][0])
    assert ours["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/hello-nightly"]
    uuid.UUID(sam["id"])
    assert uuid.UUID(ours["id"])
    # one id per schedule and tick
    assert ours["id"] == eventbridge.event_id("hello/nightly", tick)
    assert ours["id"] != eventbridge.event_id("hello/nightly", datetime(2024, 1, 2, tzinfo=UTC))


HTTP_REQUEST = httpapi.Request(
    method="POST",
    raw_path="/path/to/resource",
    raw_query="parameter1=value1&parameter1=value2&parameter2=value",
    headers=[("Header1", "value1"), ("Cookie", "cookie1; cookie2"), ("User-Agent", "agent")],
    body=b'{"test":"body"}',
    source_ip="192.168.0.1",
    request_id="id",
    host="id.execute-api.us-east-1.amazonaws.com",
)


def test_http_api_event_v2_matches_sam() -> None:
    sam = generate_event("apigateway", "http-api-proxy")
    ours = httpapi.event_v2(
        HTTP_REQUEST,
        "$default",
        {"parameter1": "value1"},
        httpapi.Api("api-id", "123456789012", stage_variables={"stageVariable1": "value1"}),
    )
    assert list(ours) == [k for k in sam if k in ours]  # the same order, too
    assert set(ours) == set(sam)
    ctx, sam_ctx = ours["requestContext"], sam["requestContext"]
    # SAM's sample has a client certificate and a JWT authorizer; klambda has no auth yet
    assert set(sam_ctx) - set(ctx) == {"authentication", "authorizer"}
    assert set(ctx) <= set(sam_ctx)
    # maps (headers, parameters, stage variables) are compared as maps of strings
    maps = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
    for key in maps:
        assert all(isinstance(v, str) for v in (*ours[key].values(), *sam[key].values())), key
    sam_shape = {k: v for k, v in shape(sam).items() if k not in maps}
    sam_shape["requestContext"] = {k: v for k, v in sam_shape["requestContext"].items() if k in ctx}
    assert {k: v for k, v in shape(ours).items() if k not in maps} == sam_shape
    for key in ("rawPath", "rawQueryString", "cookies", "queryStringParameters", "routeKey"):
        assert ours[key] == sam[key], key
    assert ours["headers"]["header1"] == "value1"
    assert ctx["http"]["method"] == sam_ctx["http"]["method"]
    assert ctx["domainName"] == sam_ctx["domainName"]
    assert ctx["domainPrefix"] == sam_ctx["domainPrefix"]
    assert ctx["stage"] == sam_ctx["stage"] == "$default"
    assert re.match(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$", sam_ctx["time"])
    assert re.match(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$", ctx["time"])


def test_http_api_event_v1_matches_sams_proxy_event() -> None:
    sam = generate_event("apigateway", "aws-proxy")
    route = httpapi.Route("POST", "/{proxy+}", "t", "1.0")
    ours = httpapi.event_v1(
        HTTP_REQUEST,
        route,
        {"proxy": "path/to/resource"},
        httpapi.Api("1234567890", "123456789012", stage_variables={"baz": "qux"}),
    )
    # HTTP APIs' format 1.0 adds "version" to the REST API's proxy event
    assert set(ours) - set(sam) == {"version"}
    assert set(sam) <= set(ours)
    ctx, sam_ctx = ours["requestContext"], sam["requestContext"]
    assert set(sam_ctx) <= set(ctx)
    assert set(ctx) - set(sam_ctx) == {"domainName", "domainPrefix", "extendedRequestId"}
    assert set(sam_ctx["identity"]) <= set(ctx["identity"])
    for key in ("resource", "httpMethod"):
        assert ours[key] == sam[key], key
    for key in sam:
        if key in ("requestContext",):
            continue
        assert type(ours[key]) is type(sam[key]), key
    assert ours["multiValueQueryStringParameters"]["parameter1"] == ["value1", "value2"]


def test_sns_notification_matches_sam() -> None:
    sam = generate_event("sns", "notification")
    arn = sns.topic_arn("us-east-1", "123456789012", "ExampleTopic")
    ours = sns.notification_event(
        message_id="95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        topic=arn,
        subscription=sns.subscription_arn(arn, "hello/orders"),
        message="example message",
        subject="example subject",
        attrs=sns.attributes(
            {
                "Test": {"DataType": "String", "StringValue": "TestString"},
                "TestBinary": {"DataType": "Binary", "BinaryValue": "VGVzdEJpbmFyeQ=="},
            }
        ),
        published=0.0,
    )
    assert shape(ours) == shape(sam)
    (record,), (sam_record,) = ours["Records"], sam["Records"]
    assert list(record) == list(sam_record)
    assert list(record["Sns"]) == list(sam_record["Sns"])
    for key in ("EventSource", "EventVersion"):
        assert record[key] == sam_record[key]
    for key in ("Type", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion"):
        assert record["Sns"][key] == sam_record["Sns"][key], key
    assert (
        record["Sns"]["MessageAttributes"]["Test"] == sam_record["Sns"]["MessageAttributes"]["Test"]
    )
    assert record["EventSubscriptionArn"].startswith(arn + ":")
