"""Double-entry posting rules, pure: entries balance, constrained accounts never go negative.

The database enforces the same rules again (a deferred constraint trigger and
CHECK constraints); this module is what the handlers and property tests use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import orjson

from services.payments.domain.accounts import AccountSpec, Side, spec_for
from shared.errors import Conflict, InvalidInput

ZERO = Decimal("0.00")


class Unbalanced(InvalidInput):
    code = "unbalanced_entry"


class InsufficientBalance(Conflict):
    """The entry would take an account that must not go negative below zero."""

    code = "insufficient_balance"


class TransferExists(Conflict):
    """TigerBeetle's ``exists_with_different_*``: same transfer id, different body."""

    code = "transfer_exists_with_different_body"


@dataclass(frozen=True)
class Line:
    account: str
    side: Side
    amount: Decimal

    def __post_init__(self) -> None:
        if self.amount <= 0 or self.amount != self.amount.quantize(Decimal("0.01")):
            raise InvalidInput(f"a line amount must be a positive amount in cents, "
                               f"not {self.amount}", field="amount")


def debit(account: str, amount: Decimal) -> Line:
    return Line(account, Side.DEBIT, amount)


def credit(account: str, amount: Decimal) -> Line:
    return Line(account, Side.CREDIT, amount)


@dataclass(frozen=True)
class Entry:
    transfer_id: str
    kind: str
    lines: tuple[Line, ...]
    loan_id: str | None = None
    provider: str | None = None
    reverses: str | None = None  # transfer id of the entry this one reverses
    memo: str = ""
    # The business date the entry belongs to (None: today's, by the institution's
    # clock) and its office; neither is part of "the same body" (like the memo).
    business_date: dt.date | None = None
    office_id: str | None = None

    def __post_init__(self) -> None:
        validate(self.lines)

    @property
    def amount(self) -> Decimal:
        return sum((ln.amount for ln in self.lines if ln.side is Side.DEBIT), ZERO)

    def request_hash(self) -> str:
        """What "the same body" means for idempotency: everything but the memo."""
        body = {
            "kind": self.kind, "loan_id": self.loan_id, "provider": self.provider,
            "reverses": self.reverses,
            "lines": sorted([ln.account, ln.side.value, format(ln.amount, "f")]
                            for ln in self.lines),
        }
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def reversal(self, transfer_id: str | None = None, memo: str = "") -> Entry:
        """The correcting entry: every line on the other side."""
        return Entry(
            transfer_id=transfer_id or f"reversal:{self.transfer_id}", kind=f"{self.kind}_reversal",
            lines=tuple(Line(ln.account, ln.side.other, ln.amount) for ln in self.lines),
            loan_id=self.loan_id, provider=self.provider, reverses=self.transfer_id,
            memo=memo or f"reversal of {self.transfer_id}", office_id=self.office_id,
        )


def validate(lines: Iterable[Line]) -> None:
    lines = tuple(lines)
    if len(lines) < 2:
        raise Unbalanced("an entry needs at least two lines", field="lines")
    for ln in lines:
        spec_for(ln.account)  # the chart is closed
    debits = sum((ln.amount for ln in lines if ln.side is Side.DEBIT), ZERO)
    credits = sum((ln.amount for ln in lines if ln.side is Side.CREDIT), ZERO)
    if debits != credits:
        raise Unbalanced(f"debits {debits} != credits {credits}", field="lines")


def signed(spec: AccountSpec, side: Side, amount: Decimal) -> Decimal:
    """How a line moves an account's balance in its normal direction."""
    return amount if side is spec.normal else -amount


def effect(entry: Entry) -> dict[str, Decimal]:
    """Net balance change per account (in each account's normal direction)."""
    out: dict[str, Decimal] = {}
    for ln in entry.lines:
        out[ln.account] = out.get(ln.account, ZERO) + signed(spec_for(ln.account), ln.side,
                                                            ln.amount)
    return out


def check_balances(entry: Entry, balances: Mapping[str, Decimal]) -> None:
    """Refuse the entry if it takes a non-negative account below zero."""
    for account, delta in sorted(effect(entry).items()):
        spec = spec_for(account)
        after = balances.get(account, ZERO) + delta
        if spec.non_negative and after < 0:
            raise InsufficientBalance(
                f"account {account} would go to {after}; it must not go negative",
                field="amount", account=account)
