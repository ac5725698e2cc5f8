"""Progressive limits and reservation decisions (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.clients.domain.credit import (
    CreditAccount,
    Granted,
    LimitPolicy,
    Refused,
    after_loan_closed,
    decide_reservation,
)

D = Decimal
POLICY = LimitPolicy(D("5000.00"), D("2500.00"), D("20000.00"))


def account(limit: str = "5000.00", reserved: str = "0.00", outstanding: str = "0.00",
            cycle: int = 1) -> CreditAccount:
    return CreditAccount("c1", D(limit), cycle, D(reserved), D(outstanding))


def test_limit_grows_one_step_per_cycle_up_to_the_cap() -> None:
    assert [POLICY.limit_for_cycle(n) for n in range(1, 9)] == [
        D("5000.00"), D("7500.00"), D("10000.00"), D("12500.00"), D("15000.00"),
        D("17500.00"), D("20000.00"), D("20000.00")]


def test_policy_refuses_a_cap_below_the_first_limit() -> None:
    with pytest.raises(ValueError, match="cap"):
        LimitPolicy(D("5000.00"), D("100.00"), D("4000.00"))


def test_a_closed_loan_moves_the_client_to_the_next_cycle() -> None:
    grown = after_loan_closed(account(), POLICY)
    assert (grown.cycle, grown.credit_limit) == (2, D("7500.00"))
    capped = after_loan_closed(account("20000.00", cycle=7), POLICY)
    assert (capped.cycle, capped.credit_limit) == (8, D("20000.00"))


def test_verified_unblocked_client_within_limit_gets_credit() -> None:
    d = decide_reservation(kyc_status="verified", blocked=False,
                           account=account(reserved="1000.00", outstanding="1500.00"),
                           amount=D("2500.00"))
    assert isinstance(d, Granted)
    assert d.account.reserved == D("3500.00")
    assert d.account.exposure == D("5000.00")
    assert d.account.available == D("0.00")


@pytest.mark.parametrize(("kyc", "blocked", "acct", "amount", "reason"), [
    (None, False, None, "100.00", "unknown_client"),
    ("pending", False, account(), "100.00", "kyc_not_verified"),
    ("rejected", False, account(), "100.00", "kyc_not_verified"),
    ("verified", True, account(), "100.00", "client_blocked"),
    ("verified", False, account(outstanding="4900.00"), "100.01", "limit_exceeded"),
    ("verified", False, account(reserved="3000.00"), "3000.00", "limit_exceeded"),
])
def test_refusals_say_why(kyc: str | None, blocked: bool, acct: CreditAccount | None,
                          amount: str, reason: str) -> None:
    d = decide_reservation(kyc_status=kyc, blocked=blocked, account=acct, amount=D(amount))
    assert isinstance(d, Refused)
    assert d.reason == reason


amounts = st.decimals(min_value=D("0.01"), max_value=D("6000.00"), places=2)


@given(st.lists(amounts, max_size=30))
def test_a_sequence_of_reservations_never_exceeds_the_limit(requests: list[Decimal]) -> None:
    acct = account()
    granted = D("0.00")
    for amount in requests:
        d = decide_reservation(kyc_status="verified", blocked=False, account=acct,
                               amount=amount)
        if isinstance(d, Granted):
            acct = d.account
            granted += amount
        else:
            assert d.reason == "limit_exceeded"
            assert acct.exposure + amount > acct.credit_limit
        assert acct.exposure <= acct.credit_limit
    assert acct.reserved == granted
