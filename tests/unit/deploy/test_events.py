"""SAM's event sources (Schedule, ScheduleV2, HttpApi, Api, SNS) and FunctionUrlConfig as
the Function's `events` and `functionUrl`; what klambda does not do is named."""

from __future__ import annotations

from typing import Any

import pytest
from klambda.api import FunctionSpec
from klambda.deploy.events import events_of, function_url_of

WHERE = "Resources.Fn.Properties"


@pytest.mark.parametrize(
    ("event", "entry"),
    [
        ({"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)"}},
         {"type": "Schedule", "schedule": "rate(5 minutes)"}),
        ({"Type": "Schedule", "Properties": {
            "Schedule": "cron(0 3 * * ? *)", "Input": '{"full": true}', "Enabled": False,
            "Name": "nightly", "Description": "the nightly report",
            "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 600},
            "DeadLetterConfig": {"Type": "SQS", "Arn": "arn:aws:sqs:us-east-1:1:missed"}}},
         {"type": "Schedule", "schedule": "cron(0 3 * * ? *)", "input": '{"full": true}',
          "enabled": False, "description": "the nightly report", "retryAttempts": 1,
          "maxEventAgeSeconds": 600, "deadLetter": {"queue": "missed"}}),
        ({"Type": "ScheduleV2", "Properties": {
            "ScheduleExpression": "cron(30 8 ? * MON-FRI *)",
            "ScheduleExpressionTimezone": "Europe/Paris", "State": "ENABLED",
            "FlexibleTimeWindow": {"Mode": "OFF"}, "GroupName": "default"}},
         {"type": "Schedule", "schedule": "cron(30 8 ? * MON-FRI *)",
          "timezone": "Europe/Paris", "enabled": True}),
        ({"Type": "HttpApi", "Properties": {"Path": "/items/{id}", "Method": "get"}},
         {"type": "HttpApi", "path": "/items/{id}", "method": "GET"}),
        ({"Type": "HttpApi", "Properties": {
            "Path": "/{proxy+}", "Method": "ANY", "PayloadFormatVersion": "1.0",
            "TimeoutInMillis": 5000, "ApiId": {"Ref": "Api"}}},
         {"type": "HttpApi", "path": "/{proxy+}", "method": "ANY",
          "payloadFormatVersion": "1.0", "timeoutInMillis": 5000}),
        ({"Type": "HttpApi"}, {"type": "HttpApi", "path": "$default"}),
        ({"Type": "Api", "Properties": {"Path": "/orders", "Method": "post"}},
         {"type": "HttpApi", "path": "/orders", "method": "POST",
          "payloadFormatVersion": "1.0"}),
        ({"Type": "SNS", "Properties": {
            "Topic": "arn:aws:sns:us-east-1:123456789012:orders",
            "FilterPolicy": {"kind": ["paid"]}}},
         {"type": "Topic", "topic": "arn:aws:sns:us-east-1:123456789012:orders",
          "filterPolicy": {"kind": ["paid"]}}),
        ({"Type": "SNS", "Properties": {
            "Topic": {"Ref": "Orders"}, "FilterPolicyScope": "MessageBody",
            "FilterPolicy": {"total": [{"numeric": [">", 100]}]},
            "RedrivePolicy": {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:orders-dlq"}}},
         {"type": "Topic", "topic": "Orders", "filterPolicyScope": "MessageBody",
          "filterPolicy": {"total": [{"numeric": [">", 100]}]},
          "deadLetter": {"queue": "orders-dlq"}}),
    ],
)  # fmt: skip
def test_sam_events_become_triggers(event: dict[str, Any], entry: dict[str, Any]) -> None:
    mapped, problems = events_of(WHERE, {"It": event})
    assert problems == []
    assert mapped == {"It": entry}
    # what the Function's model reads, as a manifest's `events`
    FunctionSpec.model_validate(
        {"runtime": "python3.11", "handler": "app.handler", "code": {"inline": {"app.py": ""}},
         "events": mapped}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ({"Type": "SQS", "Properties": {"Queue": "q"}},
         "Events.It: event type SQS is not supported by this klambda (supported: Api, HttpApi, "
         "SNS, Schedule, ScheduleV2)"),
        ({"Type": "Schedule", "Properties": {"Schedule": "rate(1 minutes)"}},
         "Events.It: schedule: rate(1 minutes): for 1 the unit is singular"),
        ({"Type": "Schedule", "Properties": {}}, "Events.It: Properties.Schedule: required"),
        ({"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "at(2024-01-01T00:00:00)"}},
         "Events.It: schedule: 'at(2024-01-01T00:00:00)'"),
        ({"Type": "ScheduleV2", "Properties": {
            "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}},
         "Properties.FlexibleTimeWindow.Mode: OFF only"),
        ({"Type": "ScheduleV2", "Properties": {
            "ScheduleExpression": "rate(1 hour)", "ScheduleExpressionTimezone": "Mars/Base"}},
         "Events.It: timezone:"),
        ({"Type": "HttpApi", "Properties": {"Path": "items", "Method": "GET"}},
         "Events.It: path: path 'items' must start with '/'"),
        ({"Type": "HttpApi", "Properties": {
            "Path": "/x", "Method": "GET", "Auth": {"Authorizer": "OAuth2"}}},
         "Properties.Auth: authorizers are not supported"),
        ({"Type": "HttpApi", "Properties": {"Path": "/x", "RouteSettings": {}}},
         "Events.It: Properties.RouteSettings: not supported by klambda"),
        ({"Type": "Api", "Properties": {"Path": "/x"}},
         "Properties.Path and Properties.Method: both required"),
        ({"Type": "Api", "Properties": {"Path": "/x", "Method": "GET", "RequestModel": {}}},
         "Properties.RequestModel: not supported by klambda"),
        ({"Type": "SNS", "Properties": {"Topic": "orders", "SqsSubscription": True}},
         "Properties.SqsSubscription: not supported"),
        ({"Type": "SNS", "Properties": {"Topic": "orders", "FilterPolicy": {"n": [{"x": 1}]}}},
         "Events.It: filterPolicy"),
        ({"Type": "SNS", "Properties": {}}, "Properties.Topic: a name, an ARN or a Ref"),
    ],
)  # fmt: skip
def test_what_klambda_does_not_do_is_named(event: dict[str, Any], words: str) -> None:
    mapped, problems = events_of(WHERE, {"It": event, "Fine": {"Type": "HttpApi"}})
    assert mapped == {"Fine": {"type": "HttpApi", "path": "$default"}}  # the rest is kept
    (problem,) = problems
    assert problem.startswith(f"{WHERE}.Events.It: ")
    assert words in problem, problem


@pytest.mark.parametrize(
    ("config", "url", "problems"),
    [
        (None, None, []),
        ({"AuthType": "NONE"}, {"authType": "NONE", "invokeMode": "BUFFERED"}, []),
        ({"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"},
         {"authType": "NONE", "invokeMode": "RESPONSE_STREAM"}, []),
        ({"AuthType": "AWS_IAM"}, {"authType": "AWS_IAM", "invokeMode": "BUFFERED"}, []),
        ({"AuthType": "IAM"}, None,
         [f"{WHERE}.FunctionUrlConfig: authType: Input should be 'NONE' or 'AWS_IAM'"]),
        ({"AuthType": "NONE", "Cors": {"AllowOrigins": ["*"], "MaxAge": 600}},
         {"authType": "NONE", "invokeMode": "BUFFERED",
          "cors": {"allowOrigins": ["*"], "maxAge": 600}}, []),
        ({"AuthType": "NONE", "Cors": {"MaxAge": 100000}}, None,
         [f"{WHERE}.FunctionUrlConfig: cors.maxAge: Input should be less than or equal to "
          "86400"]),
        ({"AuthType": "NONE", "Qualifier": "live"}, None,
         [f"{WHERE}.FunctionUrlConfig.Qualifier: not supported by klambda"]),
        ({"InvokeMode": "BUFFERED"}, None,
         [f"{WHERE}.FunctionUrlConfig.AuthType: required (NONE or AWS_IAM)"]),
    ],
)  # fmt: skip
def test_function_url_config(
    config: dict[str, Any] | None, url: dict[str, Any] | None, problems: list[str]
) -> None:
    assert function_url_of(WHERE, config) == (url, problems)
