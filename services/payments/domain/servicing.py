"""Posting rules of loan servicing (pure): early settlement's waived interest and the
interest a restructuring capitalises.

Interest is recognised either when paid (cash basis: nothing sits in the loan's interest
receivable) or day by day (accrual basis: ``interest_receivable:<loan>``). What was
recognised and is then waived comes back out of income; what was never recognised
needs no entry (a memo).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from services.payments.domain import accounts as acc
from services.payments.domain.ledger import ZERO, Entry, Line, credit, debit


def waiver_to_book(receivable: Decimal, interest_paid: Decimal, repayment_posted: bool
                   ) -> Decimal:
    """The interest receivable an early settlement leaves behind, once the settling
    payment's interest has settled what it can: recognised, never to be paid — waived.
    ``repayment_posted``: the settling payment is already in the ledger (its interest
    has already settled the receivable)."""
    left = receivable if repayment_posted else receivable - interest_paid
    return max(left, ZERO)


def interest_waiver(loan_id: str, payment_id: str, amount: Decimal, *,
                    day: dt.date | None = None) -> Entry:
    """Interest accrued but waived by an early settlement: Dr interest waived
    (contra-income) / Cr the loan's interest receivable."""
    return Entry(f"interest_waiver:{payment_id}", "interest_waiver",
                 (debit(acc.INTEREST_WAIVED, amount),
                  credit(acc.interest_receivable(loan_id), amount)),
                 loan_id=loan_id, business_date=day)


@dataclass(frozen=True)
class Capitalisation:
    entry: Entry
    from_receivable: Decimal
    reserved: Decimal


def capitalisation(loan_id: str, schedule_version: int, amount: Decimal,
                   receivable: Decimal, *, day: dt.date | None = None) -> Capitalisation:
    """Interest a restructuring turns into principal: Dr the loan's portfolio (its
    principal grows by ``amount``, as loans' outstanding principal does) / Cr its interest
    receivable for what was accrued (accrual basis), and for the rest — interest never
    recognised — Cr the loan's capitalised-interest reserve (a contra-asset: not income
    until the borrower pays it)."""
    settled = min(max(receivable, ZERO), amount)
    reserved = amount - settled
    lines: list[Line] = [debit(acc.portfolio(loan_id), amount)]
    if settled > 0:
        lines.append(credit(acc.interest_receivable(loan_id), settled))
    if reserved > 0:
        lines.append(credit(acc.capitalised_interest(loan_id), reserved))
    entry = Entry(f"capitalisation:{loan_id}:v{schedule_version}", "interest_capitalisation",
                  tuple(lines), loan_id=loan_id, business_date=day)
    return Capitalisation(entry, settled, reserved)


# -- which loan a repayment went to ------------------------------------------------------


def _norm(value: str) -> str:
    """A reference as loans reads it: any case, spaces, dashes, dots, underscores
    ignored (Crockford), so what the payer typed compares with what loans echoes."""
    return "".join(c for c in value.upper() if c not in " -_.")


def looks_like_short_reference(value: str) -> bool:
    """``L`` + 9 characters: a loan's short reference (payments does not check its check
    character: loans resolves it)."""
    text = _norm(value)
    return len(text) == 10 and text.startswith("L") and text.isalnum()


def same_loan(typed: str, resolved: str | None, loan_id: str, reference: str | None
              ) -> bool:
    """Whether loans' answer (``loan_id``, and ``reference``: what the payment carried
    when it was not the loan id) is about the loan this payment was for: the reference
    the payer typed (``typed``), or the loan it was resolved or matched to."""
    if resolved is not None and resolved == loan_id:
        return True
    if _norm(typed) == _norm(loan_id):
        return True
    if reference is not None:
        return _norm(typed) == _norm(reference)
    # loans resolved a short reference but did not echo it: the payment id matched
    return looks_like_short_reference(typed)
