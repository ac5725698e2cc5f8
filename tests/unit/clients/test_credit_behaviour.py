"""The credit policy reads behaviour: the worst days in arrears of a cycle decide whether
the limit grows, stays or shrinks; arrears and written-off loans stop new credit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.clients.domain.credit import (
    DEFAULT_BEHAVIOUR,
    BehaviourBand,
    CreditAccount,
    Granted,
    LimitPolicy,
    Refused,
    after_loan_closed,
    decide_reservation,
    move_for,
    parse_behaviour,
)

D = Decimal
POLICY = LimitPolicy(D("5000.00"), D("2500.00"), D("20000.00"))


def account(limit: str = "10000.00", cycle: int = 3) -> CreditAccount:
    return CreditAccount("c1", D(limit), cycle, D("0.00"), D("0.00"))


@pytest.mark.parametrize(("worst", "move"), [
    (0, "grow"), (7, "grow"), (8, "keep"), (30, "keep"), (31, "shrink"), (400, "shrink")])
def test_default_table(worst: int, move: str) -> None:
    assert move_for(DEFAULT_BEHAVIOUR, worst) == move


def test_grow_keep_shrink_limits() -> None:
    # cycle 3 holds 5000 + 2 * 2500 = 10000
    grown = after_loan_closed(account(), POLICY, worst_days_in_arrears=3)
    assert (grown.cycle, grown.credit_limit) == (4, D("12500.00"))    # 5000 + 3 * 2500
    kept = after_loan_closed(account(), POLICY, worst_days_in_arrears=20)
    assert (kept.cycle, kept.credit_limit) == (3, D("10000.00"))
    shrunk = after_loan_closed(account(), POLICY, worst_days_in_arrears=45)
    assert (shrunk.cycle, shrunk.credit_limit) == (2, D("7500.00"))   # 5000 + 1 * 2500
    floor = after_loan_closed(account("5000.00", cycle=1), POLICY, worst_days_in_arrears=90)
    assert (floor.cycle, floor.credit_limit) == (1, D("5000.00"))


def test_configured_table() -> None:
    bands = parse_behaviour("0:grow, 15:keep, *:shrink")
    assert bands == (BehaviourBand(0, "grow"), BehaviourBand(15, "keep"),
                     BehaviourBand(None, "shrink"))
    strict = LimitPolicy(D("5000.00"), D("2500.00"), D("20000.00"), behaviour=bands)
    assert after_loan_closed(account(), strict, worst_days_in_arrears=1).cycle == 3
    assert after_loan_closed(account(), strict, worst_days_in_arrears=0).cycle == 4
    for bad in ("7:grow", "7:grow,3:keep,*:shrink", "x:grow,*:keep", "7:double,*:keep"):
        with pytest.raises(ValueError):
            parse_behaviour(bad)


def test_arrears_and_written_off_refuse_new_credit() -> None:
    ok = decide_reservation(kyc_status="verified", blocked=False, account=account(),
                            amount=D("1000.00"))
    assert isinstance(ok, Granted)
    late = decide_reservation(kyc_status="verified", blocked=False, account=account(),
                              amount=D("1000.00"), loans_in_arrears=1)
    assert isinstance(late, Refused) and late.reason == "client_in_arrears"
    held = decide_reservation(kyc_status="verified", blocked=False, account=account(),
                              amount=D("1000.00"), written_off_hold=True)
    assert isinstance(held, Refused) and held.reason == "written_off_loan"
