"""The savings account: its balances and holds, and the rules of each operation.

``ledger`` is what the account holds; ``held`` is what pending withdrawals have put
aside; ``available = ledger - held`` is what can still be withdrawn (above the
product's minimum balance). No operation ever makes ``available`` negative.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from services.savings.domain.money import ZERO
from shared.contracts.savings import payment_reference
from shared.errors import Conflict, Forbidden, InvalidInput

Status = Literal["pending_approval", "active", "dormant", "matured", "closed", "rejected"]


@dataclass(frozen=True)
class Balances:
    ledger: Decimal = ZERO
    held: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.ledger - self.held


def credit(b: Balances, amount: Decimal) -> Balances:
    if amount <= 0:
        raise InvalidInput("amount must be greater than zero", field="amount")
    return replace(b, ledger=b.ledger + amount)


def place_hold(b: Balances, amount: Decimal, *, floor: Decimal = ZERO) -> Balances:
    """Put ``amount`` aside; refused if it would take the available balance below
    ``floor`` (the product's minimum balance)."""
    if amount <= 0:
        raise InvalidInput("amount must be greater than zero", field="amount")
    if amount > b.available - floor:
        can = max(b.available - floor, ZERO)
        raise Conflict(f"the available balance allows at most {can:.2f} MAD",
                       field="amount", available_balance=f"{b.available:.2f}")
    return replace(b, held=b.held + amount)


def release_hold(b: Balances, amount: Decimal) -> Balances:
    if amount > b.held:
        raise AssertionError("releasing more than is held")
    return replace(b, held=b.held - amount)


def settle_hold(b: Balances, amount: Decimal) -> Balances:
    """The held money left the account: the hold becomes a debit."""
    if amount > b.held:
        raise AssertionError("settling more than is held")
    return Balances(ledger=b.ledger - amount, held=b.held - amount)


def post_interest(b: Balances, gross: Decimal, tax: Decimal) -> Balances:
    if gross < 0 or tax < 0 or tax > gross:
        raise AssertionError("a posting credits gross and debits at most gross in tax")
    return replace(b, ledger=b.ledger + gross - tax)


@dataclass(frozen=True)
class Account:
    id: str
    client_id: str
    partner_id: str
    product_id: str
    product_version: int
    kind: str
    status: Status
    balances: Balances
    opened_by: str
    opening_deposit: Decimal = ZERO
    blocked: bool = False
    block_reason: str | None = None
    blocked_by: str | None = None
    approved_by: str | None = None
    linked_loan_id: str | None = None
    linked_loan_closed: bool = False
    maturity_date: dt.date | None = None
    maturity_instruction: str | None = None
    last_client_txn_on: dt.date | None = None
    opened_on: dt.date | None = None
    closed_on: dt.date | None = None
    created_at: dt.datetime | None = None
    version: int = 1
    office_id: str | None = None
    office_path: str | None = None

    @property
    def payment_reference(self) -> str:
        """What the client gives a wallet to pay into this account."""
        return payment_reference(self.id)


def canonical_id(raw: str) -> str | None:
    """An account id as savings stores it (a lower-case UUID), from a path or a message
    in any case, with or without the ``SAV-`` of its payment reference; None when it
    cannot be an account id."""
    text = raw.strip()
    if text[:4].upper() == "SAV-":
        text = text[4:]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def canonical_loan_id(raw: str) -> str:
    """A loan id compared as loans stores it: a UUID in lower case (anything else as
    given, stripped)."""
    text = raw.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def opening_status(opening_deposit: Decimal, approval_above: Decimal) -> Status:
    """Maker-checker: an opening deposit above the threshold waits for a second person."""
    return "pending_approval" if opening_deposit > approval_above else "active"


def approve(a: Account, *, by: str) -> Account:
    if a.status != "pending_approval":
        raise Conflict(f"the account is {a.status}, not waiting for approval", field="status")
    if by == a.opened_by:
        raise Forbidden("maker-checker: whoever opened the account cannot approve it",
                        field="approved_by")
    return replace(a, status="active", approved_by=by)


def reject(a: Account, *, by: str) -> Account:
    if a.status != "pending_approval":
        raise Conflict(f"the account is {a.status}, not waiting for approval", field="status")
    if by == a.opened_by:
        raise Forbidden("maker-checker: whoever opened the account cannot reject it",
                        field="approved_by")
    return replace(a, status="rejected", approved_by=by)


def check_deposit(a: Account, *, opening: bool = False) -> None:
    """A blocked account still takes deposits (a block stops debits only)."""
    if a.status in ("closed", "rejected", "pending_approval"):
        raise Conflict(f"the account is {a.status}: it takes no deposit", field="account_id",
                       account_status=a.status)
    if a.kind == "term_deposit" and not opening:
        raise Conflict("a term deposit takes no deposit after it is opened",
                       field="account_id")


def check_withdrawal(a: Account) -> None:
    if a.blocked:
        raise Conflict(f"the account is blocked: {a.block_reason}", field="account_id",
                       account_status=a.status)
    if a.status == "dormant":
        raise Conflict("the account is dormant: an operator reactivates it first",
                       field="account_id", account_status=a.status)
    if a.kind == "term_deposit" and a.status != "matured":
        raise Conflict("a term deposit is paid out at maturity, or broken early",
                       field="account_id", account_status=a.status)
    if a.status not in ("active", "matured"):
        raise Conflict(f"the account is {a.status}: no withdrawal", field="account_id",
                       account_status=a.status)
    if a.kind == "compulsory" and not a.linked_loan_closed:
        raise Conflict("compulsory savings stay blocked until the loan closes",
                       field="account_id", linked_loan_id=a.linked_loan_id)


def withdrawal_fee(fee: Decimal, free_per_month: int, withdrawals_this_month: int) -> Decimal:
    """The product's fee once the month's free withdrawals are used."""
    return fee if withdrawals_this_month >= free_per_month else ZERO


def _reason(reason: str, what: str) -> str:
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput(f"{what} needs a reason", field="reason")
    return clean


def block(a: Account, *, reason: str, by: str) -> Account:
    clean = _reason(reason, "blocking")
    if a.status in ("closed", "rejected"):
        raise Conflict(f"the account is {a.status}", field="account_id")
    if a.blocked:
        raise Conflict("the account is already blocked", field="blocked")
    return replace(a, blocked=True, block_reason=clean, blocked_by=by)


def unblock(a: Account, *, reason: str) -> Account:
    _reason(reason, "unblocking")
    if not a.blocked:
        raise Conflict("the account is not blocked", field="blocked")
    return replace(a, blocked=False, block_reason=None, blocked_by=None)


def reactivate(a: Account) -> Account:
    if a.status != "dormant":
        raise Conflict(f"the account is {a.status}, not dormant", field="status")
    return replace(a, status="active")


def close(a: Account, *, on: dt.date) -> Account:
    if a.status in ("closed", "rejected"):
        raise Conflict(f"the account is already {a.status}", field="account_id")
    if a.balances.held != 0:
        raise Conflict("a withdrawal is still in flight on this account", field="account_id",
                       held_balance=f"{a.balances.held:.2f}")
    if a.balances.ledger != 0:
        raise Conflict("the balance must be paid out before the account is closed",
                       field="account_id", ledger_balance=f"{a.balances.ledger:.2f}")
    if a.kind == "compulsory" and not a.linked_loan_closed:
        raise Conflict("compulsory savings stay open until the loan closes",
                       field="account_id")
    return replace(a, status="closed", closed_on=on)
