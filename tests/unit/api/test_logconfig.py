"""loggingConfig and logRetentionInDays: Lambda's values, refusals naming the field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from klambda.api.manifest import parse_document

from tests.unit.api.test_function_spec import function


def test_text_is_the_default_and_filters_nothing() -> None:
    spec = parse_document(function()).spec
    assert spec.logging_config is None
    assert spec.logging.log_format == "Text"
    assert spec.logging.application_level is None
    assert spec.logging.system_level is None
    assert spec.log_retention_in_days is None
    assert "loggingConfig" not in spec.wire()


def test_json_levels_default_to_info() -> None:
    spec = parse_document(function(loggingConfig={"logFormat": "JSON"})).spec
    assert (spec.logging.application_level, spec.logging.system_level) == ("INFO", "INFO")


def test_json_with_levels() -> None:
    spec = parse_document(
        function(
            loggingConfig={
                "logFormat": "JSON",
                "applicationLogLevel": "WARN",
                "systemLogLevel": "DEBUG",
            },
            logRetentionInDays=14,
        )
    ).spec
    assert (spec.logging.application_level, spec.logging.system_level) == ("WARN", "DEBUG")
    assert spec.log_retention_in_days == 14
    assert spec.wire()["loggingConfig"] == {
        "logFormat": "JSON",
        "applicationLogLevel": "WARN",
        "systemLogLevel": "DEBUG",
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"loggingConfig": {"logFormat": "json"}}, "spec.loggingConfig.logFormat: Input should"),
        (
            {"loggingConfig": {"logFormat": "JSON", "applicationLogLevel": "WARNING"}},
            "spec.loggingConfig.applicationLogLevel: Input should be 'TRACE'",
        ),
        (
            {"loggingConfig": {"logFormat": "JSON", "systemLogLevel": "ERROR"}},
            "spec.loggingConfig.systemLogLevel: Input should be 'DEBUG', 'INFO' or 'WARN'",
        ),
        (
            {"loggingConfig": {"applicationLogLevel": "WARN"}},
            "applicationLogLevel need logFormat JSON",
        ),
        (
            {"loggingConfig": {"logFormat": "Text", "systemLogLevel": "WARN"}},
            "systemLogLevel need logFormat JSON",
        ),
        ({"loggingConfig": {"logGroup": "/x"}}, "spec.loggingConfig.logGroup: Extra inputs"),
        ({"logRetentionInDays": 2}, "spec.logRetentionInDays: 2 is not a retention"),
        ({"logRetentionInDays": 0}, "one of 1, 3, 5, 7, 14, 30"),
    ],
)
def test_refused_naming_field(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_document(function(**spec))


def test_metric_filters() -> None:
    spec = parse_document(
        function(
            metricFilters=[
                {"name": "errors", "filterPattern": "ERROR -Retrying", "metricName": "Errors"},
                {
                    "name": "latency",
                    "filterPattern": "{ $.latency > 0 }",
                    "metricName": "Latency",
                    "metricValue": "$.latency",
                    "defaultValue": 0,
                },
            ]
        )
    ).spec
    assert spec.metric_filters is not None
    assert [f.metric_value for f in spec.metric_filters] == ["1", "$.latency"]
    assert spec.metric_filters[1].default_value == 0


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            [{"name": "x", "filterPattern": "{ $.level = }", "metricName": "M"}],
            "spec.metricFilters.0.filterPattern: filter pattern '{ $.level = }': column 13",
        ),
        (
            [{"name": "x", "filterPattern": "", "metricName": "M", "metricValue": "lots"}],
            "spec.metricFilters.0.metricValue: 'lots' is not a metric value",
        ),
        (
            [{"name": "a:b", "filterPattern": "", "metricName": "M"}],
            "spec.metricFilters.0.name: String should match pattern",
        ),
        (
            [{"name": "x", "filterPattern": "", "metricName": "M"}] * 2,
            "metric filter names must be unique: x",
        ),
        (
            [{"name": f"f{i}", "filterPattern": "", "metricName": "M"} for i in range(101)],
            "101 metric filters, more than CloudWatch's 100",
        ),
        ([{"name": "x", "metricName": "M"}], "spec.metricFilters.0.filterPattern: Field required"),
    ],
)
def test_bad_metric_filters(filters: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_document(function(metricFilters=filters))
