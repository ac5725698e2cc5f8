"""RepaymentReceived → allocation → RepaymentApplied (+ LoanClosed) or RepaymentRejected.

On an active loan the payment is applied by ``servicing.apply_repayment`` (early
settlement, prepayment rules, overpayment: only the excess is refunded)."""

from __future__ import annotations

import logging

from services.loans.domain.loan import Loan, LoanStatus
from services.loans.domain.products import ProductTerms
from services.loans.handlers import collections, servicing
from services.loans.repository import held_payments, repayment_path
from services.loans.repository import loans as loans_repo
from services.loans.repository.loans import Installment
from shared.clock import business_date
from shared.contracts.loans import RepaymentRejected
from shared.contracts.payments import RepaymentReceived
from shared.envelope import Envelope
from shared.identifiers import InvalidIdentifier, canonical_reference
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.repayments")


async def _reject(uow: UnitOfWork, msg: RepaymentReceived, loan: Loan | None, reason: str,
                  detail: str) -> None:
    # a known loan under its own id; an unknown reference as it was told
    loan_id = loan.id if loan is not None else msg.loan_id
    log.info("repayment %s for loan %s rejected: %s (%s)", msg.payment_id, loan_id,
             reason, detail)
    await loans_repo.record_repayment(
        uow.conn, payment_id=msg.payment_id, loan_id=loan_id, amount=msg.amount,
        outcome="rejected", reason=reason, lines=[], received_at=msg.received_at)
    uow.emit(RepaymentRejected(
        loan_id=loan_id, client_id=loan.client_id if loan else "",
        payment_id=msg.payment_id, amount=msg.amount, currency=msg.currency,
        payer_msisdn=msg.payer_msisdn, reason=reason,
        refundable_amount=msg.amount, detail=detail), key=loan_id)


async def on_repayment_received(uow: UnitOfWork, msg: RepaymentReceived, env: Envelope
                                ) -> None:
    conn = uow.conn
    # The reference comes from a wallet through payments: looked up in its canonical form
    # (any digits, any case); one with no canonical form names no loan.
    try:
        ref: str | None = canonical_reference(msg.loan_id, field="loan_id")
    except InvalidIdentifier:
        ref = None
    # A short reference (L…): the loan it names; a mistyped one is held for review.
    resolved = await collections.resolve_reference(uow, msg)
    if resolved == collections.HELD:
        return
    if resolved is not None:
        ref = resolved
    # The inbox stops a redelivered event; this stops the same payment told twice.
    # The loan is locked first: the read of what this payment did comes after the lock.
    locked = None if ref is None else await repayment_path.lock_with_terms(conn, ref)
    loan: Loan | None
    terms: ProductTerms | None
    items: list[Installment]
    if locked is None:
        seen = await loans_repo.repayment_seen(conn, msg.payment_id)
        loan, terms, items = None, None, []
    else:
        loan, terms = locked
        seen, items = await repayment_path.seen_and_installments(conn, loan.id, msg.payment_id)
    if seen == collections.HELD and await held_payments.release(
            conn, msg.payment_id, msg.loan_id):
        # held for review, then matched to a loan by payments' operators and told again
        # under the same payment id: decided now, once (a redelivery finds it decided)
        log.info("held payment %s matched to %s; applying it", msg.payment_id, msg.loan_id)
        seen = None
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
    if loan.status is LoanStatus.WRITTEN_OFF:
        # a recovery: applied to what was written off, the loan stays written off
        await collections.apply_recovery(uow, loan, terms, items, msg)
        return
    if loan.status is not LoanStatus.ACTIVE:
        await _reject(uow, msg, loan, "loan_not_active", f"the loan is {loan.status.value}")
        return
    assert terms is not None
    # the payment's business day: a local day in Africa/Casablanca
    paid_on = business_date(msg.received_at)
    await servicing.apply_repayment(uow, loan, terms, items, msg, paid_on)
