"""The console's charts and pages: well-formed SVG and HTML, values escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from klambda.console.charts import Series, line_chart, nice_max
from klambda.console.pages import AliasRow, FunctionView, VersionRow, function_page, index
from klambda.console.series import Point, Sample


@pytest.mark.parametrize(
    ("v", "want"), [(0.0, 1.0), (0.3, 0.5), (1.0, 1.0), (7.0, 10.0), (120.0, 200.0)]
)
def test_nice_max(v: float, want: float) -> None:
    assert nice_max(v) == pytest.approx(want)


def test_a_chart_is_svg_with_a_line_per_unbroken_run() -> None:
    svg = line_chart(
        "Duration",
        "ms",
        [Series("p50", [(0.0, 1.0), (5.0, 2.0), (10.0, None), (15.0, 3.0), (20.0, 4.0)])],
        now=20.0,
        span=20.0,
        chart_id="chart-duration",
    )
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == 2
    xs = [float(p.split(",")[0]) for line in lines for p in line.get("points", "").split()]
    assert xs == sorted(xs)  # time goes left to right


def _point(t: float) -> Point:
    return Point(t, 4, 1, 0, 1, 0.0001, 1, None, 10.0, 20.0, 30.0)


def test_pages_show_the_function_and_escape_what_users_wrote() -> None:
    view = FunctionView(
        name="hello",
        configuration={"Runtime": "python3.12", "MemorySize": 128, "Description": "<b>x</b>"},
        reserved=5,
        versions=[VersionRow("1", "first", 128, 3, "abc", "Active", 2)],
        aliases=[AliasRow("prod", "1", {"2": 0.1}, "", 0)],
        points=[_point(5.0), _point(10.0)],
        window=_point(10.0),
        latest=Sample(t=10.0, concurrent=1.0),
        logs=["START RequestId: 1 <script>"],
    )
    page = function_page(view, 10.0, 60.0)
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<script>" not in page
    assert "1: 90 %, 2: 10 %" in page
    assert page.count("<svg") == 8
    listing = index([view], 60.0)
    assert "href='/console/functions/hello'" in listing
    assert "<td class='num invocations'>4</td>" in listing
