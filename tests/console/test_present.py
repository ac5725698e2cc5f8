"""Pure shaping and the SVG charts (no I/O)."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from console import charts, present
from console.upstream import Problem, Reply


def test_par_values_read_the_loans_portfolio_shape() -> None:
    data = {"par": {"par1": {"principal": "12.00", "ratio": "0.0658"},
                    "par30": {"principal": "4.00", "ratio": "0.0219"},
                    "par90": {"principal": "0.00", "ratio": "0.0000"}}}
    assert present.par_values(data) == {
        "par1": "0.0658", "par1_principal": "12.00", "par30": "0.0219",
        "par30_principal": "4.00", "par90": "0.0000", "par90_principal": "0.00"}
    assert present.par_values({"par30": "0.1"})["par30"] == "0.1"
    assert present.par_values({})["par90"] is None


def test_arrears_buckets_are_ordered_and_exclude_current() -> None:
    rows = present.arrears_buckets({"arrears_buckets": {
        "90+": {"loans": 1, "principal": "9.00"}, "current": {"loans": 5, "principal": "1.00"},
        "1-30": {"loans": 2, "principal": "3.00"}, "61-90": {"loans": 0, "principal": "0.00"},
        "31-60": {"loans": 1, "principal": "2.00"}}})
    assert [r["bucket"] for r in rows] == ["1-30", "31-60", "61-90", "90+"]
    assert rows[0] == {"bucket": "1-30", "loans": 2, "principal": "3.00"}


def test_dead_letters_grouped_most_numerous_first() -> None:
    rows = [{"service": "loans", "topic": "clients.events", "reason": "malformed"}] * 3 + [
        {"service": "payments", "topic": "payments.commands", "reason": "handler_failed"}]
    assert present.group_dead_letters(rows) == [
        ("loans", "clients.events", "malformed", 3),
        ("payments", "payments.commands", "handler_failed", 1)]


def test_oldest_and_total() -> None:
    rows = [{"created_at": "2026-11-29T10:00"}, {"created_at": "2026-11-28T09:00"}, {}]
    assert present.oldest(rows, "created_at") == {"created_at": "2026-11-28T09:00"}
    assert present.total([{"amount": "1.10"}, {"amount": "2.25"}, {}], "amount") == \
        Decimal("3.35")


def test_trend_is_in_percent_oldest_first() -> None:
    labels, series = present.trend([
        {"business_date": "2026-11-28", "par1": "0.05", "par30": "0.02", "par90": "0.01"},
        {"business_date": "2026-11-27", "par1": "0.04", "par30": "0.01", "par90": "0"}])
    assert labels == ["11-27", "11-28"]
    assert series["PAR1"] == [4.0, 5.0]


def test_unavailable_means_no_such_route_not_a_missing_resource() -> None:
    no_route = Reply("loans", "GET", "/v1/x", 404,
                     problem=Problem(404, "Not Found", "Not Found"))
    not_found = Reply("loans", "GET", "/v1/loans/1", 404, problem=Problem(
        404, "Not found", "loan 1 not found", type="https://noria.dev/problems/not_found"))
    assert no_route.unavailable and not not_found.unavailable
    assert Reply("loans", "POST", "/v1/x", 405).unavailable
    assert Reply("loans", "GET", "/v1/x", 0, error="ConnectError").unreachable


def test_items_reads_bare_lists_and_pages() -> None:
    assert Reply("n", "GET", "/", 200, data=[{"a": 1}]).items() == [{"a": 1}]
    assert Reply("n", "GET", "/", 200, data={"items": [{"a": 1}, 2]}).items() == [{"a": 1}]
    assert Reply("n", "GET", "/", 200, data={"x": 1}).items() == []


def test_charts_escape_labels() -> None:
    svg = str(charts.bar_chart([("<script>", Decimal("1"))], title="a&b",
                               value_text=["<b>"]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    line = str(charts.line_chart(["<x>"], {"<s>": [1.0]}, title="t"))
    assert "<x>" not in line and "<s>" not in line and "&lt;s&gt;" in line


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1,
                max_size=30))
def test_line_chart_points_stay_inside_the_canvas(values: list[float]) -> None:
    width, height = 640, 220
    svg = str(charts.line_chart([str(i) for i in range(len(values))], {"PAR": values},
                                title="t", width=width, height=height))
    for cx, cy in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg):
        assert 0 <= float(cx) <= width
        assert 0 <= float(cy) <= height
