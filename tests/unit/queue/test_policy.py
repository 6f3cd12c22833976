"""A Function spec's async settings become the dispatcher's policy."""

from __future__ import annotations

import pytest
from klambda.api.function import FunctionSpec
from klambda.queue import AsyncPolicy, Target

BASE = {"handler": "app.handler", "runtime": "python3.11", "code": {"inline": {"app.py": ""}}}


def test_defaults_are_lambdas() -> None:
    p = AsyncPolicy.from_spec(FunctionSpec.model_validate(BASE))
    assert p == AsyncPolicy(retry_attempts=2, max_event_age_seconds=21600)
    assert (p.dead_letter, p.on_success, p.on_failure) == (None, None, None)


def test_spec_destinations_become_targets() -> None:
    spec = FunctionSpec.model_validate(
        {
            **BASE,
            "retryAttempts": 0,
            "maxEventAgeSeconds": 60,
            "deadLetter": {"queue": "hello-dlq"},
            "destinations": {"onSuccess": {"function": "audit"}, "onFailure": {"queue": "oops"}},
        }
    )
    p = AsyncPolicy.from_spec(spec)
    assert p == AsyncPolicy(
        retry_attempts=0,
        max_event_age_seconds=60,
        dead_letter=Target(queue="hello-dlq"),
        on_success=Target(function="audit"),
        on_failure=Target(queue="oops"),
    )
    assert str(p.on_success) == "function:audit"


@pytest.mark.parametrize("kw", [{}, {"function": "a", "queue": "b"}])
def test_a_target_is_exactly_one_thing(kw: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Target(**kw)
