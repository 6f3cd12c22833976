"""SAM templates read by cfn-lint and aws-sam-translator, mapped to klambda's resources,
and planned against what is there."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from klambda import codestore, shapes
from klambda.api import AliasSpec, FunctionSpec
from klambda.deploy import plan, sam, template
from klambda.execution import config_of

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples/sam/template.yaml"
FUNCTION = FunctionSpec.model_validate(
    {"runtime": "python3.11", "handler": "a.b", "code": {"inline": {"a.py": ""}}}
)


def test_the_example_maps_to_klambda() -> None:
    tpl = template.read(EXAMPLE, {"Stage": "prod"})
    desired, problems, notes = sam.desired(tpl, "shop", minute_s=1.0)
    assert (problems, notes) == ([], [])
    by_name = {d.name: d for d in desired}
    orders, report = by_name["orders"], by_name["report"]
    # orders' route invokes its alias (AutoPublishAlias), as SAM attaches it: not $LATEST
    place_order = {"PlaceOrder": {"type": "HttpApi", "path": "/orders", "method": "POST"}}
    assert orders.events == place_order
    assert orders.alias_triggers == {"events": place_order, "functionUrl": None}
    assert orders.function_triggers == {"events": None, "functionUrl": None}
    nightly = {"Nightly": {"type": "Schedule", "schedule": "cron(0 3 * * ? *)"}}
    assert report.function_triggers == {"events": nightly, "functionUrl": None}
    assert report.alias_triggers is None
    assert orders.body["MemorySize"] == 256  # its own, over Globals' 128
    assert orders.body["Timeout"] == 5  # Globals'
    assert orders.body["Environment"]["Variables"] == {"STAGE": "prod", "BROKEN": "no"}
    assert orders.body["Tags"] == {sam.STACK_TAG: "shop"}
    assert (orders.reserved, orders.alias, orders.provisioned) == (10, "live", 1)
    assert orders.event_invoke == {"MaximumRetryAttempts": 1}
    assert orders.code.sha256 == codestore.digest(codestore.collect(path=EXAMPLE.parent / "orders"))
    pref = orders.preference
    assert pref is not None
    assert pref.kind == "Canary10Percent5Minutes"
    assert [s.weight for s in pref.steps] == [0.1, 1.0]
    assert pref.steps[0].wait_s == 5.0
    assert [a.expression for a in pref.alarms] == ["errors >= 1"]
    assert pref.hooks.pre_traffic == "orders-pre-traffic"
    assert report.alias is None


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src/app.py").write_text("def handler(e, c): return 1\n")
    path = tmp_path / "template.yaml"
    head = "AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\n"
    path.write_text(head + textwrap.dedent(body))
    return path


FN = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.11
"""


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("      MemorySize: 99999\n", "E3034"),  # cfn-lint: CloudFormation's own limit
        ("      Handlr: app.handler\n", "Handlr"),
        ("      DeploymentPreference: {Type: Canary10Percent5Minutes}\n",
         "aws-sam-translator"),  # SAM: a deployment preference needs AutoPublishAlias
    ],
)  # fmt: skip
def test_templates_refused_by_aws_libraries(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(template.TemplateError) as err:
        template.read(write(tmp_path, FN + extra))
    assert any(words in p for p in err.value.problems), err.value.problems


def test_parameters(tmp_path: Path) -> None:
    path = write(
        tmp_path, "Parameters:\n  Size: {Type: Number}\n" + FN + "      MemorySize: !Ref Size\n"
    )
    with pytest.raises(template.TemplateError, match=r"Parameters\.Size: no Default"):
        template.read(path)
    with pytest.raises(template.TemplateError, match="no such parameter"):
        template.read(path, {"Size": "512", "Other": "1"})
    desired, _, _ = sam.desired(template.read(path, {"Size": "512"}), "s")
    assert desired[0].body["MemorySize"] == 512


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("      Layers: [arn:aws:lambda:us-east-1:123456789012:layer:l:1]\n",
         "Layers: not supported"),
        ("      Runtime: nodejs20.x\n", "Runtime (spec.runtime)"),
        ("      CodeSigningConfigArn: "
         "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-1\n",
         "CodeSigningConfigArn: not supported"),
        ("      Events: {Q: {Type: SQS, Properties: {Queue: "
         "arn:aws:sqs:us-east-1:123456789012:q}}}\n",
         "Events.Q: event type SQS is not supported"),
    ],
)  # fmt: skip
def test_what_klambda_does_not_do_is_named(tmp_path: Path, extra: str, words: str) -> None:
    body = FN.replace("      Runtime: python3.11\n", "") if "Runtime:" in extra else FN
    _, problems, _ = sam.desired(template.read(write(tmp_path, body + extra)), "s")
    assert any(words in p for p in problems), problems


def test_iam_is_accepted_and_said_unused(tmp_path: Path) -> None:
    desired, problems, notes = sam.desired(
        template.read(write(tmp_path, FN + "      Policies: [AWSLambdaBasicExecutionRole]\n")), "s"
    )
    assert problems == []
    assert len(desired) == 1
    assert notes == ["Resources.Fn.Properties: Policies not used (klambda has no IAM)"]
    assert desired[0].name == "fn"


def test_an_iam_function_url_is_mapped(tmp_path: Path) -> None:
    body = FN + "      FunctionUrlConfig: {AuthType: AWS_IAM}\n"
    desired, problems, _ = sam.desired(template.read(write(tmp_path, body)), "s")
    assert problems == []
    assert desired[0].function_url == {"authType": "AWS_IAM", "invokeMode": "BUFFERED"}


def test_an_auto_published_functions_url_is_its_aliass(tmp_path: Path) -> None:
    body = FN + "      AutoPublishAlias: live\n      FunctionUrlConfig: {AuthType: NONE}\n"
    desired, problems, _ = sam.desired(template.read(write(tmp_path, body)), "s")
    assert problems == []
    url = {"authType": "NONE", "invokeMode": "BUFFERED"}
    assert desired[0].alias_triggers == {"events": None, "functionUrl": url}
    assert desired[0].function_triggers == {"events": None, "functionUrl": None}


def test_plan_create_unchanged_change_remove(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE.parent, tmp_path / "sam")
    tpl = template.read(tmp_path / "sam/template.yaml")
    desired, _, _ = sam.desired(tpl, "shop")
    first = plan.plan(desired, {}, "shop")
    assert [(c.action, c.function) for c in first] == [
        ("create", "orders"), ("create", "orders-pre-traffic"), ("create", "report"),
    ]  # fmt: skip
    assert "triggers of alias live: ['PlaceOrder']" in first[0].details
    assert "triggers: ['Nightly']" in first[2].details

    def alias(d: sam.DesiredFunction, events: dict[str, Any]) -> dict[str, Any]:
        """GetAlias as the router answers it, klambda's Triggers included."""
        spec = AliasSpec.model_validate({"function": d.name, "version": "1", "events": events})
        cfg = config_of(d.name, "1", FUNCTION, code_root="", code_sha256="", region="us-east-1",
                        account="000000000000")  # fmt: skip
        return shapes.alias_configuration(cfg, "live", spec)

    def function_triggers(events: dict[str, Any]) -> dict[str, Any] | None:
        """GetFunction's Triggers, as the router gives them: with the defaults written out."""
        return shapes.triggers(FunctionSpec.model_validate({**FUNCTION.wire(), "events": events}))

    current = {
        d.name: plan.Current(
            configuration={
                "FunctionName": d.name, "Runtime": "python3.11", "Handler": d.body["Handler"],
                "MemorySize": d.body["MemorySize"], "Timeout": 5, "Description": "",
                "Environment": {"Variables": d.body["Environment"]["Variables"]},
                "CodeSha256": d.code.sha256, "Version": "$LATEST",
            },
            tags={sam.STACK_TAG: "shop"},
            reserved=d.reserved,
            event_invoke={"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 21600,
                          "DestinationConfig": {}} if d.event_invoke else None,
            aliases={d.alias: alias(d, d.events)} if d.alias else {},
            provisioned={d.alias: d.provisioned} if d.alias else {},
            triggers=None if d.alias else function_triggers(d.events),
        )
        for d in desired
    }  # fmt: skip
    for c in current.values():
        c.newest = {**c.configuration, "Version": "1"}
    current["old"] = plan.Current({"FunctionName": "old"}, tags={sam.STACK_TAG: "shop"})
    current["theirs"] = plan.Current({"FunctionName": "theirs"}, tags={sam.STACK_TAG: "other"})
    again = plan.plan(desired, current, "shop")
    assert [(c.action, c.function) for c in again] == [
        ("unchanged", "orders"), ("unchanged", "orders-pre-traffic"), ("unchanged", "report"),
        ("remove", "old"),
    ]  # fmt: skip
    # a trigger changed: the function's configuration is, with klambda's Triggers
    moved = [replace(d, events={"Nightly": {"type": "Schedule", "schedule": "rate(1 hour)"}})
             if d.name == "report" else d for d in desired]  # fmt: skip
    report = plan.plan(moved, current, "shop")[2]
    assert (report.action, report.function) == ("change", "report")
    assert report.configuration == {"Triggers": moved[2].triggers}
    assert report.details == ["triggers: ['Nightly'] -> ['Nightly']"]
    # the alias's trigger changed: put on the alias, no new version, $LATEST untouched
    post = {"PlaceOrder": {"type": "HttpApi", "path": "/orders/{id}", "method": "POST"}}
    moved = [replace(d, events=post) if d.name == "orders" else d for d in desired]
    orders = plan.plan(moved, current, "shop")[0]
    assert (orders.action, orders.alias_triggers, orders.publish) == ("change", True, False)
    assert orders.configuration == {}
    assert orders.details == ["triggers of alias live: ['PlaceOrder'] -> ['PlaceOrder']"]
    # triggers once put on $LATEST move to the alias: taken off the one, put on the other
    current["orders"].triggers = function_triggers(desired[0].events)
    current["orders"].aliases["live"] = alias(desired[0], {})
    orders = plan.plan(desired, current, "shop")[0]
    assert orders.configuration == {"Triggers": {"events": None, "functionUrl": None}}
    assert (orders.alias_triggers, orders.publish) == (True, False)
    assert orders.details == [
        "triggers: ['PlaceOrder'] -> []", "triggers of alias live: [] -> ['PlaceOrder']",
    ]  # fmt: skip
    (tmp_path / "sam/orders/app.py").write_text("VERSION = '2'\n")
    changed = plan.plan(sam.desired(template.read(tmp_path / "sam/template.yaml"), "shop")[0],
                        current, "shop")  # fmt: skip
    orders = changed[0]
    assert (orders.action, orders.code, orders.publish) == ("change", True, True)
    assert "alias live -> a new version (Canary10Percent5Minutes)" in orders.details


def test_an_http_apis_stage_variables_and_cors_go_on_its_routes(tmp_path: Path) -> None:
    body = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageVariables: {table: items-prod}
      CorsConfiguration:
        AllowOrigins: [https://shop.example.com]
        AllowMethods: [GET]
        MaxAge: 60
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.11
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/items/{id}", Method: GET}
        Other:
          Type: HttpApi
          Properties: {Path: /other, Method: GET}
"""
    desired, problems, _ = sam.desired(template.read(write(tmp_path, body)), "s")
    assert problems == []
    assert desired[0].events == {
        "Get": {
            "type": "HttpApi", "path": "/items/{id}", "method": "GET",
            "stageVariables": {"table": "items-prod"},
            "cors": {"allowOrigins": ["https://shop.example.com"], "allowMethods": ["GET"],
                     "maxAge": 60},
        },
        # the implicit API: none of the other API's settings
        "Other": {"type": "HttpApi", "path": "/other", "method": "GET"},
    }  # fmt: skip
