"""Reading an AWS SAM template with AWS's own libraries.

cfn-lint decodes the YAML (with `!Ref`, `!Sub`, ...) and lints it against CloudFormation's
schemas; aws-sam-translator translates it to CloudFormation, which checks everything SAM
itself checks (DeploymentPreference, AutoPublishAlias, events...); its Globals plugin and
intrinsics resolver then give each function's properties as SAM sees them, with Globals
merged and `!Ref Parameter` resolved. Nothing of the template's grammar is written here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
REGION = "us-east-1"
ACCOUNT = "000000000000"


class TemplateError(ValueError):
    """The template is refused; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n  ".join(["the template is refused:", *problems]))
        self.problems = problems


@dataclass
class SamFunction:
    logical_id: str
    properties: dict[str, Any]  # Globals merged, parameters resolved


@dataclass
class Template:
    path: Path
    functions: list[SamFunction]
    resources: dict[str, Any]  # every resource, resolved (alarms are looked up here)
    parameters: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def _parameters(tpl: dict[str, Any], given: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    declared = tpl.get("Parameters") or {}
    problems = [
        f"--parameter {name}: the template declares no such parameter"
        for name in given
        if name not in declared
    ]
    values: dict[str, str] = {}
    for name, decl in declared.items():
        if name in given:
            values[name] = given[name]
        elif isinstance(decl, dict) and "Default" in decl:
            values[name] = decl["Default"]
        else:
            problems.append(f"Parameters.{name}: no Default: give --parameter {name}=VALUE")
    return values, problems


def _lint(text: str, path: Path) -> tuple[list[str], list[str]]:
    from cfnlint.api import ManualArgs, lint

    errors: list[str] = []
    warnings: list[str] = []
    for m in lint(text, config=ManualArgs(regions=[REGION])):
        line = f"{path.name}:{m.linenumber}: {m.rule.id} {m.message}"
        (errors if m.rule.id.startswith("E") else warnings).append(line)
    return errors, warnings


def _translate(tpl: dict[str, Any], values: dict[str, str]) -> list[str]:
    """aws-sam-translator's own checks: the problems of translating the template."""
    import logging

    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    sam = copy.deepcopy(tpl)
    for logical_id, res in (sam.get("Resources") or {}).items():
        props = res.get("Properties") if isinstance(res, dict) else None
        uri = props.get("CodeUri") if isinstance(props, dict) else None
        if isinstance(uri, str) and not uri.startswith("s3://"):
            # a local folder is klambda's to read; SAM expects `sam package` to have
            # uploaded it, so the translation is shown where it would be
            props["CodeUri"] = f"s3://klambda-local/{logical_id}.zip"  # type: ignore[index]
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=REGION),
    )
    try:
        translator.translate(
            sam_template=sam, parameter_values=dict(values), get_managed_policy_map=dict
        )
    except InvalidDocumentException as err:
        return [f"aws-sam-translator: {c.message}" for c in err.causes]
    return []


def read(path: Path, parameters: dict[str, str] | None = None) -> Template:
    """The template at `path`, checked; TemplateError with every problem otherwise."""
    from cfnlint.decode import decode_str
    from samtranslator.intrinsics.resolver import IntrinsicsResolver
    from samtranslator.plugins.globals.globals_plugin import GlobalsPlugin
    from samtranslator.public.exceptions import InvalidDocumentException

    try:
        text = path.read_text()
    except OSError as err:
        raise TemplateError([f"{path}: {err.strerror}"]) from None
    decoded, matches = decode_str(text)
    if matches or not isinstance(decoded, dict):
        raise TemplateError([f"{path.name}:{m.linenumber}: {m.message}" for m in matches])
    tpl: dict[str, Any] = json.loads(json.dumps(decoded))  # plain dicts, no line marks
    errors, warnings = _lint(text, path)
    values, problems = _parameters(tpl, parameters or {})
    problems = errors + problems
    if not problems:
        problems = _translate(tpl, values)
    if problems:
        raise TemplateError(problems)
    merged = copy.deepcopy(tpl)
    try:
        GlobalsPlugin().on_before_transform_template(merged)
    except InvalidDocumentException as err:
        raise TemplateError([c.message for c in err.causes]) from None
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": path.stem}
    resolver = IntrinsicsResolver({**values, **pseudo})
    resources: dict[str, Any] = resolver.resolve_parameter_refs(merged.get("Resources") or {})
    functions = [
        SamFunction(logical_id, dict(res.get("Properties") or {}))
        for logical_id, res in resources.items()
        if res.get("Type") == SERVERLESS_FUNCTION
    ]
    return Template(path, functions, resources, values, warnings)
