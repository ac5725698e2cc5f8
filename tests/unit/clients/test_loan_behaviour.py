"""Arrears facts about one loan, in any order: a fact older than what the state rests on
changes nothing, so a replayed dead letter cannot put a cured loan back in arrears."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.clients.domain import behaviour as model
from services.clients.domain.behaviour import LoanBehaviour
from services.clients.settings import ClientsSettings

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
T0 = dt.datetime(2026, 3, 1, 23, 0, tzinfo=dt.UTC)
NEW = LoanBehaviour("loan-1", "client-1")


def arrears(s: LoanBehaviour, date: dt.date, days: int, at: dt.datetime = T0
            ) -> LoanBehaviour | None:
    return model.in_arrears(s, business_date=date, at=at, days=days, bucket="1-30",
                            amount_overdue=Decimal("120.00"))


def test_arrears_then_cure() -> None:
    late = arrears(NEW, D1, 3)
    assert late is not None and late.in_arrears and late.worst_days == 3
    well = model.cured(late, business_date=D2, at=T0)
    assert well is not None and not well.in_arrears and well.worst_days == 3


def test_a_cure_before_its_arrears_keeps_the_loan_current() -> None:
    # The arrears of 1 March was dead-lettered; the cure of 2 March came first.
    cured = model.cured(NEW, business_date=D2, at=T0)
    assert cured is not None and not cured.in_arrears
    assert arrears(cured, D1, 3) is None          # the replay changes nothing


def test_same_date_ordered_by_publication() -> None:
    first = arrears(NEW, D1, 1, T0)
    assert first is not None
    cured = model.cured(first, business_date=D1, at=T0 + dt.timedelta(seconds=5))
    assert cured is not None
    assert arrears(cured, D1, 1, T0) is None


def test_an_ended_loan_takes_no_arrears_fact() -> None:
    late = arrears(NEW, D1, 12)
    assert late is not None
    off = model.ended(late, "written_off", worst_days=40)
    assert off is not None and not off.in_arrears and off.worst_days == 40
    assert arrears(off, D3, 50) is None
    assert model.cured(off, business_date=D3, at=T0) is None
    assert model.ended(off, "closed") is None


facts = st.lists(st.tuples(st.sampled_from([D1, D2, D3]), st.booleans(),
                           st.integers(1, 90)), min_size=1, max_size=6, unique_by=lambda f: f[0])


@given(facts)
def test_any_order_ends_where_the_newest_fact_says(fs: list[tuple[dt.date, bool, int]]
                                                   ) -> None:
    """Whatever order the facts of distinct dates arrive in, the loan ends up as the
    newest of them says."""
    newest = max(fs, key=lambda f: f[0])
    for order in itertools.permutations(fs):
        state = NEW
        for date, late, days in order:
            nxt = (arrears(state, date, days) if late
                   else model.cured(state, business_date=date, at=T0))
            state = nxt or state
        assert state.in_arrears == newest[1]
        assert state.as_of == newest[0]


def test_the_policy_table_comes_from_settings() -> None:
    settings = ClientsSettings(database_url="postgresql://x@127.0.0.1/x",
                               limit_policy_table="0:grow,10:keep,*:shrink")
    bands = settings.limit_policy().behaviour
    assert [(b.max_days, b.move) for b in bands] == [(0, "grow"), (10, "keep"),
                                                      (None, "shrink")]


def test_a_malformed_table_stops_start_up() -> None:
    for table in ("7:grow,30:keep", "30:grow,7:keep,*:shrink", "7:double,*:keep"):
        with pytest.raises(ValidationError):
            ClientsSettings(database_url="postgresql://x@127.0.0.1/x",
                            limit_policy_table=table)
