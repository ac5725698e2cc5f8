"""RepaymentReceived → allocation → RepaymentApplied (+ LoanClosed) or RepaymentRejected."""

from __future__ import annotations

import logging

from services.loans.domain.allocation import Rejection, decide_repayment
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.handlers.views import next_due, outstanding
from services.loans.repository import loans as loans_repo
from services.loans.repository import products as products_repo
from services.loans.topics import emit
from shared.contracts.loans import AllocationLine as AllocationLineOut
from shared.contracts.loans import LoanClosed, RepaymentApplied, RepaymentRejected
from shared.contracts.payments import RepaymentReceived
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.repayments")


async def _reject(uow: UnitOfWork, msg: RepaymentReceived, loan: Loan | None, reason: str,
                  detail: str) -> None:
    log.info("repayment %s for loan %s rejected: %s (%s)", msg.payment_id, msg.loan_id,
             reason, detail)
    await loans_repo.record_repayment(
        uow.conn, payment_id=msg.payment_id, loan_id=msg.loan_id, amount=msg.amount,
        outcome="rejected", reason=reason, lines=[], received_at=msg.received_at)
    emit(uow, RepaymentRejected(
        loan_id=msg.loan_id, client_id=loan.client_id if loan else "",
        payment_id=msg.payment_id, amount=msg.amount, currency=msg.currency,
        payer_msisdn=msg.payer_msisdn, reason=reason,
        refundable_amount=msg.amount, detail=detail), key=msg.loan_id)


async def on_repayment_received(uow: UnitOfWork, msg: RepaymentReceived, env: Envelope
                                ) -> None:
    conn = uow.conn
    # The inbox stops a redelivered event; this stops the same payment told twice.
    loan = await loans_repo.get(conn, msg.loan_id, for_update=True)
    seen = await loans_repo.repayment_seen(conn, msg.payment_id)
    if seen is not None:
        log.info("payment %s was already %s; duplicate ignored", msg.payment_id, seen)
        return
    if loan is None:
        await _reject(uow, msg, None, "unknown_loan", f"no loan {msg.loan_id}")
        return
    if msg.currency != loan.currency:
        await _reject(uow, msg, loan, "currency_mismatch",
                      f"the loan is in {loan.currency}, the payment in {msg.currency}")
        return
    if loan.status is LoanStatus.CLOSED:
        await _reject(uow, msg, loan, "loan_closed", "the loan is already repaid")
        return
    if loan.status is not LoanStatus.ACTIVE:
        await _reject(uow, msg, loan, "loan_not_active", f"the loan is {loan.status.value}")
        return
    product = await products_repo.get(conn, loan.product_id, loan.product_version)
    assert product is not None
    items = await loans_repo.installments(conn, loan.id)
    owed = [i.owed() for i in items if i.status in ("pending", "overdue")]
    paid_on = msg.received_at.date()
    result = decide_repayment(owed, msg.amount, product.terms.allocation_order,
                              product.terms.overpayment_tolerance, as_of=paid_on)
    if isinstance(result, Rejection):
        await _reject(uow, msg, loan, "overpayment", result.detail)
        return
    await loans_repo.apply_allocation(conn, loan.id, result.lines, paid_on)
    await loans_repo.record_repayment(
        conn, payment_id=msg.payment_id, loan_id=loan.id, amount=msg.amount,
        outcome="applied", reason=None, lines=result.lines, received_at=msg.received_at)
    after = await loans_repo.installments(conn, loan.id)
    left = outstanding(after)
    nxt = next_due(after)
    closes = left["total"] == 0
    loan.principal_outstanding = left["principal"]
    if closes:
        loan.close(paid_on)
    await loans_repo.save(conn, loan)
    await loans_repo.refresh_arrears(conn, loan.id)
    emit(uow, RepaymentApplied(
        loan_id=loan.id, client_id=loan.client_id, payment_id=msg.payment_id,
        amount=msg.amount, currency=msg.currency,
        allocation=[AllocationLineOut(installment=x.installment, component=x.component,
                                      amount=x.amount) for x in result.lines],
        principal_paid=result.principal_paid, interest_paid=result.interest_paid,
        fees_paid=result.fees_paid, penalties_paid=result.penalties_paid,
        outstanding_principal=left["principal"], outstanding_total=left["total"],
        next_due_date=nxt.due_date if nxt else None,
        next_due_amount=nxt.outstanding if nxt else None, closes_loan=closes,
        unallocated=result.unallocated,
    ), key=loan.id)
    if closes:
        emit(uow, LoanClosed(loan_id=loan.id, client_id=loan.client_id,
                            principal=loan.principal, closed_on=paid_on), key=loan.id)


