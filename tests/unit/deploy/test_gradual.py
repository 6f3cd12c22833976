"""Gradual deployments' pure core: schedules, alarms over metrics, the deployer's steps."""

from __future__ import annotations

import pytest
from klambda.deploy.gradual import (
    Alarm,
    Deployer,
    DeploymentError,
    Hooks,
    Stats,
    Step,
    alarm_of_cloudwatch,
    check_expression,
    quantile_ms,
    schedule,
)


@pytest.mark.parametrize(
    ("kind", "want"),
    [
        ("AllAtOnce", [Step(1.0, 0)]),
        ("Canary10Percent5Minutes", [Step(0.1, 300), Step(1.0, 0)]),
        ("CodeDeployDefault.LambdaCanary10Percent30Minutes", [Step(0.1, 1800), Step(1.0, 0)]),
        ("Canary25Percent2Minutes", [Step(0.25, 120), Step(1.0, 0)]),
        ("Linear10PercentEvery1Minute", [*(Step(i / 10, 60) for i in range(1, 10)), Step(1.0, 0)]),
        ("Linear50PercentEvery3Minutes", [Step(0.5, 180), Step(1.0, 0)]),
        (
            "Linear30PercentEvery1Minute",
            [Step(0.3, 60), Step(0.6, 60), Step(0.9, 60), Step(1.0, 0)],
        ),
    ],
)
def test_schedules(kind: str, want: list[Step]) -> None:
    assert schedule(kind) == want


def test_time_compressed() -> None:
    assert schedule("Canary10Percent5Minutes", minute_s=0.5) == [Step(0.1, 2.5), Step(1.0, 0)]


@pytest.mark.parametrize("kind", ["Blue", "Canary0Percent5Minutes", "Linear100PercentEvery1Minute"])
def test_unknown_schedules_are_named(kind: str) -> None:
    with pytest.raises(DeploymentError, match=r"DeploymentPreference\.Type"):
        schedule(kind)


BUCKETS = {0.001: 0.0, 0.01: 50.0, 0.1: 90.0, 1.0: 100.0, float("inf"): 100.0}


def test_quantiles_as_prometheus_interpolates() -> None:
    assert quantile_ms(BUCKETS, 0.5) == pytest.approx(10.0)
    assert quantile_ms(BUCKETS, 0.9) == pytest.approx(100.0)
    assert quantile_ms(BUCKETS, 0.95) == pytest.approx(550.0)
    assert quantile_ms({}, 0.5) == 0.0


@pytest.mark.parametrize(
    ("expression", "before", "after", "fires"),
    [
        ("errors >= 1", Stats(10, 2), Stats(20, 2), False),
        ("errors >= 1", Stats(10, 2), Stats(20, 3), True),
        ("error_rate > 0.05", Stats(0, 0), Stats(100, 5), False),
        ("error_rate > 0.05", Stats(0, 0), Stats(100, 6), True),
        ("p90_ms > 50", Stats(buckets=dict.fromkeys(BUCKETS, 0.0)), Stats(buckets=BUCKETS), True),
        ("throttles > 0 or errors > 0", Stats(), Stats(throttles=1), True),
    ],
)
def test_alarm_expressions_over_what_happened_since(
    expression: str, before: Stats, after: Stats, fires: bool
) -> None:
    assert Alarm(expression=expression).firing(after.since(before), set()) is fires


def test_prometheus_alerts_by_name() -> None:
    alarm = Alarm(prometheus_alert="KlambdaErrors")
    assert alarm.firing(Stats(), {"KlambdaErrors", "Other"})
    assert not alarm.firing(Stats(), {"Other"})


def test_bad_expressions_are_named() -> None:
    with pytest.raises(DeploymentError, match="Alarms\\[0\\]"):
        check_expression("errors >>> 1", "Alarms[0]")
    with pytest.raises(DeploymentError, match="not an alarm expression"):
        check_expression("memory > 1", "Alarms[0]")


@pytest.mark.parametrize(
    ("props", "want"),
    [
        ({"MetricName": "Errors", "Statistic": "Sum", "Threshold": 1,
          "ComparisonOperator": "GreaterThanOrEqualToThreshold"}, "errors >= 1"),
        ({"MetricName": "Duration", "ExtendedStatistic": "p90", "Threshold": 500,
          "ComparisonOperator": "GreaterThanThreshold"}, "p90_ms > 500"),
        ({"MetricName": "Throttles", "Threshold": 0,
          "ComparisonOperator": "GreaterThanThreshold"}, "throttles > 0"),
    ],
)  # fmt: skip
def test_cloudwatch_alarms_on_lambda_metrics(props: dict[str, object], want: str) -> None:
    alarm = alarm_of_cloudwatch("A", {"Namespace": "AWS/Lambda", **props})
    assert alarm.expression == want


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"Namespace": "AWS/SQS", "MetricName": "X"}, "Namespace"),
        ({"Namespace": "AWS/Lambda", "MetricName": "IteratorAge",
          "ComparisonOperator": "GreaterThanThreshold"}, "MetricName"),
        ({"Namespace": "AWS/Lambda", "MetricName": "Errors",
          "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}, "ComparisonOperator"),
    ],
)  # fmt: skip
def test_cloudwatch_alarms_klambda_cannot_watch(props: dict[str, object], words: str) -> None:
    with pytest.raises(DeploymentError, match=words):
        alarm_of_cloudwatch("A", props)


class World:
    """A deployment's surroundings in memory: a clock, the weights set, errors over time."""

    def __init__(self, errors_at: float | None = None) -> None:
        self.now = 0.0
        self.weights: list[float] = []
        self.errors_at = errors_at
        self.hooks: list[str] = []
        self.lines: list[str] = []

    def stats(self) -> Stats:
        failed = self.errors_at is not None and self.now >= self.errors_at
        return Stats(invocations=self.now * 10, errors=1.0 if failed else 0.0)

    def sleep(self, s: float) -> None:
        self.now += s

    def deployer(self, failing_hook: str | None = None) -> Deployer:
        def hook(name: str) -> str | None:
            self.hooks.append(name)
            return "it raised" if name == failing_hook else None

        return Deployer(
            self.weights.append, self.stats, set, hook, self.lines.append,
            check_every_s=1.0, sleep=self.sleep, clock=lambda: self.now,
        )  # fmt: skip


ERRORS = [Alarm(expression="errors >= 1")]


def test_a_good_version_goes_all_the_way() -> None:
    w = World()
    result = w.deployer().run(
        schedule("Linear10PercentEvery1Minute", 1.0), ERRORS, Hooks("pre", "post")
    )
    assert result.succeeded
    assert w.weights == [*(i / 10 for i in range(1, 10)), 1.0]
    assert w.hooks == ["pre", "post"]
    assert w.now == pytest.approx(9.0)


def test_an_alarm_rolls_back_at_once() -> None:
    w = World(errors_at=2.0)
    result = w.deployer().run(schedule("Canary10Percent5Minutes", 1.0), ERRORS, Hooks())
    assert not result.succeeded
    assert w.weights == [0.1, 0.0]
    assert "errors >= 1" in result.message
    assert w.now == pytest.approx(2.0)


def test_errors_before_the_deployment_do_not_count() -> None:
    w = World(errors_at=0.0)
    result = w.deployer().run(schedule("Canary10Percent5Minutes", 1.0), ERRORS, Hooks())
    assert result.succeeded


def test_hooks_that_fail() -> None:
    w = World()
    result = w.deployer("pre").run(schedule("AllAtOnce"), [], Hooks("pre", "post"))
    assert (result.succeeded, w.weights) == (False, [])  # no traffic ever moved
    w = World()
    result = w.deployer("post").run(schedule("AllAtOnce"), [], Hooks("pre", "post"))
    assert (result.succeeded, w.weights) == (False, [1.0, 0.0])
