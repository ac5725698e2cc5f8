"""Payments held for review (a mistyped short reference: loans answered
``RepaymentRejected{held_for_review: true}``), and operators' decision on one,
maker-checker (``payout_approvals`` kind ``held_payment``, audited in ``payout_audit``).

A held payment's money stays in repayment suspense. One operator proposes either

- **match** to a loan: approved by another operator, the payment goes back to
  ``received`` for that loan and ``RepaymentReceived`` is published again for it, under
  the same payment id (so loans applies it once, and its answer finds this payment); or
- **refund**: approved by another operator, it goes through the normal refund path
  (Dr suspense / Cr client payable, then the payout to the payer's wallet) — only money
  the provider confirmed we received.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

import asyncpg

from services.payments.handlers.repayments import start_refund
from services.payments.repository import approvals
from services.payments.repository import payments as payments_repo
from services.payments.repository import servicing as repo
from services.payments.settings import PaymentsSettings
from shared.clock import system_clock
from shared.contracts.payments import RepaymentReceived
from shared.errors import Conflict, Forbidden
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.held")

KIND = "held_payment"


def _must_be_held(payment: asyncpg.Record) -> None:
    if payment["status"] != repo.HELD:
        raise Conflict(f"payment {payment['id']} is {payment['status']}, not held for review",
                       field="id", state=payment["status"])


async def propose(uow: UnitOfWork, payment: asyncpg.Record, *, action: str,
                  loan_id: str | None, note: str, operator: str, key: str
                  ) -> asyncpg.Record:
    """The first operator's half: checked, recorded, audited; nothing moves."""
    _must_be_held(payment)
    if action == "refund" and payment["confirmed_at"] is None:
        raise Conflict(f"payment {payment['id']} was never confirmed by the provider: "
                       "nothing can be refunded", field="id", state=payment["status"])
    body = {"action": action, "loan_id": loan_id, "note": note}
    row = await approvals.propose(uow.conn, kind=KIND, target_id=payment["id"], body=body,
                                  proposed_by=operator, key=key)
    await approvals.audit(uow.conn, action=f"held_{action}_proposed", actor=operator,
                          payment_id=payment["id"], approval_id=row["id"], detail=body)
    return row


@dataclasses.dataclass(frozen=True)
class Decided:
    approval: asyncpg.Record
    action: str
    loan_id: str | None


async def approve(uow: UnitOfWork, settings: PaymentsSettings, payment: asyncpg.Record, *,
                  action: str, operator: str, note: str) -> Decided:
    """The second operator's half (``payment`` locked by the caller): applies the
    proposal of ``action`` waiting for this payment."""
    conn = uow.conn
    pid: uuid.UUID = payment["id"]
    proposal = await approvals.open_proposal(conn, KIND, pid, lock=True)
    body = approvals.body_of(proposal) if proposal is not None else {}
    if proposal is None or body.get("action") != action:
        raise Conflict(f"no {action} of held payment {pid} waits for approval", field="id")
    if proposal["proposed_by"] == operator:
        raise Forbidden(f"the operator who proposed the {action} cannot approve it: another "
                        "operator must", field="sub")
    _must_be_held(payment)
    loan_id = body.get("loan_id")
    if action == "match":
        assert isinstance(loan_id, str)
        await _match(uow, payment, loan_id)
    else:
        await payments_repo.set_payment_status(conn, pid, "refund_pending",
                                               "held for review: refunded by operators")
        await start_refund(uow, settings, payment, payment["amount"], None, "",
                           f"held for review ({payment['rejection_reason'] or 'no loan'}):"
                           " refunded by operators")
    closed = await approvals.close(conn, proposal["id"], status="approved",
                                   approved_by=operator,
                                   outcome={"action": action, "loan_id": loan_id,
                                            "note": note})
    await approvals.audit(conn, action=f"held_{action}_approved", actor=operator,
                          payment_id=pid, approval_id=proposal["id"],
                          detail={"loan_id": loan_id, "note": note,
                                  "proposed_by": proposal["proposed_by"]})
    log.info("held payment %s: %s approved by %s (proposed by %s)", pid, action, operator,
             proposal["proposed_by"])
    return Decided(closed, action, loan_id if isinstance(loan_id, str) else None)


async def _match(uow: UnitOfWork, payment: asyncpg.Record, loan_id: str) -> None:
    """Back to ``received`` for ``loan_id``; loans is told again, same payment id."""
    pid: uuid.UUID = payment["id"]
    if not await repo.release_to_loan(uow.conn, pid, loan_id):
        raise Conflict(f"payment {pid} is no longer held", field="id")
    reported = (payment["external_ref"].split(":", 1)[-1] if payment["source"] == "api"
                else payment["external_ref"])
    uow.emit(RepaymentReceived(
        loan_id=loan_id, payment_id=str(pid), amount=payment["amount"],
        currency=payment["currency"], payer_msisdn=payment["payer_msisdn"],
        provider=payment["provider"], external_ref=reported,
        received_at=payment["confirmed_at"] or system_clock()), key=loan_id)


def view(row: Any) -> dict[str, Any]:
    """A held payment as the queue shows it."""
    proposal = approvals.as_dict(row["proposal"]) if row["proposal_id"] else None
    return {
        "payment_id": str(row["id"]), "reference": row["loan_id"],
        "amount": row["amount"], "currency": row["currency"],
        "payer_msisdn": row["payer_msisdn"], "provider": row["provider"],
        "partner_id": row["partner_id"], "reason": row["rejection_reason"],
        "received_at": row["received_at"].isoformat(),
        "proposal": None if proposal is None else {
            "action": proposal.get("action"), "loan_id": proposal.get("loan_id"),
            "note": proposal.get("note", ""), "proposed_by": row["proposed_by"],
            "proposed_at": row["proposed_at"].isoformat()},
    }
