"""Write-offs and late-charge waivers by maker-checker, recoveries on written-off loans,
and payments told by a loan's short reference."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from decimal import Decimal
from typing import Any, Final

from services.loans.domain import reference as refs
from services.loans.domain.allocation import allocate, total_owed
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.domain.products import ProductTerms
from services.loans.handlers.views import outstanding
from services.loans.repository import loan_requests as requests_repo
from services.loans.repository import loans as loans_repo
from services.loans.repository.loans import Installment
from shared.auth import Principal
from shared.clock import business_date
from shared.contracts.loans import AllocationLine as AllocationLineOut
from shared.contracts.loans import (
    LateChargesWaived,
    LoanWriteOffProposed,
    LoanWrittenOff,
    RepaymentApplied,
    RepaymentRejected,
)
from shared.contracts.payments import RepaymentReceived
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.collections")
ZERO = Decimal("0.00")
HELD: Final = "held"
"""``resolve_reference``: the payment was held for review (nothing more to do)."""


# -- maker-checker requests -----------------------------------------------------------
async def propose_write_off(uow: UnitOfWork, who: Principal, loan: Loan, reason: str, *,
                            min_days_in_arrears: int) -> dict[str, Any]:
    loan.check_write_off(min_days_in_arrears)
    row = await requests_repo.insert(uow.conn, str(uuid.uuid4()), loan.id, "write_off", None,
                                     reason, who.sub)
    if row is None:
        pending = await requests_repo.pending_for(uow.conn, loan.id, "write_off")
        raise Conflict("a write-off of this loan is already waiting for approval",
                       field="loan_id", request_id=pending["id"] if pending else None)
    uow.emit(LoanWriteOffProposed(loan_id=loan.id, client_id=loan.client_id,
                                  request_id=row["id"], proposed_by=who.sub, reason=reason,
                                  days_in_arrears=loan.days_in_arrears), key=loan.id)
    return requests_repo.request_json(row)


async def propose_waiver(uow: UnitOfWork, who: Principal, loan: Loan, amount: Decimal | None,
                         reason: str) -> dict[str, Any]:
    if loan.status is not LoanStatus.ACTIVE:
        raise Conflict(f"late charges are waived on active loans; this one is "
                       f"{loan.status.value}", field="status")
    owed = await requests_repo.penalties_owed(uow.conn, loan.id)
    if owed <= 0:
        raise Conflict("the loan owes no late charges", field="amount")
    if amount is not None and amount > owed:
        raise InvalidInput(f"amount exceeds the {owed} MAD of late charges owed",
                           field="amount")
    row = await requests_repo.insert(uow.conn, str(uuid.uuid4()), loan.id, "waiver",
                                     amount if amount is not None else owed, reason, who.sub)
    if row is None:
        raise Conflict("a waiver on this loan is already waiting for approval",
                       field="loan_id")
    return requests_repo.request_json(row)


async def decide_request(uow: UnitOfWork, who: Principal, request_id: str, *, approve: bool,
                         min_days_in_arrears: int, today: date, reason: str = ""
                         ) -> dict[str, Any]:
    conn = uow.conn
    row = await requests_repo.get(conn, request_id, for_update=True)
    if row is None:
        raise NotFound(f"request {request_id} not found", field="request_id")
    if row["status"] != "pending":
        raise Conflict(f"the request is already {row['status']}", field="status",
                       status_now=row["status"])
    if row["proposed_by"] == who.sub:
        raise Forbidden("maker-checker: a request is decided by an operator other than the "
                        "one who proposed it", field="decided_by")
    if not approve:
        return requests_repo.request_json(await requests_repo.decide(
            conn, request_id, "rejected", who.sub))
    loan = await loans_repo.get(conn, row["loan_id"], for_update=True)
    assert loan is not None
    if row["kind"] == "write_off":
        await _write_off(uow, who, loan, row["proposed_by"], row["reason"],
                         min_days_in_arrears=min_days_in_arrears, today=today)
    else:
        waived = await requests_repo.waive_penalties(conn, loan.id, row["amount"])
        if not waived:
            raise Conflict("the loan owes no late charges any more", field="amount")
        uow.emit(LateChargesWaived(
            loan_id=loan.id, client_id=loan.client_id, request_id=request_id,
            amount=sum((a for _, a in waived), ZERO), installments=[n for n, _ in waived],
            proposed_by=row["proposed_by"], approved_by=who.sub, reason=row["reason"]),
            key=loan.id)
    return requests_repo.request_json(await requests_repo.decide(
        conn, request_id, "approved", who.sub))


async def _write_off(uow: UnitOfWork, who: Principal, loan: Loan, proposed_by: str,
                     reason: str, *, min_days_in_arrears: int, today: date) -> None:
    conn = uow.conn
    owed = outstanding(await loans_repo.installments(conn, loan.id))
    days = loan.days_in_arrears
    loan.write_off(who.sub, today, min_days_in_arrears, reason, proposed_by=proposed_by)
    await loans_repo.save(conn, loan)
    await loans_repo.write_off_installments(conn, loan.id)
    uow.emit(LoanWrittenOff(
        loan_id=loan.id, client_id=loan.client_id, principal_written_off=owed["principal"],
        interest_written_off=owed["interest"], fees_written_off=owed["fees"],
        penalties_written_off=owed["penalties"], written_off_by=who.sub,
        days_in_arrears=days, proposed_by=proposed_by, reason=reason), key=loan.id)


# -- recoveries -----------------------------------------------------------------------
async def apply_recovery(uow: UnitOfWork, loan: Loan, terms: ProductTerms | None,
                         items: list[Installment], msg: RepaymentReceived) -> None:
    """Money received on a written-off loan: applied to what was written off (oldest
    installment first, in the product's order), the loan stays written off, the recovered
    total grows. Anything beyond what was written off is left unallocated (refunded)."""
    paid_on = business_date(msg.received_at)
    written_off = [i.owed() for i in items if i.status == "written_off"]
    applied = min(msg.amount, total_owed(written_off))
    order = terms.allocation_order if terms is not None else ("penalties", "fees",
                                                              "interest", "principal")
    result = allocate(written_off, applied, order)
    sums: dict[int, list[Decimal]] = {}
    index = {"principal": 0, "interest": 1, "fees": 2, "penalties": 3}
    for line in result.lines:
        sums.setdefault(line.installment, [ZERO, ZERO, ZERO, ZERO])[index[line.component]] += \
            line.amount
    if sums:
        numbers = sorted(sums)
        await requests_repo.add_recovery(uow.conn, loan.id, numbers,
                                         [sums[n] for n in numbers], paid_on)
    loan.recover(result.allocated)
    await loans_repo.save(uow.conn, loan)
    await loans_repo.record_repayment(
        uow.conn, payment_id=msg.payment_id, loan_id=loan.id, amount=msg.amount,
        outcome="applied", reason="recovery", lines=list(result.lines),
        received_at=msg.received_at)
    still_owed = total_owed(result.remaining)
    log.info("recovery %s on written-off loan %s: %s applied, %s recovered in all",
             msg.payment_id, loan.id, result.allocated, loan.recovered_amount)
    uow.emit(RepaymentApplied(
        loan_id=loan.id, client_id=loan.client_id, payment_id=msg.payment_id,
        amount=msg.amount, currency=msg.currency,
        allocation=[AllocationLineOut(installment=x.installment, component=x.component,
                                      amount=x.amount) for x in result.lines],
        principal_paid=result.principal_paid, interest_paid=result.interest_paid,
        fees_paid=result.fees_paid, penalties_paid=result.penalties_paid,
        outstanding_principal=ZERO, outstanding_total=still_owed,
        next_due_date=None, next_due_amount=None, closes_loan=False,
        unallocated=msg.amount - result.allocated, recovery=True,
        recovered_total=loan.recovered_amount,
        reference=msg.loan_id if msg.loan_id != loan.id else None), key=loan.id)


# -- short references -----------------------------------------------------------------
async def resolve_reference(uow: UnitOfWork, msg: RepaymentReceived) -> str | None:
    """The loan id a payment's short reference names; ``HELD`` when the reference is
    mistyped (its check character fails): the payment is held for review, not refunded;
    None when the reference is not a short one (a loan id: looked up as before)."""
    parsed = refs.parse(msg.loan_id)
    if parsed.outcome == "not_a_reference":
        return None
    if parsed.outcome == "valid":
        assert parsed.reference is not None
        found = await requests_repo.loan_id_by_reference(uow.conn, parsed.reference)
        return found if found is not None else parsed.reference
    if await loans_repo.repayment_seen(uow.conn, msg.payment_id) is not None:
        return HELD
    log.info("repayment %s: reference %r fails its check character; held for review",
             msg.payment_id, msg.loan_id)
    await loans_repo.record_repayment(
        uow.conn, payment_id=msg.payment_id, loan_id=msg.loan_id, amount=msg.amount,
        outcome="held", reason="reference_check_failed", lines=[],
        received_at=msg.received_at)
    uow.emit(RepaymentRejected(
        loan_id=msg.loan_id, client_id="", payment_id=msg.payment_id, amount=msg.amount,
        currency=msg.currency, payer_msisdn=msg.payer_msisdn, reason="reference_check_failed",
        refundable_amount=ZERO, held_for_review=True,
        detail=f"{msg.loan_id!r} is not a valid loan reference (check character): held "
               "for an operator to match it to a loan"), key=msg.loan_id)
    return HELD
