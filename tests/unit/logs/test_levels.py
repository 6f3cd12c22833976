"""Level ranks: Lambda's order, Python's names, and the environment's own copy."""

from __future__ import annotations

import pytest
from klambda.api import logconfig
from klambda.environment import bootstrap
from klambda.logs import levels


def test_the_environment_ranks_levels_as_the_data_plane_does() -> None:
    assert bootstrap.LEVEL_RANK == levels.RANK
    assert set(bootstrap.PYTHON_LEVEL) == set(logconfig.APPLICATION_LOG_LEVELS)


def test_application_levels_are_in_lambdas_order() -> None:
    ranks = [levels.RANK[name] for name in logconfig.APPLICATION_LOG_LEVELS]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


@pytest.mark.parametrize(
    ("level", "threshold", "kept"),
    [
        ("INFO", None, True),
        ("DEBUG", "INFO", False),
        ("INFO", "WARN", False),
        ("WARNING", "WARN", True),
        ("warning", "WARN", True),
        ("CRITICAL", "FATAL", True),
        ("ERROR", "FATAL", False),
        (None, "INFO", True),  # no level: INFO
        ("loud", "WARN", False),  # not a level: INFO
        (7, "TRACE", True),
        ("TRACE", "DEBUG", False),
    ],
)
def test_kept(level: object, threshold: str | None, kept: bool) -> None:
    assert levels.kept(level, threshold) is kept


@pytest.mark.parametrize(
    ("env", "line", "kept"),
    [
        ({}, "anything", True),
        ({"AWS_LAMBDA_LOG_LEVEL": "ERROR"}, "text format filters nothing", True),
        ({"AWS_LAMBDA_LOG_FORMAT": "JSON"}, "plain", True),
        ({"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}, "plain", False),
        (
            {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"},
            '{"level": "warn", "msg": "x"}',
            True,
        ),
        (
            {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"},
            '{"level": "bogus"}',
            False,
        ),
        ({"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}, "{not json", False),
        (
            {"AWS_LAMBDA_LOG_FORMAT": "json", "AWS_LAMBDA_LOG_LEVEL": "trace"},
            '{"level": "trace"}',
            True,
        ),
    ],
)
def test_print_lines_are_filtered_as_lambda_reads_them(
    env: dict[str, str], line: str, kept: bool
) -> None:
    settings = bootstrap.LogSettings(env)
    assert settings.line_kept(line) is kept
