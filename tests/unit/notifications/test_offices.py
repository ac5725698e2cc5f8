"""The office filter's SQL condition over an office path."""

from __future__ import annotations

from services.notifications.repository.offices import OfficeFilter


def test_no_office_is_no_condition() -> None:
    args: list[object] = []
    assert not OfficeFilter().active
    assert OfficeFilter().sql("r.office_path", args) == "true" and args == []


def test_a_tokens_subtree_is_the_office_or_a_path_below_it_wildcards_escaped() -> None:
    args: list[object] = ["first"]
    sql = OfficeFilter(within="ho/r_souss").sql("r.office_path", args)
    assert sql == "(r.office_path = $2 OR r.office_path LIKE $3)"
    assert args == ["first", "ho/r_souss", "ho/r\\_souss/%"]


def test_an_asked_office_is_any_segment_of_the_path_and_combines_with_the_scope() -> None:
    args: list[object] = []
    sql = OfficeFilter(within="ho/r-souss", office_id="b-agadir").sql("p", args)
    assert sql == ("(p = $1 OR p LIKE $2) AND $3::text = ANY(string_to_array(p, '/'))")
    assert args == ["ho/r-souss", "ho/r-souss/%", "b-agadir"]
