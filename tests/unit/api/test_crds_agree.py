"""The CRD schemas (what the API server enforces) and the models (what local mode
enforces) state the same fields, bounds, defaults and enums; generated files are fresh."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from klambda.api import limits, logconfig
from klambda.api.alias import AliasSpec, RoutingConfig
from klambda.api.function import Code, Destination, FunctionSpec
from klambda.api.triggers import (
    DeadLetterTarget,
    FunctionUrl,
    HttpApiEvent,
    S3Event,
    ScheduleEvent,
    TopicEvent,
    TriggerStatus,
)
from klambda.api.version import VersionSpec
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[3]


def crd_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / name).read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def bounds(model: type[BaseModel], field: str) -> tuple[Any, Any]:
    lo = hi = None
    for m in model.model_fields[field].metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        if isinstance(m, annotated_types.Le):
            hi = m.le
    return lo, hi


TRIGGER_FIELDS = {"events", "functionUrl"}


def check_model(
    model: type[BaseModel], props: dict[str, Any], without: set[str] | None = None
) -> None:
    wire_names = {f.alias or n for n, f in model.model_fields.items()} - (without or set())
    assert wire_names == set(props), f"{model.__name__} fields differ from the CRD"
    for name, f in model.model_fields.items():
        if (f.alias or name) in (without or set()):
            continue
        prop = props[f.alias or name]
        lo, hi = bounds(model, name)
        assert prop.get("minimum") == lo, f"{name}: minimum"
        assert prop.get("maximum") == hi, f"{name}: maximum"
        if "default" in prop:
            assert prop["default"] == f.default, f"{name}: default"


@pytest.mark.parametrize("crd", ["functions.yaml", "versions.yaml"])
def test_function_spec_matches(crd: str) -> None:
    schema = crd_schema(crd)
    spec = schema["properties"]["spec"]
    if crd == "versions.yaml":
        check_model(VersionSpec, spec["properties"])
        spec = spec["properties"]["config"]
    props = spec["properties"]
    # a version's configuration has no triggers: they stay on the Function and Aliases
    check_model(FunctionSpec, props, TRIGGER_FIELDS if crd == "versions.yaml" else None)
    check_model(Code, props["code"]["properties"])
    check_model(Destination, props["deadLetter"]["properties"])
    assert tuple(props["runtime"]["enum"]) == limits.RUNTIMES
    assert props["handler"]["pattern"] == limits.HANDLER_PATTERN
    rules = " ".join(r["rule"] for r in props["environment"]["x-kubernetes-validations"])
    assert set(re.findall(r"'([A-Z_]+)'", rules)) == set(limits.RESERVED_ENVIRONMENT)
    assert f"<= {limits.ENVIRONMENT_MAX_BYTES}" in rules
    logging = props["loggingConfig"]["properties"]
    check_model(logconfig.LoggingConfig, logging)
    assert tuple(logging["logFormat"]["enum"]) == logconfig.LOG_FORMATS
    assert tuple(logging["applicationLogLevel"]["enum"]) == logconfig.APPLICATION_LOG_LEVELS
    assert tuple(logging["systemLogLevel"]["enum"]) == logconfig.SYSTEM_LOG_LEVELS
    assert tuple(props["logRetentionInDays"]["enum"]) == logconfig.RETENTION_DAYS
    filters = props["metricFilters"]
    assert filters["maxItems"] == logconfig.METRIC_FILTERS_MAX
    check_model(logconfig.MetricFilter, filters["items"]["properties"])
    item = filters["items"]["properties"]
    assert item["name"]["pattern"] == logconfig.FILTER_NAME_PATTERN
    assert item["metricName"]["pattern"] == logconfig.METRIC_NAME_PATTERN
    assert item["filterPattern"]["maxLength"] == logconfig.FILTER_PATTERN_MAX


@pytest.mark.parametrize("crd", ["functions.yaml", "aliases.yaml"])
def test_trigger_schemas_match(crd: str) -> None:
    schema = crd_schema(crd)
    props = schema["properties"]["spec"]["properties"]
    event = props["events"]["additionalProperties"]
    fields: set[str] = set()
    for model in (ScheduleEvent, HttpApiEvent, TopicEvent, S3Event):
        names = {f.alias or n for n, f in model.model_fields.items()}
        fields |= names
        check_model(model, {k: v for k, v in event["properties"].items() if k in names})
    assert fields == set(event["properties"]), "the trigger kinds' fields differ from the CRD"
    types = {
        t for m in (ScheduleEvent, HttpApiEvent, TopicEvent, S3Event) for t in literal(m, "type")
    }
    assert set(event["properties"]["type"]["enum"]) == types
    check_model(DeadLetterTarget, event["properties"]["deadLetter"]["properties"])
    check_model(FunctionUrl, props["functionUrl"]["properties"])
    assert props["functionUrl"]["properties"]["invokeMode"]["enum"] == list(
        literal(FunctionUrl, "invoke_mode")
    )
    assert props["functionUrl"]["properties"]["authType"]["enum"] == list(
        literal(FunctionUrl, "auth_type")
    )
    status = schema["properties"]["status"]["properties"]
    check_model(TriggerStatus, status["triggers"]["items"]["properties"])
    assert status["triggers"]["items"]["properties"]["state"]["enum"] == list(
        literal(TriggerStatus, "state")
    )
    # the two CRDs carry the same block
    other = crd_schema("aliases.yaml" if crd == "functions.yaml" else "functions.yaml")
    assert other["properties"]["spec"]["properties"]["events"] == props["events"]
    assert other["properties"]["spec"]["properties"]["functionUrl"] == props["functionUrl"]


def literal(model: type[BaseModel], field: str) -> tuple[Any, ...]:
    return typing.get_args(model.model_fields[field].annotation)


def test_alias_spec_matches() -> None:
    props = crd_schema("aliases.yaml")["properties"]["spec"]["properties"]
    check_model(AliasSpec, props)
    check_model(RoutingConfig, props["routing"]["properties"])


def test_versions_crd_is_fresh() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_crds.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_proto_stubs_are_fresh(tmp_path: Path) -> None:
    from grpc_tools import protoc

    src = ROOT / "runtime"
    args = [
        "protoc",
        f"-I{src}",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        str(src / "klambda/proto/invoker.proto"),
        str(src / "klambda/proto/worker.proto"),
    ]
    assert protoc.main(args) == 0
    for name in [
        f"{p}{s}" for p in ("invoker", "worker") for s in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    ]:
        fresh = (tmp_path / "klambda/proto" / name).read_text()
        assert fresh == (src / "klambda/proto" / name).read_text(), f"{name} is stale: make proto"
