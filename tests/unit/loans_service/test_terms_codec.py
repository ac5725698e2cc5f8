"""A product version is stored as JSON and read back unchanged."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain.products import (
    Amortization,
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
    Penalty,
    PenaltyKind,
    ProductTerms,
)
from services.loans.domain.terms_codec import terms_from_dict, terms_to_dict

cents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
fractions = st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4)


@given(
    method=st.sampled_from(InterestMethod), amortization=st.sampled_from(Amortization),
    frequency=st.sampled_from(Frequency), rate=fractions, low=cents, extra=cents,
    fees=st.lists(st.tuples(st.sampled_from(FeeKind), cents, st.sampled_from(FeeTiming)),
                  max_size=3),
    penalty=st.none() | st.tuples(st.sampled_from(PenaltyKind), fractions,
                                  st.integers(0, 30)),
    day_count=st.sampled_from(DayCount),
    order=st.permutations(["penalties", "fees", "interest", "principal"]),
)
def test_round_trip(method: InterestMethod, amortization: Amortization, frequency: Frequency,
                    rate: Decimal, low: Decimal, extra: Decimal,
                    fees: list[tuple[FeeKind, Decimal, FeeTiming]],
                    penalty: tuple[PenaltyKind, Decimal, int] | None, day_count: DayCount,
                    order: list[str]) -> None:
    terms = ProductTerms(
        interest_method=method, amortization=amortization, frequency=frequency,
        annual_rate=rate, min_principal=low, max_principal=low + extra, min_term=3,
        max_term=24, grace_principal=1, grace_interest=2,
        fees=tuple(Fee(*f) for f in fees),
        penalty=None if penalty is None else Penalty(*penalty), day_count=day_count,
        allocation_order=tuple(order),  # type: ignore[arg-type]
        overpayment_tolerance=Decimal("1.50"),
    )
    assert terms_from_dict(terms_to_dict(terms)) == terms
