"""An operator's retry of a refund held for review (audited).

A refund is *held* when its money sits in client payable: the latest refund
payout for the repayment failed (its entry reversed), or none could be made
because the payment had no payer wallet. A retry puts it back through the normal
refund path: Dr client payable / Cr provider settlement and a payout row in one
transaction; the payout worker calls the provider outside any transaction and
settles it (``RefundIssued`` or ``RefundFailed``) exactly as for a first refund.

The first payout of a refund is ``refund:<payment id>`` (ledger transfer and
saga step alike); retry *n* is ``refund:<payment id>:retry:<n>``, so each
attempt has its own provider correlation id and its own ledger entry, which the
payout worker reverses if that attempt fails.
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
from services.payments.repository import Conn
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.repository import refunds as repo
from services.payments.settings import PaymentsSettings
from shared.clock import system_clock
from shared.errors import Conflict, InvalidInput
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


async def queue_retry(uow: UnitOfWork, settings: PaymentsSettings, payment: Any, *,
                      note: str, msisdn: str | None, operator: str, key: str
                      ) -> QueuedRetry:
    """Pay the held refund of ``payment`` (locked by the caller) again; audited."""
    conn = uow.conn
    pid: uuid.UUID = payment["id"]
    due = await ledger_repo.entry_amount(conn, f"refund_due:{pid}")
    last = await repo.latest_refund_payout(conn, pid)
    if due is None:
        raise Conflict(f"payment {pid} owes no refund (it is {payment['status']})",
                       field="id", state=payment["status"])
    if last is not None and last.status is not PayoutStatus.FAILED:
        raise Conflict(f"the refund of payment {pid} is {last.status.value}, not held for "
                       "review; only a failed refund can be retried", field="id",
                       state=last.status.value)
    if last is None and payment["status"] != "refund_failed":
        raise Conflict(f"the refund of payment {pid} is not held for review", field="id",
                       state=payment["status"])
    known = last.msisdn if last is not None else payment["payer_msisdn"]
    if known is not None and msisdn is not None and msisdn != known:
        raise InvalidInput("a refund goes back to the wallet that paid; leave msisdn out",
                           field="msisdn")
    to = known or msisdn
    if to is None:
        raise InvalidInput("the payment has no payer wallet: give the msisdn to refund",
                           field="msisdn")
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
        partner_id=payment["partner_id"] or "", payment_id=pid, msisdn=to, amount=amount,
        currency=payment["currency"], provider=payment["provider"],
        deadline=system_clock() + dt.timedelta(seconds=settings.refund_deadline_s),
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
        msisdn=to, requested_by=operator, note=note, idempotency_key=key)
    log.info("refund of payment %s retried by %s (attempt %s, payout %s)", pid, operator,
             attempt, saga_id)
    return QueuedRetry(pid, payout.id, audit)
