"""Invariants of every schedule, whatever the product (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain.products import (
    Amortization,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
    ProductTerms,
)
from services.loans.domain.schedule import build_schedule
from tests.unit.loans.helpers import product

principals = st.decimals(min_value=Decimal("100.00"), max_value=Decimal("1000000.00"),
                         places=2)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.60"), places=4)
starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2035, 12, 31))


@st.composite
def loans(draw: st.DrawFn, method: InterestMethod | None = None,
          amortization: Amortization | None = None) -> tuple[ProductTerms, Decimal, int]:
    term = draw(st.integers(min_value=1, max_value=60))
    grace_principal = draw(st.integers(min_value=0, max_value=min(term - 1, 6)))
    grace_interest = draw(st.integers(min_value=0, max_value=min(term - 1, 6)))
    fees = draw(st.lists(st.one_of(
        st.builds(Fee, kind=st.just(FeeKind.FLAT), timing=st.sampled_from(FeeTiming),
                  value=st.decimals(min_value=Decimal("0"), max_value=Decimal("200"), places=2)),
        st.builds(Fee, kind=st.just(FeeKind.PERCENT_OF_PRINCIPAL),
                  timing=st.sampled_from(FeeTiming),
                  value=st.decimals(min_value=Decimal("0"), max_value=Decimal("0.05"), places=4)),
    ), max_size=2))
    terms = product(
        method or draw(st.sampled_from(InterestMethod)),
        amortization or draw(st.sampled_from(Amortization)),
        draw(st.sampled_from(Frequency)),
        str(draw(rates)),
        grace_principal=grace_principal,
        grace_interest=grace_interest,
        fees=tuple(fees),
    )
    return terms, draw(principals), term


@settings(max_examples=300, deadline=None)
@given(loans(), starts)
def test_principal_parts_sum_exactly_to_the_principal(
    loan: tuple[ProductTerms, Decimal, int], start: date
) -> None:
    terms, principal, term = loan
    schedule = build_schedule(terms, principal, term, start)
    assert len(schedule) == term
    assert sum(i.principal for i in schedule) == principal
    assert [i.number for i in schedule] == list(range(1, term + 1))


@settings(max_examples=300, deadline=None)
@given(loans(), starts)
def test_amounts_are_cents_never_negative_and_grace_is_honoured(
    loan: tuple[ProductTerms, Decimal, int], start: date
) -> None:
    terms, principal, term = loan
    schedule = build_schedule(terms, principal, term, start)
    for item in schedule:
        for amount in (item.principal, item.interest, item.fees):
            assert amount >= 0
            assert amount == amount.quantize(Decimal("0.01"))
    assert all(i.principal == 0 for i in schedule[: terms.grace_principal])
    assert all(i.interest == 0 for i in schedule[: terms.grace_interest])
    assert schedule[-1].principal > 0
    dates = [i.due_date for i in schedule]
    assert dates == sorted(set(dates)) and dates[0] > start


@settings(max_examples=300, deadline=None)
@given(loans(amortization=Amortization.EQUAL_INSTALLMENTS), starts)
def test_equal_installments_are_equal_except_the_last(
    loan: tuple[ProductTerms, Decimal, int], start: date
) -> None:
    terms, principal, term = loan
    schedule = build_schedule(terms, principal, term, start)
    after_grace = max(terms.grace_principal, terms.grace_interest)
    # fees due at disbursement sit on the first installment only: compare without fees
    regular = {i.principal + i.interest for i in schedule[after_grace:-1]}
    assert len(regular) <= 1
    if regular:
        # the last one differs from the others only by the cent roundings of the earlier
        # installments, which compound with the periodic rate on a declining balance
        (payment,) = regular
        growth = 1 + terms.annual_rate / terms.periods_per_year
        bound = Decimal("0.02") * sum(growth**k for k in range(term))
        assert abs(schedule[-1].principal + schedule[-1].interest - payment) <= bound


@settings(max_examples=200, deadline=None)
@given(loans(method=InterestMethod.DECLINING_BALANCE), starts)
def test_declining_interest_is_the_periodic_rate_on_the_balance_still_owed(
    loan: tuple[ProductTerms, Decimal, int], start: date
) -> None:
    terms, principal, term = loan
    schedule = build_schedule(terms, principal, term, start)
    r = terms.annual_rate / terms.periods_per_year
    balance, charged = principal, Decimal("0")
    for item in schedule:
        charged += (balance * r).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        balance -= item.principal
    # deferred interest (grace on interest) is moved, never lost nor invented
    assert sum(i.interest for i in schedule) == charged


@settings(max_examples=200, deadline=None)
@given(loans(method=InterestMethod.FLAT), starts)
def test_flat_interest_is_the_rate_on_the_original_principal_for_the_whole_term(
    loan: tuple[ProductTerms, Decimal, int], start: date
) -> None:
    terms, principal, term = loan
    schedule = build_schedule(terms, principal, term, start)
    expected = (principal * terms.annual_rate * term / terms.periods_per_year).quantize(
        Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert sum(i.interest for i in schedule) == expected


@settings(max_examples=200, deadline=None)
@given(loans(), starts, st.integers(min_value=1, max_value=400))
def test_preview_and_disbursed_schedules_have_identical_amounts(
    loan: tuple[ProductTerms, Decimal, int], applied_on: date, days_later: int
) -> None:
    terms, principal, term = loan
    preview = build_schedule(terms, principal, term, applied_on)
    disbursed = build_schedule(terms, principal, term, applied_on + timedelta(days=days_later))
    assert [(i.principal, i.interest, i.fees) for i in preview] == [
        (i.principal, i.interest, i.fees) for i in disbursed]
