"""Refunds: the refund payouts of a payment, refunds held for review in client payable,
and the audit of operators' retries (``refund_retries``)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg

from services.payments.repository import Conn
from services.payments.repository.payouts import PAYOUT_COLS, Payout, payout_of


async def refunds_of(conn: Conn, payment_id: uuid.UUID) -> list[Payout]:
    rows = await conn.fetch(
        f"SELECT {PAYOUT_COLS} FROM payouts WHERE payment_id = $1 ORDER BY created_at",
        payment_id)
    return [payout_of(r) for r in rows]


async def refund_payout_count(conn: Conn, payment_id: uuid.UUID) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM payouts WHERE payment_id = $1 AND kind = 'refund'", payment_id))


async def latest_refund_payout(conn: Conn, payment_id: uuid.UUID) -> Payout | None:
    row = await conn.fetchrow(
        f"SELECT {PAYOUT_COLS} FROM payouts WHERE payment_id = $1 AND kind = 'refund'"
        " ORDER BY created_at DESC, id DESC LIMIT 1", payment_id)
    return payout_of(row) if row else None


async def insert_refund_retry(conn: Conn, *, payment_id: uuid.UUID, payout_id: uuid.UUID,
                              previous_payout_id: uuid.UUID | None, attempt: int,
                              amount: Decimal, msisdn: str, requested_by: str, note: str,
                              idempotency_key: str, approved_by: str | None = None,
                              mode: str = "new_attempt") -> asyncpg.Record:
    """``requested_by`` proposed the retry, ``approved_by`` approved it; ``mode``:
    ``new_attempt`` (a new payout after a confirmed failure) or ``resend`` (the in-doubt
    payout asked again with its original correlation id)."""
    row = await conn.fetchrow(
        "INSERT INTO refund_retries (payment_id, payout_id, previous_payout_id, attempt,"
        " amount, msisdn, requested_by, note, idempotency_key, approved_by, mode)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
        payment_id, payout_id, previous_payout_id, attempt, amount, msisdn, requested_by,
        note, idempotency_key, approved_by, mode)
    assert row is not None
    return row


async def refund_retries_of(conn: Conn, payment_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM refund_retries WHERE payment_id = $1 ORDER BY attempt", payment_id))


async def held_refunds(conn: Conn, limit: int, *,
                       after: tuple[dt.datetime, uuid.UUID] | None = None
                       ) -> list[asyncpg.Record]:
    """Refunds whose money sits in client payable: the latest refund payout failed, or
    none could be made (no payer wallet). Oldest first, keyset-paged on (received_at,
    payment id); each with the retry proposal waiting for a second operator, if any."""
    after_at, after_id = after if after is not None else (None, None)
    return list(await conn.fetch(
        "SELECT p.id AS payment_id, p.loan_id, p.partner_id, p.payer_msisdn, p.provider,"
        " p.status AS payment_status, p.rejection_reason, p.received_at,"
        " d.amount AS amount_due, r.id AS payout_id, r.amount AS payout_amount, r.msisdn,"
        " r.failure_reason, r.updated_at AS failed_at,"
        " (SELECT count(*) FROM refund_retries x WHERE x.payment_id = p.id) AS retries,"
        " q.id AS proposal_id, q.proposed_by, q.proposed_at"
        " FROM (SELECT id FROM payments WHERE status = 'refund_failed'"
        "       UNION SELECT payment_id FROM payouts WHERE kind = 'refund'"
        "       AND status = 'failed' AND payment_id IS NOT NULL) c"
        " JOIN payments p ON p.id = c.id"
        " JOIN journal_entries d ON d.transfer_id = 'refund_due:' || p.id::text"
        " LEFT JOIN LATERAL (SELECT id, amount, msisdn, status, failure_reason, updated_at"
        "   FROM payouts WHERE payment_id = p.id AND kind = 'refund'"
        "   ORDER BY created_at DESC, id DESC LIMIT 1) r ON true"
        " LEFT JOIN payout_approvals q ON q.kind = 'refund_retry' AND q.target_id = p.id"
        "   AND q.status = 'proposed'"
        " WHERE p.status IN ('refund_failed', 'posted')"
        "   AND (r.status = 'failed' OR (r.id IS NULL AND p.status = 'refund_failed'))"
        "   AND ($2::timestamptz IS NULL OR (p.received_at, p.id) > ($2, $3::uuid))"
        " ORDER BY p.received_at, p.id LIMIT $1", limit, after_at, after_id))
