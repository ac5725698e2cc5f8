"""The posting rules of each business event, as ledger entries (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from services.payments.domain import accounts as acc
from services.payments.domain.ledger import ZERO, Entry, Line, credit, debit
from shared.errors import InvalidInput

CENT = Decimal("0.01")


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


def reserve_release(reserve: Decimal, principal_paid: Decimal, portfolio: Decimal
                    ) -> Decimal:
    """The part of a loan's capitalised-interest reserve a repayment of principal
    releases to interest income. Capitalised interest is part of the principal; each
    dirham of principal repaid repays it pro rata: ``reserve * principal paid / the
    portfolio before the payment``, rounded half up to the cent — all of what is left
    when the principal is paid off (so the rounding never leaves a centime behind)."""
    if reserve <= 0 or principal_paid <= 0 or portfolio <= 0:
        return ZERO
    if principal_paid >= portfolio:
        return reserve
    share = (reserve * principal_paid / portfolio).quantize(CENT, rounding=ROUND_HALF_UP)
    return min(share, reserve)


def repayment(payment_id: str, loan_id: str, amount: Decimal,
              parts: Mapping[str, Decimal], receivable: Decimal = ZERO,
              reserve_released: Decimal = ZERO, fees_receivable: Decimal = ZERO) -> Entry:
    """Move an allocated repayment out of suspense.

    ``parts`` maps ``principal``/``interest``/``fees``/``penalties`` to amounts
    that must add up to ``amount``: principal reduces the loan's portfolio
    balance, the rest is income (cash basis). Interest first settles what was
    accrued (``receivable``, the loan's interest receivable; accrual basis), and
    only the rest is income; fees likewise settle the fees accrued when they fell due
    (``fees_receivable``) first. ``reserve_released`` (:func:`reserve_release`): interest a
    restructuring capitalised, now received with the principal — out of the loan's
    capitalised-interest reserve into interest income (Dr reserve / Cr income).
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
        if component == "interest" and receivable > 0 and value > 0:
            settled = min(receivable, value)
            lines.append(credit(acc.interest_receivable(loan_id), settled))
            value -= settled
        if component == "fees" and fees_receivable > 0 and value > 0:
            settled = min(fees_receivable, value)
            lines.append(credit(acc.fee_receivable(loan_id), settled))
            value -= settled
        if value > 0:
            lines.append(credit(account, value))
    if reserve_released > 0:
        lines += [debit(acc.capitalised_interest(loan_id), reserve_released),
                  credit(acc.INTEREST_INCOME, reserve_released)]
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


def write_off(loan_id: str, principal: Decimal, allowance: Decimal = ZERO,
              receivable: Decimal = ZERO, reserve: Decimal = ZERO,
              fees_receivable: Decimal = ZERO) -> Entry:
    """Dr write-off expense / Cr loan portfolio.

    The loan's capitalised-interest reserve is consumed first (Dr reserve: that part of
    the principal was interest never recognised, so writing it off is no loss), then
    its allowance for losses (Dr allowance; what it held beyond the principal left is
    written back to provision expense), and interest and fees accrued but unpaid are
    reversed out of income (Dr interest or fee income / Cr the receivable).
    """
    consumed = min(max(reserve, ZERO), principal)
    loss = principal - consumed
    lines: list[Line] = [credit(acc.portfolio(loan_id), principal)]
    if consumed > 0:
        lines.append(debit(acc.capitalised_interest(loan_id), consumed))
    if allowance > 0:
        lines.append(debit(acc.allowance(loan_id), allowance))
        if allowance > loss:
            lines.append(credit(acc.PROVISION_EXPENSE, allowance - loss))
    if loss > allowance:
        lines.append(debit(acc.WRITE_OFF_EXPENSE, loss - allowance))
    if receivable > 0:
        lines += [debit(acc.INTEREST_INCOME, receivable),
                  credit(acc.interest_receivable(loan_id), receivable)]
    if fees_receivable > 0:
        lines += [debit(acc.FEE_INCOME, fees_receivable),
                  credit(acc.fee_receivable(loan_id), fees_receivable)]
    if allowance <= 0 and receivable <= 0 and consumed <= 0 and fees_receivable <= 0:
        # the entry as it always was
        lines = [debit(acc.WRITE_OFF_EXPENSE, principal), credit(acc.portfolio(loan_id),
                                                                 principal)]
    return Entry(f"write_off:{loan_id}", "write_off", tuple(lines), loan_id=loan_id)


def recovery(payment_id: str, loan_id: str, amount: Decimal) -> Entry:
    """Money received on a written-off loan: Dr suspense / Cr recoveries (income)."""
    return Entry(f"repayment:{payment_id}", "recovery",
                 (debit(acc.SUSPENSE, amount), credit(acc.RECOVERY_INCOME, amount)),
                 loan_id=loan_id)


def interest_accrual(loan_id: str, day: dt.date, amount: Decimal) -> Entry:
    """A day's interest earned: Dr interest receivable / Cr interest income."""
    return Entry(f"accrual:{day.isoformat()}:{loan_id}", "interest_accrual",
                 (debit(acc.interest_receivable(loan_id), amount),
                  credit(acc.INTEREST_INCOME, amount)),
                 loan_id=loan_id, business_date=day)


def fee_accrual(loan_id: str, day: dt.date, amount: Decimal) -> Entry:
    """Fees fallen due with an installment on ``day`` (accrual basis): earned when due,
    not day by day — Dr the loan's fees receivable / Cr fee income. A repayment's fees
    then settle the receivable."""
    return Entry(f"fee_accrual:{day.isoformat()}:{loan_id}", "fee_accrual",
                 (debit(acc.fee_receivable(loan_id), amount), credit(acc.FEE_INCOME, amount)),
                 loan_id=loan_id, business_date=day)


def fee_reversal(loan_id: str, day: dt.date, amount: Decimal) -> Entry:
    """A loan entering non-accrual: its fees due but unpaid leave income."""
    return Entry(f"fee_reversal:{day.isoformat()}:{loan_id}", "fee_reversal",
                 (debit(acc.FEE_INCOME, amount), credit(acc.fee_receivable(loan_id), amount)),
                 loan_id=loan_id, business_date=day)


def interest_reversal(loan_id: str, day: dt.date, amount: Decimal) -> Entry:
    """A loan entering non-accrual: its accrued-but-unpaid interest leaves income."""
    return Entry(f"interest_reversal:{day.isoformat()}:{loan_id}", "interest_reversal",
                 (debit(acc.INTEREST_INCOME, amount),
                  credit(acc.interest_receivable(loan_id), amount)),
                 loan_id=loan_id, business_date=day)


def provision(loan_id: str, day: dt.date, delta: Decimal) -> Entry:
    """The change of a loan's provision: charged (Dr expense / Cr allowance) when
    ``delta`` > 0, written back (Dr allowance / Cr expense) when it is < 0."""
    amount = abs(delta)
    if delta > 0:
        lines = (debit(acc.PROVISION_EXPENSE, amount), credit(acc.allowance(loan_id), amount))
        kind = "provision"
    else:
        lines = (debit(acc.allowance(loan_id), amount), credit(acc.PROVISION_EXPENSE, amount))
        kind = "provision_release"
    return Entry(f"provision:{day.isoformat()}:{loan_id}", kind, lines, loan_id=loan_id,
                 business_date=day)


# -- branch cash collections and standing instructions (issues 15 and 16) -------------------


def cash_collection(collection_id: str, loan_id: str, cash_account: str, amount: Decimal,
                    *, office_id: str | None = None, day: dt.date | None = None) -> Entry:
    """Cash an officer collected for a loan: Dr the branch's cash / Cr repayment suspense
    (then allocated by loans like any repayment)."""
    return Entry(f"cash_collection:{collection_id}", "cash_collection",
                 (debit(cash_account, amount), credit(acc.SUSPENSE, amount)),
                 loan_id=loan_id, provider="cash", office_id=office_id, business_date=day)


def cash_difference(reconciliation_id: str, cash_account: str, suspense_account: str,
                    difference: Decimal, *, office_id: str | None = None,
                    day: dt.date | None = None) -> Entry:
    """A branch's day-end count against what its sheets recorded (``difference`` =
    declared - expected, not zero): a shortage debits the branch's cash-difference
    suspense and credits its cash; an overage the reverse."""
    if difference == 0:
        raise InvalidInput("no difference to book", field="difference")
    amount = abs(difference)
    if difference < 0:
        lines = (debit(suspense_account, amount), credit(cash_account, amount))
    else:
        lines = (debit(cash_account, amount), credit(suspense_account, amount))
    return Entry(f"cash_difference:{reconciliation_id}", "cash_difference", lines,
                 office_id=office_id, business_date=day)


def standing_instruction(payment_id: str, loan_id: str, savings_account_id: str,
                         amount: Decimal, *, day: dt.date | None = None) -> Entry:
    """An installment paid from voluntary savings: Dr the account's deposits / Cr
    repayment suspense (then allocated by loans like any repayment)."""
    return Entry(f"standing_instruction:{payment_id}", "standing_instruction",
                 (debit(acc.savings_deposits(savings_account_id), amount),
                  credit(acc.SUSPENSE, amount)),
                 loan_id=loan_id, provider="savings", business_date=day)


def standing_instruction_return(payment_id: str, loan_id: str, savings_account_id: str,
                                amount: Decimal) -> Entry:
    """What loans did not take of a standing-instruction payment goes back to the
    account: Dr repayment suspense / Cr the account's deposits."""
    return Entry(f"standing_instruction_return:{payment_id}", "standing_instruction_return",
                 (debit(acc.SUSPENSE, amount),
                  credit(acc.savings_deposits(savings_account_id), amount)),
                 loan_id=loan_id, provider="savings")
