"""Savings in the ledger (pure): telling a savings reference from a loan's, and the posting
rules of savings' money.

**References.** A wallet pays a savings account by the reference ``SAV-<account id>``
(any case; the account id is savings' own, a lower-case UUID). A loan's reference is its
id, a UUID, which can never start with ``sav-`` (``s`` and ``v`` are not hexadecimal
digits), so payments routes a collection without asking loans or savings.

**Postings** (each idempotent on its transfer id, so a redelivered or republished event
posts once):

- a wallet deposit (a confirmed collection): Dr settlement / Cr deposits,
  ``collection:<payment>``;
- ``DepositPosted`` ``branch_cash``/``opening``: Dr branch cash / Cr deposits,
  ``savings_deposit:<account>:<deposit>``;
- ``PayOutWithdrawal`` (its payout): Dr deposits / Cr settlement, ``withdrawal:<id>``
  (reversed if the payout fails);
- ``WithdrawalCompleted.fee``: Dr deposits / Cr fee income, ``savings_fee:<id>``;
- ``InterestPosted.gross``: Dr interest expense / Cr deposits, and its
  ``withholding_tax``: Dr deposits / Cr withholding tax payable,
  ``savings_interest:`` / ``savings_tax:<account>:<start>:<end>``;
- ``SavingsDepositRejected``: Dr deposits / Cr client payable, ``refund_due:<payment>``
  (then the refund payout).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.payments.domain import accounts as acc
from services.payments.domain.ledger import Entry, credit, debit

REFERENCE_PREFIX = "SAV-"


def account_of(reference: str | None) -> str | None:
    """The savings account a collection's reference names, or None for any other
    reference (a loan's)."""
    if reference is None:
        return None
    text = reference.strip()
    if not text[:len(REFERENCE_PREFIX)].upper() == REFERENCE_PREFIX:
        return None
    account = text[len(REFERENCE_PREFIX):].lower()
    return account or None


def reference_for(account_id: str) -> str:
    """The reference a client pays into ``account_id`` with."""
    return f"{REFERENCE_PREFIX}{account_id}"


def wallet_deposit(payment_id: str, account_id: str, provider: str, amount: Decimal
                   ) -> Entry:
    """A confirmed collection for a savings account: Dr settlement / Cr its deposits."""
    return Entry(f"collection:{payment_id}", "savings_collection",
                 (debit(acc.settlement(provider), amount),
                  credit(acc.savings_deposits(account_id), amount)), provider=provider)


def branch_deposit(account_id: str, deposit_id: str, amount: Decimal) -> Entry:
    """Cash taken at a branch (or an opening deposit): Dr branch cash / Cr deposits."""
    return Entry(f"savings_deposit:{account_id}:{deposit_id}", "savings_deposit",
                 (debit(acc.BRANCH_CASH, amount),
                  credit(acc.savings_deposits(account_id), amount)))


def withdrawal_payout(withdrawal_id: str, account_id: str, provider: str, amount: Decimal
                      ) -> Entry:
    """A withdrawal paid to the client's wallet: Dr deposits / Cr provider settlement
    (reversed if the payout fails)."""
    return Entry(f"withdrawal:{withdrawal_id}", "savings_withdrawal",
                 (debit(acc.savings_deposits(account_id), amount),
                  credit(acc.settlement(provider), amount)), provider=provider)


def withdrawal_fee(withdrawal_id: str, account_id: str, fee: Decimal) -> Entry:
    """The fee of a completed withdrawal: Dr deposits / Cr fee income."""
    return Entry(f"savings_fee:{withdrawal_id}", "savings_fee",
                 (debit(acc.savings_deposits(account_id), fee), credit(acc.FEE_INCOME, fee)))


def _period(account_id: str, start: dt.date, end: dt.date) -> str:
    return f"{account_id}:{start.isoformat()}:{end.isoformat()}"


def interest(account_id: str, start: dt.date, end: dt.date, gross: Decimal) -> Entry:
    """Interest of a period credited: Dr interest expense / Cr deposits."""
    return Entry(f"savings_interest:{_period(account_id, start, end)}", "savings_interest",
                 (debit(acc.INTEREST_EXPENSE, gross),
                  credit(acc.savings_deposits(account_id), gross)))


def withholding_tax(account_id: str, start: dt.date, end: dt.date, tax: Decimal) -> Entry:
    """The tax withheld on it: Dr deposits / Cr withholding tax payable."""
    return Entry(f"savings_tax:{_period(account_id, start, end)}", "savings_withholding_tax",
                 (debit(acc.savings_deposits(account_id), tax),
                  credit(acc.WITHHOLDING_TAX, tax)))


def refund_due(payment_id: str, account_id: str, amount: Decimal) -> Entry:
    """A wallet deposit savings refused is owed back: Dr deposits / Cr client payable
    (the same transfer id as a loan's, so the refund path and its retries find it)."""
    return Entry(f"refund_due:{payment_id}", "savings_refund_due",
                 (debit(acc.savings_deposits(account_id), amount),
                  credit(acc.CLIENT_PAYABLE, amount)))
