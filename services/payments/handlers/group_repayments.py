"""A collection for a group loan, as payments books it.

The group's collection is one ``payments`` row in suspense (Dr settlement / Cr suspense,
reference: the group loan's id). Loans splits it over the members
(``GroupRepaymentSplit``) and applies each share as the member's own repayment, under a
payment id it derives from the group payment and the member's loan; its
``RepaymentApplied`` for that id moves the share out of suspense along the member's own
allocation (``repayment:<member payment id>``: portfolio of the member's loan, interest,
fees, penalties). What no member owed (``unallocated``) is refunded once, to the payer,
through the normal refund path (only money the provider confirmed).

The group payment stays ``received`` until every share is booked, then ``posted``; with
no share at all (the group loan was not active) it is refunded whole (``refund_pending``).

The split is keyed by the group and each member's answer by its loan: they come on
different partitions, in any order. A member's answer that arrives first waits in
``group_share_answers_waiting`` and is booked when the split names it; both sides take the
same transaction-scoped advisory lock so neither misses the other.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.payments.domain import postings, repayment_ids
from services.payments.domain import servicing as servicing_rules
from services.payments.handlers import accounting
from services.payments.repository import Conn
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import servicing as servicing_repo
from services.payments.settings import PaymentsSettings
from shared.contracts.loans import GroupRepaymentSplit, RepaymentApplied, RepaymentRejected
from shared.contracts.payments import RepaymentPosted
from shared.envelope import Envelope
from shared.errors import InvalidInput
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.group_repayments")

ZERO = Decimal("0.00")
# one lock for "a share and its split meet": taken by the split and by an answer that
# finds no share yet (rare), never by the ordinary path
_MEET_LOCK = 0x6E6F72_6961_67  # "noria" "g"


async def _meet(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MEET_LOCK)


def split_handler(settings: PaymentsSettings) -> Any:
    async def on_group_repayment_split(uow: UnitOfWork, msg: GroupRepaymentSplit,
                                       env: Envelope) -> None:
        await group_repayment_split(uow, settings, msg)
    return on_group_repayment_split


async def group_repayment_split(uow: UnitOfWork, settings: PaymentsSettings,
                                msg: GroupRepaymentSplit) -> None:
    from services.payments.handlers.repayments import start_refund

    conn = uow.conn
    await _meet(conn)
    gpid = repayment_ids.payment_uuid(msg.payment_id)
    row = await servicing_repo.payment(conn, gpid, lock=True)
    if row is None:
        log.info("GroupRepaymentSplit for unknown payment %s (group loan %s); ignored",
                 msg.payment_id, msg.group_loan_id)
        return
    shares = sum((ln.amount for ln in msg.lines), ZERO)
    if row["amount"] != msg.amount or shares + msg.unallocated != msg.amount:
        raise InvalidInput(
            f"GroupRepaymentSplit of {msg.amount} (shares {shares} + unallocated "
            f"{msg.unallocated}); payment {gpid} was {row['amount']}", field="amount")
    if not servicing_rules.same_loan(row["loan_id"], row["resolved_loan_id"],
                                     msg.group_loan_id, None):
        raise InvalidInput(f"GroupRepaymentSplit names group loan {msg.group_loan_id}; "
                           f"payment {gpid} was for {row['loan_id']}", field="group_loan_id")
    inserted = await conn.fetchval(
        "INSERT INTO group_repayments (payment_id, group_loan_id, group_id, amount,"
        " unallocated) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
        gpid, msg.group_loan_id, msg.group_id, msg.amount, msg.unallocated)
    if inserted is None:
        log.info("group payment %s already split; duplicate ignored", gpid)
        return
    if row["status"] != "received":
        log.warning("group payment %s is %s; its split is recorded, nothing refunded",
                    gpid, row["status"])
    members = [repayment_ids.payment_uuid(ln.payment_id) for ln in msg.lines]
    if msg.lines:
        await conn.executemany(
            "INSERT INTO group_repayment_shares (member_payment_id, payment_id, loan_id,"
            " client_id, amount) VALUES ($1, $2, $3, $4, $5)",
            [(mp, gpid, ln.loan_id, ln.client_id, ln.amount)
             for mp, ln in zip(members, msg.lines, strict=True)])
    await servicing_repo.remember_loan(conn, gpid, msg.group_loan_id)
    if row["status"] == "received":
        if not msg.lines:
            # nothing owed by anyone (the group loan is not active): all of it goes back
            await payments_repo.set_payment_status(conn, gpid, "refund_pending",
                                                   "group loan: no member owed anything")
            await start_refund(uow, settings, row, msg.unallocated, None, "",
                               "group repayment: no member owed anything",
                               loan_id=msg.group_loan_id)
            return
        if msg.unallocated > 0:
            await start_refund(uow, settings, row, msg.unallocated, None, "",
                               "group repayment: the part no member owed",
                               loan_id=msg.group_loan_id)
    # the members' answers that came before the split
    waiting = await conn.fetch(
        "DELETE FROM group_share_answers_waiting WHERE member_payment_id = ANY($1::uuid[])"
        " RETURNING member_payment_id, type, payload", members)
    for w in sorted(waiting, key=lambda r: members.index(r["member_payment_id"])):
        payload = w["payload"]
        data = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
        if w["type"] == "RepaymentApplied":
            await member_applied(uow, RepaymentApplied.model_validate(data))
        else:
            await member_rejected(uow, RepaymentRejected.model_validate(data))
    await _maybe_posted(conn, gpid)


async def _share(conn: Conn, member_pid: uuid.UUID, msg: RepaymentApplied | RepaymentRejected
                 ) -> asyncpg.Record | None:
    """The share ``member_pid`` locked; None when the split has not come yet (the answer
    is then kept for it)."""
    sql = "SELECT * FROM group_repayment_shares WHERE member_payment_id = $1 FOR UPDATE"
    share = await conn.fetchrow(sql, member_pid)
    if share is not None:
        return share
    await _meet(conn)
    share = await conn.fetchrow(sql, member_pid)
    if share is None:
        await conn.execute(
            "INSERT INTO group_share_answers_waiting (member_payment_id, type, payload)"
            " VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING", member_pid,
            type(msg).__name__, orjson.dumps(msg.model_dump(mode="json")).decode())
        log.info("%s for payment %s (loan %s) matches no payment yet: kept for a group "
                 "split", type(msg).__name__, msg.payment_id, msg.loan_id)
    return share


async def member_applied(uow: UnitOfWork, msg: RepaymentApplied) -> None:
    """A member's share applied by loans: out of suspense along its allocation, once."""
    conn = uow.conn
    member_pid = repayment_ids.payment_uuid(msg.payment_id)
    share = await _share(conn, member_pid, msg)
    if share is None:
        return
    if share["status"] != "expected":
        log.info("share %s of group payment %s is already %s; ignored", member_pid,
                 share["payment_id"], share["status"])
        return
    if share["amount"] != msg.amount or not servicing_rules.same_loan(
            share["loan_id"], None, msg.loan_id, msg.reference):
        raise InvalidInput(
            f"RepaymentApplied says {msg.amount} on loan {msg.loan_id}; the group share "
            f"{member_pid} was {share['amount']} for loan {share['loan_id']}", field="amount")
    allocated = msg.amount - msg.unallocated
    journal_id: uuid.UUID | None = None
    if allocated > 0:
        parts = {"principal": msg.principal_paid, "interest": msg.interest_paid,
                 "fees": msg.fees_paid, "penalties": msg.penalties_paid}
        entry = (postings.recovery(str(member_pid), msg.loan_id, allocated) if msg.recovery
                 else await accounting.repayment_entry(conn, str(member_pid), msg.loan_id,
                                                       allocated, parts))
        journal_id = (await ledger_repo.post(conn, entry)).entry_id
    if msg.unallocated > 0:
        # a share is never more than the member owed; if loans left some of it, it stays
        # in suspense, visible on the share, for operators — never paid out unasked
        log.warning("group share %s: loans left %s unapplied on loan %s; kept in suspense",
                    member_pid, msg.unallocated, msg.loan_id)
    await conn.execute(
        "UPDATE group_repayment_shares SET status = 'posted', booked = $2, not_applied = $3,"
        " journal_id = $4, answered_at = now() WHERE member_payment_id = $1",
        member_pid, allocated, msg.unallocated, journal_id)
    uow.emit(RepaymentPosted(loan_id=msg.loan_id, payment_id=msg.payment_id,
                             amount=allocated, journal_id=str(journal_id or "")),
             key=msg.loan_id)
    await _maybe_posted(conn, share["payment_id"])


async def member_rejected(uow: UnitOfWork, msg: RepaymentRejected) -> None:
    """A member's share refused by loans (should not happen: shares go to active loans
    only). Its money stays in suspense, visible on the share, for operators."""
    conn = uow.conn
    member_pid = repayment_ids.payment_uuid(msg.payment_id)
    share = await _share(conn, member_pid, msg)
    if share is None or share["status"] != "expected":
        return
    log.warning("group share %s (loan %s) rejected by loans (%s); %s kept in suspense",
                member_pid, msg.loan_id, msg.reason, share["amount"])
    await conn.execute(
        "UPDATE group_repayment_shares SET status = 'rejected', booked = 0,"
        " not_applied = amount, answered_at = now() WHERE member_payment_id = $1",
        member_pid)
    await _maybe_posted(conn, share["payment_id"])


async def _maybe_posted(conn: Conn, group_pid: uuid.UUID) -> None:
    """``received`` → ``posted`` once every share has its answer."""
    await conn.execute(
        "UPDATE payments SET status = 'posted', updated_at = now() WHERE id = $1"
        " AND status = 'received' AND EXISTS (SELECT 1 FROM group_repayment_shares"
        "   WHERE payment_id = $1)"
        " AND NOT EXISTS (SELECT 1 FROM group_repayment_shares"
        "   WHERE payment_id = $1 AND status = 'expected')", group_pid)


async def shares_of(conn: Conn, group_pid: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM group_repayment_shares WHERE payment_id = $1 ORDER BY loan_id",
        group_pid))
