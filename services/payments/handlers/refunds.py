"""An operator's retry of a refund, maker-checker (audited).

A refund can be retried when its money sits in client payable (*held*: the
latest refund payout failed — the provider said so — its entry reversed, or
none could be made because the payment had no payer wallet), or when its latest
payout is *in doubt* (the provider has not said whether it executed).

A retry needs two operators: the first call proposes it, a different operator
approves it. Approved:

- a held refund goes back through the normal refund path: Dr client payable /
  Cr provider settlement and a new payout (``refund:<payment id>:retry:<n>``,
  its own provider correlation id), only because the provider confirmed the
  previous attempt failed;
- an in-doubt refund keeps its ORIGINAL correlation id: the same payout is asked
  again at once and, if the provider does not know it, the same request is sent
  again byte for byte, so it can never be paid twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg

from services.payments.domain import postings
from services.payments.domain.payouts import PayoutStatus
from services.payments.repository import Conn, approvals
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.repository import refunds as repo
from services.payments.repository.payouts import Payout
from services.payments.settings import PaymentsSettings
from shared.clock import system_clock
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.refunds")


@dataclasses.dataclass(frozen=True)
class QueuedRetry:
    payment_id: uuid.UUID
    payout_id: uuid.UUID
    audit: asyncpg.Record  # the refund_retries row


async def payment_of(conn: Conn, ident: uuid.UUID, *, lock: bool = False) -> Any:
    """The repayment a refund belongs to, given a refund payout id or the payment id."""
    payout = await payouts_repo.payout(conn, ident)
    pid = payout.payment_id if payout is not None and payout.kind == "refund" else ident
    return await payments_repo.payment(conn, pid, lock=lock) if pid else None


@dataclasses.dataclass(frozen=True)
class Retryable:
    mode: str  # new_attempt (held) or resend (in doubt)
    last: Payout | None
    msisdn: str


async def retryable(conn: Conn, payment: Any, msisdn: str | None) -> Retryable:
    """Can the refund of ``payment`` be retried, and how; else Conflict / InvalidInput."""
    pid: uuid.UUID = payment["id"]
    due = await ledger_repo.entry_amount(conn, f"refund_due:{pid}")
    last = await repo.latest_refund_payout(conn, pid)
    if due is None:
        raise Conflict(f"payment {pid} owes no refund (it is {payment['status']})",
                       field="id", state=payment["status"])
    known = last.msisdn if last is not None else payment["payer_msisdn"]
    if known is not None and msisdn is not None and msisdn != known:
        raise InvalidInput("a refund goes back to the wallet that paid; leave msisdn out",
                           field="msisdn")
    to = known or msisdn
    if last is not None and last.status is PayoutStatus.IN_DOUBT:
        assert to is not None
        return Retryable("resend", last, to)
    if last is not None and last.status is not PayoutStatus.FAILED:
        raise Conflict(f"the refund of payment {pid} is {last.status.value}, neither held for "
                       "review nor in doubt", field="id", state=last.status.value)
    if last is None and payment["status"] != "refund_failed":
        raise Conflict(f"the refund of payment {pid} is not held for review", field="id",
                       state=payment["status"])
    if to is None:
        raise InvalidInput("the payment has no payer wallet: give the msisdn to refund",
                           field="msisdn")
    return Retryable("new_attempt", last, to)


async def propose_retry(uow: UnitOfWork, payment: Any, *, note: str, msisdn: str | None,
                        operator: str, key: str) -> asyncpg.Record:
    """The first operator's half of a retry: checked, recorded, audited; nothing moves."""
    conn = uow.conn
    how = await retryable(conn, payment, msisdn)
    body = {"note": note, "msisdn": msisdn, "mode": how.mode,
            "last_payout_id": str(how.last.id) if how.last else None}
    row = await approvals.propose(conn, kind=approvals.REFUND_RETRY, target_id=payment["id"],
                                  body=body, proposed_by=operator, key=key)
    await approvals.audit(conn, action="refund_retry_proposed", actor=operator,
                          payout_id=how.last.id if how.last else None,
                          payment_id=payment["id"], approval_id=row["id"], detail=body)
    return row


@dataclasses.dataclass(frozen=True)
class ApprovedRetry:
    approval: asyncpg.Record
    queued: QueuedRetry | None  # None: the refund was no longer retryable (superseded)
    reason: str = ""


async def approve_retry(uow: UnitOfWork, settings: PaymentsSettings, payment: Any, *,
                        operator: str, note: str, key: str,
                        clock: Any = system_clock) -> ApprovedRetry:
    """The second operator's half (``payment`` locked by the caller)."""
    conn = uow.conn
    pid: uuid.UUID = payment["id"]
    proposal = await approvals.open_proposal(conn, approvals.REFUND_RETRY, pid, lock=True)
    if proposal is None:
        raise Conflict(f"no retry of the refund of payment {pid} waits for approval",
                       field="id")
    if proposal["proposed_by"] == operator:
        raise Forbidden("the operator who proposed a refund retry cannot approve it: another "
                        "operator must", field="sub")
    body = approvals.body_of(proposal)
    try:
        how = await retryable(conn, payment, body.get("msisdn"))
    except Conflict as exc:
        closed = await approvals.close(conn, proposal["id"], status="superseded",
                                       approved_by=None, outcome={"reason": exc.detail})
        await approvals.audit(conn, action="refund_retry_superseded", actor=operator,
                              payment_id=pid, approval_id=proposal["id"],
                              detail={"reason": exc.detail, "note": note})
        return ApprovedRetry(closed, None, exc.detail)
    requested_by = str(proposal["proposed_by"])
    if how.mode == "resend":
        queued = await _resend(uow, payment, how, note=body.get("note", ""),
                               requested_by=requested_by, approved_by=operator, key=key)
    else:
        queued = await queue_retry(uow, settings, payment, how, note=body.get("note", ""),
                                   operator=requested_by, approved_by=operator, key=key,
                                   clock=clock)
    closed = await approvals.close(conn, proposal["id"], status="approved",
                                   approved_by=operator,
                                   outcome={"payout_id": str(queued.payout_id),
                                            "mode": how.mode, "note": note})
    await approvals.audit(conn, action="refund_retry_approved", actor=operator,
                          payout_id=queued.payout_id, payment_id=pid,
                          approval_id=proposal["id"],
                          detail={"mode": how.mode, "note": note,
                                  "attempt": queued.audit["attempt"]})
    return ApprovedRetry(closed, queued)


async def _resend(uow: UnitOfWork, payment: Any, how: Retryable, *, note: str,
                  requested_by: str, approved_by: str, key: str) -> QueuedRetry:
    """An in-doubt refund: the same payout, the same correlation id, asked (and if unknown
    to the provider, sent as the same request) again now."""
    conn = uow.conn
    pid: uuid.UUID = payment["id"]
    assert how.last is not None
    await payouts_repo.request_resend(conn, how.last.id)
    attempt = len(await repo.refund_retries_of(conn, pid)) + 1
    audit = await repo.insert_refund_retry(
        conn, payment_id=pid, payout_id=how.last.id, previous_payout_id=how.last.id,
        attempt=attempt, amount=how.last.amount, msisdn=how.last.msisdn,
        requested_by=requested_by, note=note, idempotency_key=key,
        approved_by=approved_by, mode="resend")
    log.info("in-doubt refund of payment %s asked again (%s, approved by %s); same payout %s",
             pid, requested_by, approved_by, how.last.saga_id)
    return QueuedRetry(pid, how.last.id, audit)


async def queue_retry(uow: UnitOfWork, settings: PaymentsSettings, payment: Any,
                      how: Retryable, *, note: str, operator: str, key: str,
                      approved_by: str | None = None, clock: Any = system_clock
                      ) -> QueuedRetry:
    """Pay the held refund of ``payment`` (locked by the caller) again; audited. Only after
    the provider confirmed the previous attempt failed (or there was none)."""
    conn = uow.conn
    pid: uuid.UUID = payment["id"]
    last = how.last
    due = await ledger_repo.entry_amount(conn, f"refund_due:{pid}")
    assert due is not None
    amount = last.amount if last is not None else due
    attempt = len(await repo.refund_retries_of(conn, pid)) + 1
    # no payout at all yet (no payer wallet): this is the refund's first payout
    saga_id = f"refund:{pid}" if last is None else f"refund:{pid}:retry:{attempt}"
    entry = dataclasses.replace(
        postings.refund_payout(str(pid), payment["loan_id"], payment["provider"], amount),
        transfer_id=saga_id)
    await ledger_repo.post(conn, entry)
    inserted = await payouts_repo.insert_payout(
        conn, kind="refund", saga_id=saga_id, request_hash=entry.request_hash(),
        loan_id=payment["loan_id"], client_id=last.client_id if last else "",
        partner_id=payment["partner_id"] or "", payment_id=pid, msisdn=how.msisdn,
        amount=amount, currency=payment["currency"], provider=payment["provider"],
        deadline=clock() + dt.timedelta(seconds=settings.refund_deadline_s),
        journal_transfer_id=entry.transfer_id)
    if not inserted:
        raise Conflict(f"a refund payout {saga_id} already exists", field="id")
    payout = await payouts_repo.payout_by_saga(conn, saga_id)
    assert payout is not None
    if payment["status"] == "refund_failed":
        await payments_repo.set_payment_status(conn, pid, "refund_pending",
                                               only_from="refund_failed")
    audit = await repo.insert_refund_retry(
        conn, payment_id=pid, payout_id=payout.id,
        previous_payout_id=last.id if last else None, attempt=attempt, amount=amount,
        msisdn=how.msisdn, requested_by=operator, note=note, idempotency_key=key,
        approved_by=approved_by, mode="new_attempt")
    log.info("refund of payment %s retried by %s, approved by %s (attempt %s, payout %s)",
             pid, operator, approved_by, attempt, saga_id)
    return QueuedRetry(pid, payout.id, audit)
