"""Savings in payments' ledger (pure): references routed without asking anyone, and the
posting rules of savings' money."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from services.payments.domain import accounts, postings
from services.payments.domain import savings as rules
from services.payments.domain.accounts import Kind, Side
from tests.unit.payments.memory_ledger import Ledger

D = Decimal


def test_a_savings_reference_names_its_account_in_any_case() -> None:
    account = str(uuid.uuid4())
    assert rules.account_of(f"SAV-{account}") == account
    assert rules.account_of(f"  sav-{account.upper()} ") == account
    assert rules.account_of(rules.reference_for(account)) == account


@pytest.mark.parametrize("reference", ["0b7d6f4e-2c1a-4f3e-9a8b-5d6c7e8f9a01", "loan-123",
                                       "SAV-", "SAVX-1", "", None, "savings:1"])
def test_anything_else_is_not_a_savings_reference(reference: str | None) -> None:
    assert rules.account_of(reference) is None


def test_a_loan_id_can_never_look_like_a_savings_reference() -> None:
    # loans' ids are UUIDs: hexadecimal, so never "sav-…"
    for _ in range(1000):
        assert rules.account_of(str(uuid.uuid4())) is None


def test_the_deposit_liability_is_a_credit_account_per_savings_account() -> None:
    spec = accounts.spec_for(accounts.savings_deposits("acc-1"))
    assert spec.kind is Kind.SAVINGS_DEPOSITS and spec.normal is Side.CREDIT
    assert spec.non_negative is False  # the mirror may lag savings; savings is the authority
    assert accounts.spec_for(accounts.BRANCH_CASH).normal is Side.DEBIT
    assert accounts.spec_for(accounts.WITHHOLDING_TAX).non_negative is True
    with pytest.raises(ValueError):
        accounts.spec_for("savings:")


def test_savings_money_balances_and_mirrors_the_account() -> None:
    """Cash in, a wallet deposit, interest less tax, a withdrawal and its fee, a failed
    withdrawal reversed, a refused deposit refunded: every entry balances, the trial
    balance is zero, and the deposit liability is what savings would hold."""
    ledger = Ledger()
    ledger.post(postings.funding("sim", D("10000.00"), "f1"))
    acct, other = "a1", "a2"
    ledger.post(rules.branch_deposit(acct, "dep-1", D("1000.00")))
    ledger.post(rules.wallet_deposit("p1", acct, "sim", D("250.00")))
    ledger.post(rules.interest(acct, dt.date(2026, 1, 1), dt.date(2026, 1, 31), D("2.54")))
    ledger.post(rules.withholding_tax(acct, dt.date(2026, 1, 1), dt.date(2026, 1, 31),
                                      D("0.51")))
    ledger.post(rules.withdrawal_payout("w1", acct, "sim", D("200.00")))
    ledger.post(rules.withdrawal_fee("w1", acct, D("5.00")))
    failed = rules.withdrawal_payout("w2", acct, "sim", D("100.00"))
    ledger.post(failed)
    ledger.post(failed.reversal())
    ledger.post(rules.wallet_deposit("p2", other, "sim", D("80.00")))
    ledger.post(rules.refund_due("p2", other, D("80.00")))
    debits, credits = ledger.trial_balance()
    assert debits == credits
    assert ledger.balances.get(accounts.savings_deposits(acct)) == D("1047.03")
    assert ledger.balances.get(accounts.savings_deposits(other)) == D("0.00")
    assert ledger.balances.get(accounts.CLIENT_PAYABLE) == D("80.00")
    assert ledger.balances.get(accounts.BRANCH_CASH) == D("1000.00")
    assert ledger.balances.get(accounts.WITHHOLDING_TAX) == D("0.51")
    assert ledger.balances.get(accounts.FEE_INCOME) == D("5.00")


def test_transfer_ids_make_each_movement_post_once() -> None:
    a = rules.interest("a1", dt.date(2026, 1, 1), dt.date(2026, 1, 31), D("1.00"))
    b = rules.interest("a1", dt.date(2026, 1, 1), dt.date(2026, 1, 31), D("1.00"))
    assert a.transfer_id == b.transfer_id and a.request_hash() == b.request_hash()
    assert rules.wallet_deposit("p1", "a1", "sim", D("1.00")).transfer_id == "collection:p1"
    assert rules.refund_due("p1", "a1", D("1.00")).transfer_id == "refund_due:p1"
