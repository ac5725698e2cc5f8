"""Which savings event sends which SMS, with which figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.notifications.domain.triggers import trigger_for
from shared.contracts.savings import (
    AccountDormant,
    AccountReactivated,
    DepositPosted,
    InterestPosted,
    WithdrawalCompleted,
    WithdrawalReleased,
)

IDS = {"account_id": "sa-1", "client_id": "cl-1"}


def test_a_deposit_names_its_amount_and_the_ledger_balance() -> None:
    trig = trigger_for(DepositPosted(
        **IDS, deposit_id="d1", amount=Decimal("500.00"), channel="branch_cash",
        ledger_balance=Decimal("800.00"), available_balance=Decimal("600.00"),
        value_date=dt.date(2027, 3, 1), posted_by="op"))
    assert trig is not None
    assert (trig.template, trig.client_id, trig.loan_id) == ("deposit_received", "cl-1", None)
    assert trig.variables == {"amount": Decimal("500.00"), "balance": Decimal("800.00")}


def test_a_paid_withdrawal_names_amount_fee_and_balance() -> None:
    trig = trigger_for(WithdrawalCompleted(
        **IDS, withdrawal_id="w1", amount=Decimal("200.00"), fee=Decimal("5.00"),
        ledger_balance=Decimal("95.00"), available_balance=Decimal("95.00"),
        value_date=dt.date(2027, 3, 1)))
    assert trig is not None and trig.template == "withdrawal_paid"
    assert trig.variables == {"amount": Decimal("200.00"), "fee": Decimal("5.00"),
                              "balance": Decimal("95.00")}


def test_interest_names_the_net_credited_the_period_end_and_the_balance() -> None:
    trig = trigger_for(InterestPosted(
        **IDS, period_start=dt.date(2027, 3, 1), period_end=dt.date(2027, 3, 31),
        gross=Decimal("10.00"), withholding_tax=Decimal("2.00"), net=Decimal("8.00"),
        ledger_balance=Decimal("1008.00"), business_date=dt.date(2027, 3, 31)))
    assert trig is not None and trig.template == "interest_posted"
    assert trig.variables == {"amount": Decimal("8.00"), "period_end": dt.date(2027, 3, 31),
                              "balance": Decimal("1008.00")}


def test_dormancy_takes_the_known_balance_or_names_no_figure() -> None:
    event = AccountDormant(**IDS, last_client_transaction_on=None,
                           business_date=dt.date(2027, 3, 31))
    known = trigger_for(event, balance=Decimal("95.00"))
    assert known is not None and known.template == "account_dormant"
    assert known.variables == {"balance": Decimal("95.00")}
    unknown = trigger_for(event)
    assert unknown is not None and unknown.template == "account_dormant_no_balance"
    assert unknown.variables == {}


def test_other_savings_events_send_nothing() -> None:
    assert trigger_for(AccountReactivated(**IDS, reactivated_by="op")) is None


def test_a_released_withdrawal_says_the_money_stays_with_the_available_balance() -> None:
    trig = trigger_for(WithdrawalReleased(**IDS, withdrawal_id="w1", amount=Decimal("200.00"),
                                          reason="refused",
                                          available_balance=Decimal("1200.00")))
    assert trig is not None and trig.template == "withdrawal_released"
    assert trig.variables == {"amount": Decimal("200.00"), "available": Decimal("1200.00")}
