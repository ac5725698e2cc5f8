"""The posting rules of each business event, as ledger entries (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from services.payments.domain import accounts as acc
from services.payments.domain.ledger import ZERO, Entry, Line, credit, debit
from shared.errors import InvalidInput


def funding(provider: str, amount: Decimal, transfer_id: str) -> Entry:
    """Float placed with a provider: Dr settlement / Cr funding."""
    return Entry(transfer_id, "funding",
                 (debit(acc.settlement(provider), amount), credit(acc.FUNDING, amount)),
                 provider=provider)


def disbursement(saga_id: str, loan_id: str, provider: str, amount: Decimal) -> Entry:
    """The payout of a loan: Dr portfolio (that loan) / Cr provider settlement."""
    return Entry(f"disbursement:{saga_id}", "disbursement",
                 (debit(acc.portfolio(loan_id), amount), credit(acc.settlement(provider), amount)),
                 loan_id=loan_id, provider=provider)


def collection(payment_id: str, loan_id: str, provider: str, amount: Decimal) -> Entry:
    """Money received for a loan: Dr provider settlement / Cr repayment suspense."""
    return Entry(f"collection:{payment_id}", "collection",
                 (debit(acc.settlement(provider), amount), credit(acc.SUSPENSE, amount)),
                 loan_id=loan_id, provider=provider)


COMPONENT_ACCOUNT = {
    "interest": acc.INTEREST_INCOME,
    "fees": acc.FEE_INCOME,
    "penalties": acc.PENALTY_INCOME,
}


def repayment(payment_id: str, loan_id: str, amount: Decimal,
              parts: Mapping[str, Decimal]) -> Entry:
    """Move an allocated repayment out of suspense.

    ``parts`` maps ``principal``/``interest``/``fees``/``penalties`` to amounts
    that must add up to ``amount``: principal reduces the loan's portfolio
    balance, the rest is income (cash basis).
    """
    total = sum(parts.values(), ZERO)
    if total != amount:
        raise InvalidInput(f"the allocation adds up to {total}, not {amount}",
                           field="allocation")
    lines: list[Line] = [debit(acc.SUSPENSE, amount)]
    principal = parts.get("principal", ZERO)
    if principal > 0:
        lines.append(credit(acc.portfolio(loan_id), principal))
    for component, account in COMPONENT_ACCOUNT.items():
        value = parts.get(component, ZERO)
        if value > 0:
            lines.append(credit(account, value))
    unknown = set(parts) - {"principal", *COMPONENT_ACCOUNT}
    if unknown:
        raise InvalidInput(f"unknown allocation component(s) {sorted(unknown)}",
                           field="allocation")
    return Entry(f"repayment:{payment_id}", "repayment", tuple(lines), loan_id=loan_id)


def refund_due(payment_id: str, loan_id: str, amount: Decimal) -> Entry:
    """A rejected repayment is owed back: Dr suspense / Cr client payable."""
    return Entry(f"refund_due:{payment_id}", "refund_due",
                 (debit(acc.SUSPENSE, amount), credit(acc.CLIENT_PAYABLE, amount)),
                 loan_id=loan_id)


def refund_payout(payment_id: str, loan_id: str, provider: str, amount: Decimal) -> Entry:
    """The refund paid out to the wallet: Dr client payable / Cr provider settlement."""
    return Entry(f"refund:{payment_id}", "refund",
                 (debit(acc.CLIENT_PAYABLE, amount), credit(acc.settlement(provider), amount)),
                 loan_id=loan_id, provider=provider)


def write_off(loan_id: str, principal: Decimal) -> Entry:
    """Dr write-off expense / Cr loan portfolio."""
    return Entry(f"write_off:{loan_id}", "write_off",
                 (debit(acc.WRITE_OFF_EXPENSE, principal), credit(acc.portfolio(loan_id),
                                                                 principal)),
                 loan_id=loan_id)
