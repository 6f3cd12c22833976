"""The console's HTML pages: the functions' list and one function's page, as Lambda's
console shows them (configuration, versions and aliases, concurrency, the Monitor tab's
charts, recent log lines). Pure: the router hands in `FunctionView`s.

No script: the pages refresh themselves (a meta refresh) and the charts are inline SVG, so
a page needs nothing but itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

from klambda.console.charts import Series, fmt, line_chart
from klambda.console.series import Point, Sample

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#16191f;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #d5dbdb;padding:4px 8px;
text-align:left;font-size:.9em}th{background:#f2f3f3}
.charts{display:flex;flex-wrap:wrap;gap:10px}.chart{background:#fff;border:1px solid #d5dbdb}
.chart .title{font-size:12px;font-weight:600}.chart .tick{font-size:10px;fill:#545b64}
.chart .legend{font-size:10px}.chart .plot{fill:none;stroke:#d5dbdb}
.chart .grid{stroke:#eaeded}pre{background:#fff;border:1px solid #d5dbdb;padding:8px;
font-size:.8em;max-height:24em;overflow:auto}.num{text-align:right}
"""


@dataclass(frozen=True)
class VersionRow:
    version: str
    description: str
    memory_mb: int
    timeout_s: int
    code_sha256: str
    state: str
    provisioned: int


@dataclass(frozen=True)
class AliasRow:
    name: str
    version: str
    weights: Mapping[str, float]
    description: str
    provisioned: int


@dataclass(frozen=True)
class FunctionView:
    name: str
    configuration: Mapping[str, Any]  # Lambda's FunctionConfiguration of $LATEST
    reserved: int | None
    versions: Sequence[VersionRow] = ()
    aliases: Sequence[AliasRow] = ()
    points: Sequence[Point] = ()
    window: Point | None = None
    latest: Sample | None = None
    logs: Sequence[str] = ()
    provisioned_autoscaling: Sequence[str] = field(default_factory=tuple)


def _page(title: str, body: str, refresh: int) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{refresh}'>"
        # no favicon request (its 404 would be a console error)
        "<link rel='icon' href='data:,'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _opt(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{fmt(v)}{unit}"


def _cost(v: float) -> str:
    return f"${v:.6f}" if v < 0.01 else f"${v:.2f}"


def index(functions: Sequence[FunctionView], span_s: float, refresh: int = 5) -> str:
    """Every function, with the last `span_s` seconds' totals."""
    rows = []
    for f in functions:
        w = f.window
        c = f.configuration
        rows.append(
            "<tr>"
            f"<td><a href='/console/functions/{quote(f.name)}'>{escape(f.name)}</a></td>"
            f"<td>{escape(str(c.get('Runtime', '')))}</td>"
            f"<td class='num'>{c.get('MemorySize', '')}</td>"
            f"<td class='num invocations'>{_opt(w.invocations if w else 0.0)}</td>"
            f"<td class='num'>{_opt(w.errors if w else 0.0)}</td>"
            f"<td class='num'>{_opt(w.success_rate if w else None, ' %')}</td>"
            f"<td class='num'>{_opt(w.p90_ms if w else None, ' ms')}</td>"
            f"<td class='num'>{_opt(w.throttles if w else 0.0)}</td>"
            f"<td class='num'>{_opt(f.latest.concurrent if f.latest else 0.0)}</td>"
            f"<td class='num'>{_opt(w.cold_starts if w else 0.0)}</td>"
            f"<td class='num'>{_cost(w.cost if w else 0.0)}</td>"
            "</tr>"
        )
    minutes = fmt(span_s / 60.0)
    body = (
        "<h1>klambda: functions</h1>"
        f"<p>The last {minutes} minutes of this router's history.</p>"
        "<table id='functions'><tr><th>Function</th><th>Runtime</th><th>Memory (MB)</th>"
        "<th>Invocations</th><th>Errors</th><th>Success rate</th><th>Duration p90</th>"
        "<th>Throttles</th><th>Concurrent executions</th><th>Cold starts</th>"
        "<th>Estimated cost</th></tr>" + "".join(rows) + "</table>"
    )
    if not functions:
        body += "<p>No functions.</p>"
    return _page("klambda console", body, refresh)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    return (
        f"<table id='{table_id}'><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        + "</table>"
    )


def _weights(a: AliasRow) -> str:
    rest = 1.0 - sum(a.weights.values())
    parts = [f"{a.version}: {rest * 100:.0f} %"]
    parts += [f"{v}: {w * 100:.0f} %" for v, w in sorted(a.weights.items())]
    return ", ".join(parts)


def charts(f: FunctionView, now: float, span_s: float) -> list[str]:
    p = f.points

    def s(label: str, get: Any) -> Series:
        return Series(label, [(x.t, get(x)) for x in p])

    specs: list[tuple[str, str, str, list[Series]]] = [
        ("invocations", "Invocations", "", [s("invocations", lambda x: x.invocations)]),
        (
            "errors",
            "Errors and success rate",
            "",
            [s("errors", lambda x: x.errors), s("success %", lambda x: x.success_rate)],
        ),
        (
            "duration",
            "Duration",
            "ms",
            [
                s("p50", lambda x: x.p50_ms),
                s("p90", lambda x: x.p90_ms),
                s("p99", lambda x: x.p99_ms),
            ],
        ),
        ("throttles", "Throttles", "", [s("throttles", lambda x: x.throttles)]),
        (
            "concurrent",
            "Concurrent executions",
            "",
            [s("concurrent", lambda x: x.concurrent)],
        ),
        ("cold-starts", "Cold starts", "", [s("cold starts", lambda x: x.cold_starts)]),
        (
            "provisioned",
            "Provisioned concurrency utilization",
            "",
            [s("utilization", lambda x: x.provisioned_utilization)],
        ),
        ("cost", "Estimated cost", "$", [s("cost", lambda x: x.cost)]),
    ]
    return [
        line_chart(title, unit, series, now, span_s, f"chart-{cid}")
        for cid, title, unit, series in specs
    ]


def function_page(f: FunctionView, now: float, span_s: float, refresh: int = 5) -> str:
    """One function's page; the charts span the history kept so far (a minute at least)."""
    if f.points:
        span_s = min(span_s, max(60.0, now - f.points[0].t))
    c = f.configuration
    w = f.window
    config_rows = [
        (k, str(c.get(k, "")))
        for k in ("FunctionArn", "Runtime", "Handler", "MemorySize", "Timeout", "CodeSha256")
    ]
    config_rows += [("Description", str(c.get("Description", "")))]
    config_rows += [("Log format", str((c.get("LoggingConfig") or {}).get("LogFormat", "")))]
    env = (c.get("Environment") or {}).get("Variables") or {}
    config_rows += [(f"Environment {k}", str(v)) for k, v in sorted(env.items())]
    concurrency = [
        ("Reserved concurrency", "unreserved" if f.reserved is None else str(f.reserved)),
        ("Concurrent executions now", fmt(f.latest.concurrent if f.latest else 0.0)),
        ("Provisioned concurrency now", fmt(f.latest.provisioned if f.latest else 0.0)),
        *[("Provisioned autoscaling", line) for line in f.provisioned_autoscaling],
    ]
    summary = [
        ("Invocations", _opt(w.invocations if w else 0.0)),
        ("Errors", _opt(w.errors if w else 0.0)),
        ("Success rate", _opt(w.success_rate if w else None, " %")),
        ("Duration p50", _opt(w.p50_ms if w else None, " ms")),
        ("Duration p90", _opt(w.p90_ms if w else None, " ms")),
        ("Duration p99", _opt(w.p99_ms if w else None, " ms")),
        ("Throttles", _opt(w.throttles if w else 0.0)),
        ("Cold starts", _opt(w.cold_starts if w else 0.0)),
        ("Estimated cost", _cost(w.cost if w else 0.0)),
    ]
    body = (
        f"<p><a href='/console'>Functions</a></p><h1>{escape(f.name)}</h1>"
        f"<h2>Monitor: the last {fmt(span_s / 60.0)} minutes</h2>"
        + _table(("Metric", "Value"), summary, "summary")
        + "<div class='charts'>"
        + "".join(charts(f, now, span_s))
        + "</div><h2>Configuration</h2>"
        + _table(("Setting", "Value"), config_rows, "configuration")
        + "<h2>Concurrency</h2>"
        + _table(("", ""), concurrency, "concurrency")
        + "<h2>Versions</h2>"
        + _table(
            (
                "Version",
                "Description",
                "Memory (MB)",
                "Timeout (s)",
                "CodeSha256",
                "State",
                "Provisioned",
            ),
            [
                (
                    v.version,
                    v.description,
                    str(v.memory_mb),
                    str(v.timeout_s),
                    v.code_sha256[:12],
                    v.state,
                    str(v.provisioned),
                )
                for v in f.versions
            ],
            "versions",
        )
        + "<h2>Aliases</h2>"
        + _table(
            ("Alias", "Version", "Weights", "Description", "Provisioned"),
            [
                (a.name, a.version, _weights(a), a.description, str(a.provisioned))
                for a in f.aliases
            ],
            "aliases",
        )
        + "<h2>Recent log lines</h2><pre id='logs'>"
        + escape("\n".join(f.logs))
        + "</pre>"
    )
    return _page(f"{f.name} - klambda console", body, refresh)
