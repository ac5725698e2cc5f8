"""A repayment on an active loan: payoff, early settlement, prepayment, overpayment.

- A payment at or above the payoff amount of its business date closes the loan: the
  interest not yet earned (and per-installment fees not yet due) is waived first,
  the payoff is allocated, and only the excess is left unallocated for payments to
  refund (``RepaymentApplied.excess`` = ``unallocated``), with ``LoanSettledEarly``.
- Below it, what is due is paid first (oldest installment first, the product's order);
  what goes beyond follows the product's ``prepayment_rule``: ``next_installments``
  runs on into the next installments, ``reduce_term`` / ``reduce_installment`` repay
  principal and rebuild the rest of the schedule (a new version, the old one kept,
  ``LoanScheduleRebuilt``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from services.loans.domain.allocation import AllocationLine, allocate
from services.loans.domain.loan import Loan
from services.loans.domain.payoff import Payoff, compute_payoff
from services.loans.domain.products import PrepaymentRule, ProductTerms
from services.loans.domain.rescheduling import rebuild_after_prepayment
from services.loans.handlers.views import next_due, outstanding
from services.loans.repository import repayment_path
from services.loans.repository import schedules as schedules_repo
from services.loans.repository.loans import Installment
from shared.contracts.loans import AllocationLine as AllocationLineOut
from shared.contracts.loans import (
    LoanClosed,
    LoanScheduleRebuilt,
    LoanSettledEarly,
    RepaymentApplied,
    ScheduleLine,
)
from shared.contracts.payments import RepaymentReceived
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.servicing")
ZERO = Decimal("0.00")
OPEN = ("pending", "overdue")


def quote(loan: Loan, terms: ProductTerms, items: list[Installment], as_of: date) -> Payoff:
    assert loan.disbursed_on is not None
    return compute_payoff(items, terms, loan_principal=loan.principal,
                          disbursed_on=loan.disbursed_on, as_of=as_of)


def payoff_json(loan: Loan, p: Payoff) -> dict[str, Any]:
    return {"loan_id": loan.id, "date": p.as_of.isoformat(), "currency": loan.currency,
            "principal": str(p.principal), "interest": str(p.interest),
            "fees": str(p.fees), "penalties": str(p.penalties), "total": str(p.total),
            "interest_waived": str(p.interest_waived), "fees_waived": str(p.fees_waived),
            "interest_accrued_from": p.accrued_from.isoformat() if p.accrued_from else None}


def schedule_lines(items: list[Installment]) -> list[ScheduleLine]:
    return [ScheduleLine(installment=i.number, due_date=i.due_date,
                         principal=i.principal_due - i.principal_paid,
                         interest=i.interest_due - i.interest_paid,
                         fees=i.fees_due - i.fees_paid,
                         penalties=i.penalties_due - i.penalties_paid)
            for i in items if i.status in OPEN and i.outstanding > 0]


async def apply_repayment(uow: UnitOfWork, loan: Loan, terms: ProductTerms,
                          items: list[Installment], msg: RepaymentReceived, paid_on: date
                          ) -> None:
    """Apply ``msg`` to an active loan (locked by the caller) and emit what it did."""
    conn = uow.conn
    payoff = quote(loan, terms, items, max(paid_on, loan.disbursed_on or paid_on))
    settled = msg.amount >= payoff.total
    excess = ZERO
    rebuilt: LoanScheduleRebuilt | None = None
    if settled:
        if payoff.interest_waived > 0 or payoff.fees_waived > 0:
            items = await schedules_repo.set_owed(conn, loan.id, items, payoff.settlement)
        owed = [i.owed() for i in items if i.status in OPEN]
        result = allocate(owed, payoff.total, terms.allocation_order, as_of=paid_on)
        lines = list(result.lines)
        excess = msg.amount - payoff.total
    else:
        lines, items, rebuilt = await _below_payoff(uow, loan, terms, items, msg.amount,
                                                    paid_on)
    after = await repayment_path.apply_payment(conn, loan.id, items, lines, paid_on)
    left = outstanding(after)
    nxt = next_due(after)
    closes = left["total"] == 0
    loan.principal_outstanding = left["principal"]
    if closes:
        loan.close(paid_on)
    await repayment_path.record_and_save(conn, loan, payment_id=msg.payment_id,
                                         amount=msg.amount, lines=lines,
                                         received_at=msg.received_at)
    paid = {c: sum((x.amount for x in lines if x.component == c), ZERO)
            for c in ("principal", "interest", "fees", "penalties")}
    if rebuilt is not None:
        uow.emit(rebuilt, key=loan.id)
    uow.emit(RepaymentApplied(
        loan_id=loan.id, client_id=loan.client_id, payment_id=msg.payment_id,
        amount=msg.amount, currency=msg.currency,
        allocation=[AllocationLineOut(installment=x.installment, component=x.component,
                                      amount=x.amount) for x in lines],
        principal_paid=paid["principal"], interest_paid=paid["interest"],
        fees_paid=paid["fees"], penalties_paid=paid["penalties"],
        outstanding_principal=left["principal"], outstanding_total=left["total"],
        next_due_date=nxt.due_date if nxt else None,
        next_due_amount=nxt.outstanding if nxt else None, closes_loan=closes,
        unallocated=excess, excess=excess, settled_early=settled and bool(
            payoff.interest_waived > 0 or payoff.fees_waived > 0),
        interest_waived=payoff.interest_waived if settled else ZERO,
    ), key=loan.id)
    if settled and (payoff.interest_waived > 0 or payoff.fees_waived > 0):
        uow.emit(LoanSettledEarly(
            loan_id=loan.id, client_id=loan.client_id, payment_id=msg.payment_id,
            settled_on=paid_on, payoff_amount=payoff.total, principal_paid=paid["principal"],
            interest_paid=paid["interest"], interest_waived=payoff.interest_waived,
            fees_waived=payoff.fees_waived, excess=excess, currency=loan.currency),
            key=loan.id)
    if closes:
        uow.emit(LoanClosed(loan_id=loan.id, client_id=loan.client_id,
                            principal=loan.principal, closed_on=paid_on), key=loan.id)


async def _below_payoff(uow: UnitOfWork, loan: Loan, terms: ProductTerms,
                        items: list[Installment], amount: Decimal, paid_on: date
                        ) -> tuple[list[AllocationLine], list[Installment],
                                   LoanScheduleRebuilt | None]:
    """A payment that does not close the loan: due first, then the prepayment rule."""
    open_items = [i for i in items if i.status in OPEN]
    due = [i.owed() for i in open_items if i.due_date <= paid_on]
    future = [i.owed() for i in sorted(open_items, key=lambda i: (i.due_date, i.number))
              if i.due_date > paid_on]
    due_now = sum((d.total for d in due), ZERO)
    prepaid = amount - due_now
    future_principal = sum((f.principal for f in future), ZERO)
    rule = terms.prepayment_rule
    if rule is PrepaymentRule.NEXT_INSTALLMENTS or prepaid <= 0 or not future \
            or prepaid >= future_principal:
        owed = [i.owed() for i in open_items]
        return list(allocate(owed, amount, terms.allocation_order, as_of=paid_on).lines), \
            items, None
    lines = list(allocate(due, due_now, terms.allocation_order, as_of=paid_on).lines)
    new_rows = rebuild_after_prepayment(terms, future, prepaid, rule)
    remaining = [r for k, r in enumerate(new_rows) if k == 0 or r.principal > 0]
    kept = [replace(remaining[0], principal=remaining[0].principal + prepaid), *remaining[1:]]
    interest_before = sum((f.interest for f in future), ZERO)
    version = await schedules_repo.snapshot_version(
        uow.conn, loan.id, items, reason=f"prepayment_{rule.value}", by="repayment",
        business_date=paid_on, detail={"prepaid": str(prepaid)})
    items = await schedules_repo.replace_owed(uow.conn, loan.id, items, kept,
                                              [f.number for f in future])
    lines.append(AllocationLine(future[0].number, "principal", prepaid))
    rebuilt = LoanScheduleRebuilt(
        loan_id=loan.id, client_id=loan.client_id,
        reason="prepayment_reduce_term" if rule is PrepaymentRule.REDUCE_TERM
        else "prepayment_reduce_installment",
        schedule_version=version, business_date=paid_on,
        installments=[ScheduleLine(installment=number, due_date=r.due_date,
                                   principal=r.principal, interest=r.interest, fees=r.fees,
                                   penalties=r.penalties)
                      for r, number in zip(remaining, [f.number for f in future],
                                           strict=False)],
        outstanding_principal=sum((r.principal for r in remaining), ZERO),
        interest_before=interest_before,
        interest_after=sum((r.interest for r in remaining), ZERO))
    return lines, items, rebuilt
