"""A client transferred to another branch takes its loans' booked balances along (pure).

Every journal line carries an office, so a loan's portfolio, interest and fees
receivable, allowance and capitalised-interest reserve are booked at the branch that held the loan
when each line was posted. When clients transfers the client (``ClientTransferred``),
what each of those accounts holds at any other branch moves to the new branch, dated
the transfer's business date, one entry per loan (``office_transfer:<request>:<loan>``):

- the account itself: Cr at the old branch / Dr at the new one (the other way round
  for a credit balance such as the allowance) — the account's own total is unchanged;
- the inter-branch liaison account (``liaison:offices``) on the other side at each
  branch, so each branch's lines of the entry balance on their own, and the liaison
  nets to zero for the institution.

A per-branch balance sheet then shows the loan at its new branch, and both branches
still balance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.payments.domain import accounts as acc
from services.payments.domain.accounts import Side

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Held:
    """What one account holds at one office: its debits less its credits there."""

    account: str
    office_id: str
    net: Decimal


@dataclass(frozen=True)
class BookedLine:
    """A journal line with its own office (an entry spanning two branches)."""

    account: str
    side: Side
    amount: Decimal
    office_id: str


# the per-loan accounts whose balances follow a transferred client's loans
LOAN_ACCOUNT_PREFIXES = ("portfolio:", "interest_receivable:", "fee_receivable:",
                         "allowance:", "capitalised_interest:")


def transfer_lines(held: Iterable[Held], to_office: str) -> list[BookedLine]:
    """The lines moving every balance held at an office other than ``to_office`` to
    it, each branch's lines balanced through the liaison account. Empty when nothing
    is held elsewhere."""
    lines: list[BookedLine] = []
    for h in sorted(held, key=lambda x: (x.office_id, x.account)):
        if h.office_id == to_office or h.net == 0:
            continue
        amount = abs(h.net)
        leave, arrive = (Side.CREDIT, Side.DEBIT) if h.net > 0 else (Side.DEBIT, Side.CREDIT)
        lines += [BookedLine(h.account, leave, amount, h.office_id),
                  BookedLine(acc.INTER_OFFICE, arrive, amount, h.office_id),
                  BookedLine(h.account, arrive, amount, to_office),
                  BookedLine(acc.INTER_OFFICE, leave, amount, to_office)]
    return lines


def balanced_per_office(lines: Iterable[BookedLine]) -> bool:
    """Whether each office's lines balance on their own."""
    net: dict[str, Decimal] = {}
    for ln in lines:
        signed = ln.amount if ln.side is Side.DEBIT else -ln.amount
        net[ln.office_id] = net.get(ln.office_id, ZERO) + signed
    return all(v == 0 for v in net.values())
