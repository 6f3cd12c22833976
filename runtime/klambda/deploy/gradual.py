"""Gradual deployments, CodeDeploy's part in SAM: an alias's traffic shifted from its version
to a new one step by step, alarms watched between steps, hooks before and after.

The pure core: `schedule` turns a deployment type into steps (`Canary10Percent5Minutes`:
10 % for five minutes, then all; `Linear10PercentEvery1Minute`: ten steps of 10 %;
`AllAtOnce`; and any `CanaryNPercentMMinutes` / `LinearNPercentEveryMMinutes`, CodeDeploy's
custom configurations written as their names say); `Alarm` is a condition over the new
version's metrics since the deployment began (`errors >= 1`, `error_rate > 0.05`,
`p90_ms > 500`, `throttles > 0`, evaluated by simpleeval) or the name of a Prometheus alert;
`alarm_of_cloudwatch` reads a template's AWS::CloudWatch::Alarm on Lambda's metrics as one.

`Deployer` runs the steps with what it is handed (set the weight, read metrics, invoke a
hook, sleep), so the command line drives it against a router or a cluster alike and a test
drives it with time compressed (`minute_s`, the seconds one minute of the type lasts).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_AT_ONCE = "AllAtOnce"
_CANARY = re.compile(r"^(?:CodeDeployDefault\.Lambda)?Canary(\d+)Percent(\d+)Minutes?$")
_LINEAR = re.compile(r"^(?:CodeDeployDefault\.Lambda)?Linear(\d+)PercentEvery(\d+)Minutes?$")
NAMES = (
    "errors, invocations, error_rate, throttles, p50_ms, p90_ms, p99_ms, max_ms "
    "(the new version's, since the deployment began)"
)


class DeploymentError(ValueError):
    """A deployment preference klambda cannot run; the message names the field."""


@dataclass(frozen=True)
class Step:
    weight: float  # the new version's share of the alias's traffic
    wait_s: float  # how long to watch the alarms before the next step


def schedule(kind: str, minute_s: float = 60.0) -> list[Step]:
    """The steps of a deployment type; DeploymentError naming it if it is none klambda
    knows."""
    if kind in (ALL_AT_ONCE, "CodeDeployDefault.LambdaAllAtOnce"):
        return [Step(1.0, 0.0)]
    if m := _CANARY.match(kind):
        percent, minutes = int(m.group(1)), int(m.group(2))
        if not 0 < percent < 100:
            raise DeploymentError(f"DeploymentPreference.Type: {kind}: the percent must be 1-99")
        return [Step(percent / 100, minutes * minute_s), Step(1.0, 0.0)]
    if m := _LINEAR.match(kind):
        percent, minutes = int(m.group(1)), int(m.group(2))
        if not 0 < percent < 100:
            raise DeploymentError(f"DeploymentPreference.Type: {kind}: the percent must be 1-99")
        steps = [
            Step(round(percent * i / 100, 4), minutes * minute_s)
            for i in range(1, 100 // percent + 1)
            if percent * i < 100
        ]
        return [*steps, Step(1.0, 0.0)]
    raise DeploymentError(
        f"DeploymentPreference.Type: {kind!r} is not a deployment type klambda runs: "
        "AllAtOnce, CanaryNPercentMMinutes (e.g. Canary10Percent5Minutes) or "
        "LinearNPercentEveryMMinutes (e.g. Linear10PercentEvery1Minute)"
    )


# -- metrics and alarms


@dataclass(frozen=True)
class Stats:
    """Counters of one function version: cumulative, as Prometheus counts them."""

    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    # duration histogram: upper bound in seconds -> cumulative count
    buckets: Mapping[float, float] = field(default_factory=dict)

    def since(self, before: Stats) -> Stats:
        return Stats(
            self.invocations - before.invocations,
            self.errors - before.errors,
            self.throttles - before.throttles,
            {le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
        )


def quantile_ms(buckets: Mapping[float, float], q: float) -> float:
    """Prometheus's histogram_quantile over cumulative buckets, in milliseconds."""
    bounds = sorted(buckets)
    if not bounds:
        return 0.0
    total = buckets[bounds[-1]]
    if total <= 0:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower * 1000
            inside = count - below
            share = (rank - below) / inside if inside else 1.0
            return (lower + (le - lower) * share) * 1000
        lower, below = le, count
    return lower * 1000


def names_of(delta: Stats) -> dict[str, float]:
    return {
        "invocations": delta.invocations,
        "errors": delta.errors,
        "throttles": delta.throttles,
        "error_rate": delta.errors / delta.invocations if delta.invocations else 0.0,
        "p50_ms": quantile_ms(delta.buckets, 0.5),
        "p90_ms": quantile_ms(delta.buckets, 0.9),
        "p99_ms": quantile_ms(delta.buckets, 0.99),
        "max_ms": quantile_ms(delta.buckets, 1.0),
    }


@dataclass(frozen=True)
class Alarm:
    """An expression over klambda's metrics, or the name of a Prometheus alert."""

    expression: str | None = None
    prometheus_alert: str | None = None
    source: str = ""  # where it came from (a template's alarm), for messages

    def describe(self) -> str:
        what = self.expression or f"Prometheus alert {self.prometheus_alert}"
        return f"{self.source} ({what})" if self.source else what

    def firing(self, delta: Stats, alerts: set[str]) -> bool:
        if self.prometheus_alert is not None:
            return self.prometheus_alert in alerts
        assert self.expression is not None
        return bool(_evaluate(self.expression, delta))


def _evaluate(text: str, stats: Stats) -> object:
    # simpleeval comes with the `deploy` extra; imported here so that the klambda command
    # (the router and worker images, installed without it) loads without it.
    from simpleeval import simple_eval

    return simple_eval(text, names=names_of(stats))


def check_expression(text: str, field: str) -> None:
    """DeploymentError naming the field unless `text` is an alarm expression."""
    from simpleeval import InvalidExpression

    try:
        _evaluate(text, Stats())
    except (InvalidExpression, SyntaxError, TypeError) as err:
        raise DeploymentError(
            f"{field}: {text!r} is not an alarm expression over {NAMES}: {err}"
        ) from None


_OPERATORS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
_METRICS = {"Errors": "errors", "Throttles": "throttles", "Invocations": "invocations"}
_DURATION_STATS = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "Maximum": "max_ms"}


def alarm_of_cloudwatch(logical_id: str, props: Mapping[str, Any]) -> Alarm:
    """A template's AWS::CloudWatch::Alarm on Lambda's metrics as an expression over the
    new version's (Errors, Throttles, Invocations as sums; Duration by p50/p90/p99/Maximum,
    in ms); DeploymentError naming what klambda cannot watch."""
    where = f"Resources.{logical_id}.Properties"
    if props.get("Metrics"):
        raise DeploymentError(f"{where}.Metrics: metric math alarms are not supported")
    namespace, metric = props.get("Namespace"), props.get("MetricName")
    if namespace != "AWS/Lambda":
        raise DeploymentError(f"{where}.Namespace: only AWS/Lambda's metrics, not {namespace}")
    op = _OPERATORS.get(str(props.get("ComparisonOperator")))
    if op is None:
        raise DeploymentError(
            f"{where}.ComparisonOperator: {props.get('ComparisonOperator')} is not supported"
        )
    threshold = float(props.get("Threshold", 0))
    if metric in _METRICS:
        if props.get("Statistic", "Sum") not in ("Sum", "SampleCount"):
            raise DeploymentError(f"{where}.Statistic: {metric} is watched as a Sum")
        name = _METRICS[str(metric)]
    elif metric == "Duration":
        stat = props.get("ExtendedStatistic") or props.get("Statistic")
        if stat not in _DURATION_STATS:
            raise DeploymentError(
                f"{where}.ExtendedStatistic: Duration is watched by p50, p90, p99 or Maximum"
            )
        name = _DURATION_STATS[str(stat)]
    else:
        raise DeploymentError(
            f"{where}.MetricName: {metric} is not one klambda watches "
            "(Errors, Throttles, Invocations, Duration)"
        )
    return Alarm(expression=f"{name} {op} {threshold:g}", source=logical_id)


# -- running a deployment


@dataclass
class Hooks:
    pre_traffic: str | None = None
    post_traffic: str | None = None


@dataclass
class Result:
    succeeded: bool
    message: str
    weights: list[float] = field(default_factory=list)  # the weights the alias went through


@dataclass
class Deployer:
    """Shifts an alias from its version to a new one by `steps`, rolling back on an alarm
    or a failed hook. `set_weight(w)` routes `w` of the alias's traffic to the new version
    (0: all on the old one, 1: all on the new one); `stats()` reads the new version's
    counters; `alerts()` the Prometheus alerts firing; `hook(function)` invokes a hook and
    returns None when it passed, else why not; `report` is told each step."""

    set_weight: Callable[[float], None]
    stats: Callable[[], Stats]
    alerts: Callable[[], set[str]]
    hook: Callable[[str], str | None]
    report: Callable[[str], None]
    check_every_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def _alarm(self, alarms: list[Alarm], start: Stats) -> Alarm | None:
        if not alarms:
            return None
        delta = self.stats().since(start)
        alerts = self.alerts() if any(a.prometheus_alert for a in alarms) else set()
        for alarm in alarms:
            if alarm.firing(delta, alerts):
                return alarm
        return None

    def _roll_back(self, weights: list[float], why: str) -> Result:
        self.set_weight(0.0)
        weights.append(0.0)
        self.report(f"rolled back: {why}")
        return Result(False, why, weights)

    def run(self, steps: list[Step], alarms: list[Alarm], hooks: Hooks) -> Result:
        weights: list[float] = []
        if hooks.pre_traffic:
            self.report(f"pre-traffic hook {hooks.pre_traffic}")
            failed = self.hook(hooks.pre_traffic)
            if failed is not None:
                why = f"pre-traffic hook {hooks.pre_traffic} failed: {failed}"
                self.report(f"stopped before any traffic moved: {why}")
                return Result(False, why, weights)
        start = self.stats()
        for i, step in enumerate(steps, 1):
            self.set_weight(step.weight)
            weights.append(step.weight)
            self.report(f"step {i}/{len(steps)}: {step.weight:.0%} to the new version")
            until = self.clock() + step.wait_s
            while True:
                alarm = self._alarm(alarms, start)
                if alarm is not None:
                    return self._roll_back(weights, f"alarm {alarm.describe()} fired")
                left = until - self.clock()
                if left <= 0:
                    break
                self.sleep(min(self.check_every_s, left))
        if hooks.post_traffic:
            self.report(f"post-traffic hook {hooks.post_traffic}")
            failed = self.hook(hooks.post_traffic)
            if failed is not None:
                return self._roll_back(
                    weights, f"post-traffic hook {hooks.post_traffic} failed: {failed}"
                )
        alarm = self._alarm(alarms, start)
        if alarm is not None:
            return self._roll_back(weights, f"alarm {alarm.describe()} fired")
        return Result(True, "all traffic on the new version", weights)
