"""Payouts to recover after a failed group disbursement.

``GroupLoanDisbursementFailed.payouts_to_recover`` names members whose payout completed
while the group failed: the money is in the member's wallet and in the member loan's
portfolio (Dr portfolio / Cr settlement), the loan stays ``disbursing``. Payments never
moves that money back by itself; each such member becomes a *recovery request*
(``group_payout_recoveries``, ``GET /v1/recoveries?status=open``) for operators, who
record how it ends, maker-checker (``payout_approvals`` kind ``group_recovery``, audited
in ``payout_audit``):

- **returned**: the member paid the money back — a normal collection (provider-confirmed)
  to the member's loan, which loans refuses (the loan is not active) and payments then
  keeps ``held`` in suspense instead of refunding it (``hold_for_recovery``). Approved,
  it is booked Dr suspense / Cr portfolio:<loan> (``payout_returned:<payment id>``) and
  the payment is ``posted``. Several collections may add up to the payout.
- **written_off**: the rest is lost — Dr write-off expense / Cr portfolio:<loan>
  (``payout_write_off:<recovery id>``).

The request is ``recovered`` once collections covered it, ``written_off`` once a
write-off closed it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain import accounts as acc
from services.payments.domain.ledger import Entry, credit, debit
from services.payments.handlers import accounting
from services.payments.repository import Conn, approvals
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import servicing as servicing_repo
from shared.contracts.loans import GroupLoanDisbursementFailed, RepaymentRejected
from shared.contracts.payments import PayoutRecoveryRecorded
from shared.envelope import Envelope
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.recoveries")

KIND = "group_recovery"
NAMESPACE = uuid.UUID("0d3f6c1a-58e2-4b7e-a0c4-6a1f3e9b2d55")
STATUSES = ("open", "recovered", "written_off")
OUTCOMES = ("returned", "written_off")
ZERO = Decimal("0.00")


def recovery_id(saga_id: str, loan_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{saga_id}/{loan_id}")


async def on_group_loan_disbursement_failed(uow: UnitOfWork, msg: GroupLoanDisbursementFailed,
                                            env: Envelope) -> None:
    """One open recovery request per member paid out, once (a redelivery adds none)."""
    conn = uow.conn
    for loan_id in msg.payouts_to_recover:
        payout = await conn.fetchrow(
            "SELECT id, client_id, msisdn, amount, currency, status FROM payouts"
            " WHERE kind = 'disbursement' AND loan_id = $1"
            " ORDER BY (status = 'completed') DESC, created_at DESC LIMIT 1", loan_id)
        if payout is None or payout["status"] != "completed":
            log.warning("group %s: member loan %s to recover, but its payout is %s here",
                        msg.group_loan_id, loan_id,
                        "unknown" if payout is None else payout["status"])
        inserted = await conn.fetchval(
            "INSERT INTO group_payout_recoveries (id, group_id, group_loan_id, saga_id,"
            " loan_id, client_id, msisdn, payout_id, payout_status, amount, currency, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (saga_id, loan_id) DO NOTHING RETURNING 1",
            recovery_id(msg.saga_id, loan_id), msg.group_id, msg.group_loan_id, msg.saga_id,
            loan_id, payout["client_id"] if payout else "",
            payout["msisdn"] if payout else None, payout["id"] if payout else None,
            payout["status"] if payout else None,
            payout["amount"] if payout is not None and payout["status"] == "completed"
            else ZERO,
            payout["currency"] if payout else "MAD", msg.reason[:500])
        if inserted:
            log.info("group %s: payout of member loan %s to recover", msg.group_loan_id,
                     loan_id)


async def hold_for_recovery(conn: Conn, payment: asyncpg.Record, msg: RepaymentRejected
                            ) -> bool:
    """A collection loans refused for a member loan with an open recovery request: kept
    ``held`` in suspense (not refunded) for operators to match to the recovery. Only
    money the provider confirmed."""
    if payment["confirmed_at"] is None:
        return False
    rec = await conn.fetchrow(
        "SELECT id FROM group_payout_recoveries WHERE status = 'open'"
        " AND loan_id = ANY($1::text[]) ORDER BY created_at LIMIT 1",
        list({msg.loan_id, payment["loan_id"]}))
    if rec is None:
        return False
    held = await servicing_repo.hold(
        conn, payment["id"], f"payout_to_recover: the member's payout of a failed group "
        f"disbursement is to be recovered (recovery {rec['id']})")
    if held:
        log.info("payment %s held: it may return the payout of recovery %s",
                 payment["id"], rec["id"])
    return held


# -- reads ---------------------------------------------------------------------------


async def get(conn: Conn, rid: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT * FROM group_payout_recoveries WHERE id = $1{suffix}",
                               rid)


async def page(conn: Conn, status: str, limit: int, after: tuple[Any, uuid.UUID] | None
               ) -> list[asyncpg.Record]:
    """Recovery requests of ``status``, oldest first (keyset on created_at, id), each with
    the outcome waiting for a second operator."""
    after_at, after_id = after if after is not None else (None, None)
    return list(await conn.fetch(
        "SELECT r.*, q.id AS proposal_id, q.body AS proposal, q.proposed_by, q.proposed_at"
        " FROM group_payout_recoveries r"
        " LEFT JOIN payout_approvals q ON q.kind = 'group_recovery' AND q.target_id = r.id"
        "   AND q.status = 'proposed'"
        " WHERE r.status = $1"
        "   AND ($3::timestamptz IS NULL OR (r.created_at, r.id) > ($3, $4::uuid))"
        " ORDER BY r.created_at, r.id LIMIT $2", status, limit, after_at, after_id))


async def with_proposal(conn: Conn, rid: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT r.*, q.id AS proposal_id, q.body AS proposal, q.proposed_by, q.proposed_at"
        " FROM group_payout_recoveries r"
        " LEFT JOIN payout_approvals q ON q.kind = 'group_recovery' AND q.target_id = r.id"
        "   AND q.status = 'proposed' WHERE r.id = $1", rid)


async def returned_payments(conn: Conn, rid: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT payment_id, amount, journal_id, matched_at FROM group_payout_recovery_payments"
        " WHERE recovery_id = $1 ORDER BY matched_at, payment_id", rid))


def remaining(rec: asyncpg.Record) -> Decimal:
    left: Decimal = rec["amount"] - rec["recovered"] - rec["written_off"]
    return left


def view(row: Any, payments: list[asyncpg.Record] | None = None) -> dict[str, Any]:
    proposal = approvals.as_dict(row["proposal"]) if row["proposal_id"] else None
    return {
        "recovery_id": str(row["id"]), "group_id": row["group_id"],
        "group_loan_id": row["group_loan_id"], "saga_id": row["saga_id"],
        "loan_id": row["loan_id"], "client_id": row["client_id"], "msisdn": row["msisdn"],
        "payout_id": str(row["payout_id"]) if row["payout_id"] else None,
        "payout_status": row["payout_status"], "amount": row["amount"],
        "recovered": row["recovered"], "written_off": row["written_off"],
        "remaining": remaining(row), "currency": row["currency"], "reason": row["reason"],
        "status": row["status"], "created_at": row["created_at"],
        "closed_at": row["closed_at"],
        "returned_payments": [{"payment_id": str(p["payment_id"]), "amount": p["amount"]}
                              for p in payments or []],
        "proposal": None if proposal is None else {
            "outcome": proposal.get("outcome"), "payment_id": proposal.get("payment_id"),
            "note": proposal.get("note", ""), "proposed_by": row["proposed_by"],
            "proposed_at": row["proposed_at"]},
    }


# -- operators' decision (maker-checker) ---------------------------------------------


async def _checked(conn: Conn, rec: asyncpg.Record, outcome: str, payment_id: str | None
                   ) -> tuple[asyncpg.Record | None, Decimal]:
    """What ``outcome`` would book now (the matched payment locked, the amount), or a 409
    naming why not."""
    if rec["status"] != "open":
        raise Conflict(f"recovery {rec['id']} is {rec['status']}", field="id",
                       state=rec["status"])
    left = remaining(rec)
    if left <= 0:
        raise Conflict(f"recovery {rec['id']} has nothing left to recover", field="id",
                       state=rec["status"])
    if outcome == "written_off":
        return None, left
    if payment_id is None:
        raise InvalidInput("a returned payout names the collection that returned it",
                           field="payment_id")
    try:
        pid = uuid.UUID(payment_id)
    except ValueError:
        raise NotFound(f"no payment {payment_id[:60]}", field="payment_id") from None
    payment = await servicing_repo.payment(conn, pid, lock=True)
    if payment is None:
        raise NotFound(f"no payment {payment_id}", field="payment_id")
    if payment["status"] != servicing_repo.HELD or payment["confirmed_at"] is None:
        raise Conflict(f"payment {pid} is {payment['status']}: only a collection the "
                       "provider confirmed, held in suspense, can return a payout",
                       field="payment_id", state=payment["status"])
    if payment["currency"] != rec["currency"]:
        raise Conflict(f"payment {pid} is in {payment['currency']}", field="payment_id")
    if payment["amount"] > left:
        raise Conflict(f"payment {pid} of {payment['amount']} is more than the "
                       f"{left} left to recover", field="payment_id")
    return payment, payment["amount"]


async def propose(uow: UnitOfWork, rec: asyncpg.Record, *, outcome: str,
                  payment_id: str | None, note: str, operator: str, key: str
                  ) -> asyncpg.Record:
    """The first operator's half: checked, recorded, audited; nothing moves."""
    payment, amount = await _checked(uow.conn, rec, outcome, payment_id)
    body = {"outcome": outcome, "payment_id": str(payment["id"]) if payment else None,
            "amount": format(amount, "f"), "note": note}
    row = await approvals.propose(uow.conn, kind=KIND, target_id=rec["id"], body=body,
                                  proposed_by=operator, key=key)
    await approvals.audit(uow.conn, action=f"recovery_{outcome}_proposed", actor=operator,
                          payout_id=rec["payout_id"],
                          payment_id=payment["id"] if payment else None,
                          approval_id=row["id"], detail={**body, "recovery_id": str(rec["id"])})
    return row


async def approve(uow: UnitOfWork, rec: asyncpg.Record, *, operator: str, note: str
                  ) -> asyncpg.Record:
    """The second operator's half (``rec`` locked by the caller): books the proposed
    outcome; returns the approval."""
    conn = uow.conn
    rid: uuid.UUID = rec["id"]
    proposal = await approvals.open_proposal(conn, KIND, rid, lock=True)
    if proposal is None:
        raise Conflict(f"no outcome of recovery {rid} waits for approval", field="id")
    if proposal["proposed_by"] == operator:
        raise Forbidden("the operator who proposed the outcome cannot approve it: another "
                        "operator must", field="sub")
    body = approvals.body_of(proposal)
    outcome = str(body.get("outcome"))
    payment, amount = await _checked(conn, rec, outcome, body.get("payment_id"))
    loan = rec["loan_id"]
    if payment is not None:
        entry = Entry(f"payout_returned:{payment['id']}", "repayment",
                      (debit(acc.SUSPENSE, amount), credit(acc.portfolio(loan), amount)),
                      loan_id=loan, memo=f"payout of a failed group disbursement returned "
                                         f"(recovery {rid})")
        posted = await ledger_repo.post(conn, entry)
        await conn.execute(
            "UPDATE payments SET status = 'posted', resolved_loan_id = $2, updated_at = now()"
            " WHERE id = $1 AND status = 'held'", payment["id"], loan)
        await conn.execute(
            "INSERT INTO group_payout_recovery_payments (payment_id, recovery_id, amount,"
            " journal_id) VALUES ($1, $2, $3, $4)", payment["id"], rid, amount,
            posted.entry_id)
        await conn.execute(
            "UPDATE group_payout_recoveries SET recovered = recovered + $2,"
            " status = CASE WHEN recovered + $2 + written_off = amount THEN 'recovered'"
            " ELSE status END, closed_at = CASE WHEN recovered + $2 + written_off = amount"
            " THEN now() END WHERE id = $1", rid, amount)
    else:
        entry = dataclasses.replace(await accounting.write_off_entry(conn, loan, amount),
                                    transfer_id=f"payout_write_off:{rid}")
        await ledger_repo.post(conn, entry)
        await conn.execute(
            "UPDATE group_payout_recoveries SET written_off = written_off + $2,"
            " status = 'written_off', closed_at = now() WHERE id = $1", rid, amount)
    now = await conn.fetchrow(
        "SELECT saga_id, amount - recovered - written_off AS remaining, status"
        " FROM group_payout_recoveries WHERE id = $1", rid)
    assert now is not None
    # loans brings the member loan's outstanding principal down with the portfolio
    uow.emit(PayoutRecoveryRecorded(
        loan_id=loan, saga_id=now["saga_id"], recovery_id=str(rid), outcome=outcome,
        amount=amount, remaining=now["remaining"], status=now["status"]), key=loan)
    closed = await approvals.close(conn, proposal["id"], status="approved",
                                   approved_by=operator,
                                   outcome={**body, "approval_note": note})
    await approvals.audit(conn, action=f"recovery_{outcome}_approved", actor=operator,
                          payout_id=rec["payout_id"],
                          payment_id=payment["id"] if payment else None,
                          approval_id=proposal["id"],
                          detail={**body, "recovery_id": str(rid), "approval_note": note,
                                  "proposed_by": proposal["proposed_by"]})
    log.info("recovery %s: %s of %s approved by %s (proposed by %s)", rid, outcome, amount,
             operator, proposal["proposed_by"])
    return closed
