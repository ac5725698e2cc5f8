"""The due-installments listing's pieces that need no database: cursors, dates, status."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.loans.api.installments import decode_cursor, encode_cursor, parse_date
from services.loans.repository.due_installments import status_of
from shared.errors import InvalidInput


# a row's loan id is text PostgreSQL stored: no NUL and no lone surrogate (those are
# refused, below)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               min_size=1, max_size=80),
       st.integers(min_value=1, max_value=10**6))
def test_a_cursor_gives_back_the_row_it_was_made_from(loan_id: str, number: int) -> None:
    cursor = encode_cursor(loan_id, number)
    assert decode_cursor(cursor) == (loan_id, number)
    assert cursor.isascii() and "=" not in cursor   # safe in a query string as it is


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "W10", encode_cursor("x", 1)[:-2],
                                    "WyJ4IiwidHJ1ZSJd", "WyJ4Iix0cnVlXQ",
                                    encode_cursor("x", 2**31), encode_cursor("x", -1),
                                    encode_cursor("a\x00b", 1), encode_cursor("\ud800", 1)])
def test_a_cursor_not_made_by_the_listing_names_the_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_cursor(cursor)
    assert err.value.field == "cursor"


def test_dates_are_iso_calendar_dates() -> None:
    assert parse_date("2026-02-05") == date(2026, 2, 5)
    for bad in ("2026-02-30", "20260205", "2026-2-5", "today", "2026-02-05T00:00"):
        with pytest.raises(InvalidInput) as err:
            parse_date(bad)
        assert err.value.field == "date"


@pytest.mark.parametrize(("total", "paid", "status"), [
    ("312.00", "0.00", "due"), ("312.00", "0.01", "partly_paid"),
    ("312.00", "311.99", "partly_paid"), ("312.00", "312.00", "paid"),
    ("0.00", "0.00", "paid")])
def test_status_follows_what_was_paid_against_what_was_due(total: str, paid: str,
                                                           status: str) -> None:
    assert status_of(Decimal(total), Decimal(paid)) == status
