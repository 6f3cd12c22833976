"""Writes charts/klambda/files/dashboard.json, the chart's Grafana dashboard, from code with
grafana-foundation-sdk (Grafana's own builders) instead of hand-kept JSON. `make dashboard`;
`--check` fails when the committed file differs from what this generates (a test runs it).

Each row is a list of panels; each panel is its title, what it shows (Lambda's metric it
stands for) and its PromQL queries. Rows for triggers and logs are added here as their
metrics land.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as enums
from grafana_foundation_sdk.models import dashboard as model

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "charts/klambda/files/dashboard.json"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
LABELS = ("namespace", "function", "version", "alias")


def sel(*labels: str, extra: str = "") -> str:
    """`{namespace=~"$namespace", function=~"$function", ...}` for the labels given."""
    parts = [f'{name}=~"${name}"' for name in labels] + ([extra] if extra else [])
    return "{" + ", ".join(parts) + "}"


ALL = sel(*LABELS)
FN = sel("namespace", "function")
FNV = sel("namespace", "function", "version")
TRG = sel("namespace", "function", "alias")


def rate(metric: str, labels: str = ALL, by: str = "function") -> str:
    return f"sum by ({by}) (rate({metric}{labels}[$__rate_interval]))"


def quantiles(metric: str, labels: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (function, le) "
            f"(rate({metric}_bucket{labels}[$__rate_interval])))",
            f"p{round(q * 100)} {{{{function}}}}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


@dataclass
class Panel:
    title: str
    description: str
    unit: str
    queries: list[tuple[str, str]]  # (PromQL, legend)
    kind: str = "timeseries"
    width: int = 12
    right_axis: dict[str, Any] | None = None  # query B on a right axis: unit, min, max


@dataclass
class Row:
    title: str
    panels: list[Panel] = field(default_factory=list)


SUCCEEDED = sel(*LABELS, extra='outcome="success"')
SUCCESS_RATE = (
    "100 * (\n"
    f"  {rate('klambda_invocations_total', SUCCEEDED)}\n"
    "    or\n"
    f"  {rate('klambda_invocations_total')} * 0\n"
    ")\n"
    f"/ {rate('klambda_invocations_total')}"
)

ROWS = [
    Row("Invocations", [
        Panel("Invocations", "Invocations that ran the function, per second (Lambda's "
              "Invocations; throttled requests are not counted).", "reqps",
              [(rate("klambda_invocations_total"), "{{function}}")]),
        Panel("Error count and success rate (%)", "Function errors per second and the share "
              "of invocations that succeeded (Lambda's Errors and success rate).", "reqps",
              [(rate("klambda_errors_total"), "errors {{function}}"),
               (SUCCESS_RATE, "success rate {{function}}")],
              right_axis={"unit": "percent", "min": 0, "max": 100}),
        Panel("Errors by reason", "Function errors per second by reason: function_error, "
              "timeout, init_error, out_of_memory, exit.", "reqps",
              [(rate("klambda_errors_total", by="function, reason"),
                "{{function}} {{reason}}")]),
        Panel("Throttles", "Requests refused with TooManyRequestsException (HTTP 429, gRPC "
              "RESOURCE_EXHAUSTED), per second, by reason (Lambda's Throttles).", "reqps",
              [(rate("klambda_throttles_total", FN, "function, reason"),
                "{{function}} {{reason}}")]),
    ]),
    Row("Duration", [
        Panel("Duration p50 / p90 / p99", "Handler run time per invocation (Lambda's "
              "Duration), from the klambda_duration_seconds histogram.", "s",
              quantiles("klambda_duration_seconds", ALL)),
        Panel("Max memory used p99", "Peak memory of the environment per invocation (the "
              "REPORT line's Max Memory Used).", "bytes",
              [(quantiles("klambda_max_memory_used_bytes", FNV)[2][0], "{{function}}")]),
    ]),
    Row("Concurrency and cold starts", [
        Panel("Concurrent executions", "Invocations running now, per function (Lambda's "
              "ConcurrentExecutions).", "short",
              [(f"sum by (function) (klambda_concurrent_executions{FN})", "{{function}}")]),
        Panel("Account and unreserved concurrent executions", "Invocations running now in "
              "all functions, and in functions without reserved concurrency (Lambda's "
              "UnreservedConcurrentExecutions).", "short",
              [(f"sum(klambda_account_concurrent_executions{sel('namespace')})", "account"),
               (f"sum(klambda_unreserved_concurrent_executions{sel('namespace')})",
                "unreserved")]),
        Panel("Cold starts", "Invocations that had to start an execution environment, per "
              "second.", "reqps",
              [(rate("klambda_cold_starts_total", FNV, "function, version"),
                "{{function}} {{version}}")]),
        Panel("Init duration p50 / p90 / p99", "Time to initialise an environment (import "
              "the handler module): the REPORT line's Init Duration.", "s",
              quantiles("klambda_init_duration_seconds", FNV)),
        Panel("Provisioned concurrency utilisation", "Busy provisioned environments over "
              "provisioned concurrency, per version (Lambda's "
              "ProvisionedConcurrencyUtilization).", "percentunit",
              [(f"max by (function, version) (klambda_provisioned_concurrency_utilization"
                f"{FNV})", "{{function}} {{version}}")]),
        Panel("Provisioned concurrency spillover", "Invocations that found every provisioned "
              "environment busy and ran on an on-demand one, per second (Lambda's "
              "ProvisionedConcurrencySpilloverInvocations).", "reqps",
              [(rate("klambda_provisioned_spillover_invocations_total",
                     by="function, version, alias"), "{{function}} {{version}} {{alias}}")]),
    ]),
    Row("Asynchronous invocation", [
        Panel("Async event age p50 / p90 / p99", "Time from an event's arrival in the queue "
              "to its invocation, retries included (Lambda's AsyncEventAge).", "s",
              quantiles("klambda_async_event_age_seconds", FN)),
        Panel("Async events received, retried and dropped", "Events accepted into the queue, "
              "retries scheduled, and events given up (retries exhausted or maximum age, then "
              "sent to the DLQ), per second (Lambda's AsyncEventsReceived and "
              "AsyncEventsDropped).", "reqps",
              [(rate("klambda_async_events_received_total", FN), "received {{function}}"),
               (rate("klambda_async_retries_total", FN, "function, reason"),
                "retried {{function}} {{reason}}"),
               (rate("klambda_async_events_dropped_total", FN, "function, reason"),
                "dropped {{function}} {{reason}}")]),
        Panel("Dead-letter queue depth and errors", "Events that failed and wait in the "
              "function's dead-letter queue, and failed writes to the DLQ or a destination per "
              "second (Lambda's DeadLetterErrors).", "short",
              [(f"sum by (function) (klambda_dlq_depth{FN})", "depth {{function}}"),
               (rate("klambda_dead_letter_errors_total", FN), "write errors {{function}}")],
              right_axis={"unit": "reqps"}),
        Panel("Iterator age", "Age of the last record processed from a stream or queue event "
              "source (Lambda's IteratorAge).", "s",
              [(f"max by (function) (klambda_iterator_age_seconds{FN})", "{{function}}")]),
    ]),
    Row("Triggers", [
        Panel("Trigger events, failures and filtered messages", "Events each trigger produced "
              "(schedule ticks fired, topic messages delivered, HTTP requests routed), trigger "
              "events that failed (given up into the DLQ, not queued, or answered badly over "
              "HTTP), and topic messages a subscription's filter policy kept out, per second.",
              "reqps",
              [(rate("klambda_trigger_events_total", TRG, "function, trigger, type"),
                "{{type}} {{function}}/{{trigger}}"),
               (rate("klambda_trigger_failures_total", TRG, "function, trigger, reason"),
                "failed {{function}}/{{trigger}} {{reason}}"),
               (rate("klambda_trigger_filtered_total", TRG, "function, trigger"),
                "filtered {{function}}/{{trigger}}")]),
        Panel("HTTP responses by status class", "Responses of HttpApi routes and function URLs "
              "by class (2xx, 4xx, 5xx), per second: API Gateway's 4XXError and 5XXError.",
              "reqps",
              [(rate("klambda_trigger_http_responses_total", TRG,
                     "function, trigger, status_class"),
                "{{status_class}} {{function}}/{{trigger}}")]),
        Panel("HTTP latency p50 / p90 / p99", "From a request's arrival to its response (a "
              "streamed one: its end), for HttpApi routes and function URLs: API Gateway's "
              "Latency.", "s",
              [(f"histogram_quantile({q}, sum by (trigger, le) (rate("
                f"klambda_trigger_http_duration_seconds_bucket{TRG}[$__rate_interval])))",
                f"p{round(q * 100)} {{{{trigger}}}}") for q in (0.5, 0.9, 0.99)]),
    ]),
    Row("Cost", [
        Panel("Estimated cost (time range)", "Requests and GB-seconds at the configured "
              "prices, before the free tier, over the dashboard's time range.", "currencyUSD",
              [(f"sum(increase(klambda_estimated_cost_dollars_total{ALL}[$__range]))", "cost")],
              kind="stat", width=6),
        Panel("Billed GB-seconds (time range)", "Billed duration (rounded up to 1 ms) times "
              "memory size, over the dashboard's time range.", "short",
              [(f"sum(increase(klambda_billed_gb_seconds_total{ALL}[$__range]))", "GB-s")],
              kind="stat", width=6),
        Panel("Estimated cost per hour", "The cost rate of each function, in dollars an "
              "hour, at the configured prices.", "currencyUSD",
              [(f"3600 * {rate('klambda_estimated_cost_dollars_total')}", "{{function}}")]),
    ]),
]  # fmt: skip


def query(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .range()
        .datasource(DATASOURCE)
    )


def build_panel(p: Panel, panel_id: int, x: int, y: int) -> Any:
    builder: Any
    if p.kind == "stat":
        builder = (
            stat.Panel()
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .color_mode(enums.BigValueColorMode.VALUE)
            .graph_mode(enums.BigValueGraphMode.NONE)
            .text_mode(enums.BigValueTextMode.VALUE)
        )
    else:
        builder = (
            timeseries.Panel()
            .draw_style(enums.GraphDrawStyle.LINE)
            .line_width(1)
            .fill_opacity(10)
            .show_points(enums.VisibilityMode.NEVER)
            .span_nulls(True)
            .legend(
                common.VizLegendOptions()
                .display_mode(enums.LegendDisplayMode.TABLE)
                .placement(enums.LegendPlacement.BOTTOM)
                .show_legend(True)
                .calcs(["mean", "max"])
            )
            .tooltip(
                common.VizTooltipOptions()
                .mode(enums.TooltipDisplayMode.MULTI)
                .sort(enums.SortOrder.DESCENDING)
            )
        )
        if p.right_axis is not None:
            props = [
                model.DynamicConfigValue(id_val="unit", value=p.right_axis["unit"]),
                model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
            ]
            for key in ("min", "max"):
                if key in p.right_axis:
                    props.append(model.DynamicConfigValue(id_val=key, value=p.right_axis[key]))
            builder = builder.override_by_query("B", props)
    builder = (
        builder.id(panel_id)
        .title(p.title)
        .description(p.description)
        .unit(p.unit)
        .datasource(DATASOURCE)
        .grid_pos(model.GridPos(h=8, w=p.width, x=x, y=y))
    )
    for i, (expr, legend) in enumerate(p.queries):
        builder = builder.with_target(query(expr, legend, "ABCDEFGH"[i]))
    return builder


def variable(name: str, label: str, selector: str) -> dashboard.QueryVariable:
    definition = f"label_values(klambda_invocations_total{selector}, {name})"
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": definition, "refId": f"{name}-values"})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def build() -> dict[str, Any]:
    board = (
        dashboard.Dashboard("klambda functions")
        .uid("klambda-functions")
        .description(
            "Lambda's console metrics for klambda functions: invocations, errors, duration, "
            "concurrency, cold starts, async queue and cost."
        )
        .tags(["klambda", "lambda", "serverless"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(variable("namespace", "Namespace", ""))
        .with_variable(variable("function", "Function", sel("namespace")))
        .with_variable(variable("version", "Version", FN))
        .with_variable(variable("alias", "Alias", FN))
    )
    y, ids = 0, iter(range(1, 1000))  # panel ids, unique in the dashboard
    for row in ROWS:
        grid = model.GridPos(h=1, w=24, x=0, y=y)
        board = board.with_row(dashboard.Row(row.title).id(next(ids)).grid_pos(grid))
        y += 1
        x = 0
        for panel in row.panels:
            board = board.with_panel(build_panel(panel, next(ids), x, y))
            x += panel.width
            if x >= 24:
                x, y = 0, y + 8
        if x:
            y += 8
    out: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return out


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        if OUT.read_text() != render():
            sys.exit(f"{OUT} is stale: run `make dashboard`")
        sys.exit(0)
    OUT.write_text(render())
