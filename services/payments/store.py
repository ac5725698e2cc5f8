"""SQL for payouts, payments (collections) and webhook receipts."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.db import Conn
from services.payments.domain.payouts import PayoutStatus


@dataclass(frozen=True)
class Payout:
    id: uuid.UUID
    kind: str
    saga_id: str
    correlation_id: uuid.UUID
    request_hash: str
    loan_id: str
    client_id: str
    partner_id: str
    payment_id: uuid.UUID | None
    msisdn: str
    amount: Decimal
    currency: str
    provider: str
    deadline: dt.datetime
    status: PayoutStatus
    server_correlation_id: str | None
    provider_reference: str | None
    attempts: int
    failure_reason: str | None
    resolved_by: str | None
    journal_transfer_id: str
    created_at: dt.datetime
    completed_at: dt.datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "payout_id": str(self.id), "kind": self.kind, "saga_id": self.saga_id,
            "loan_id": self.loan_id, "msisdn": self.msisdn, "amount": self.amount,
            "currency": self.currency, "provider": self.provider, "status": self.status.value,
            "provider_reference": self.provider_reference, "failure_reason": self.failure_reason,
            "resolved_by": self.resolved_by, "deadline": self.deadline,
            "created_at": self.created_at, "completed_at": self.completed_at,
            "payment_id": str(self.payment_id) if self.payment_id else None,
        }


_PAYOUT_COLS = ", ".join(Payout.__dataclass_fields__)

# The channel a recorded payout is announced on: one per schema, like the outbox's.
PAYOUTS_CHANNEL_SQL = "current_schema() || '_payouts'"


def payouts_channel(schema: str) -> str:
    return f"{schema}_payouts"


def _payout(row: asyncpg.Record) -> Payout:
    data = dict(row)
    data["status"] = PayoutStatus(data["status"])
    return Payout(**{k: data[k] for k in Payout.__dataclass_fields__})


async def insert_payout(conn: Conn, *, kind: str, saga_id: str,
                        request_hash: str, loan_id: str, client_id: str, partner_id: str,
                        payment_id: uuid.UUID | None, msisdn: str, amount: Decimal,
                        currency: str, provider: str, deadline: dt.datetime,
                        journal_transfer_id: str) -> bool:
    """Insert once per saga step; False if the step already has a payout.

    An inserted payout also queues ``NOTIFY <schema>_payouts``, which PostgreSQL
    delivers only when the transaction commits: the payout workers (of every
    replica) wake up at once instead of at their next poll.
    """
    inserted = await conn.fetchval(
        "WITH ins AS (INSERT INTO payouts (id, kind, saga_id, correlation_id, request_hash,"
        " loan_id, client_id, partner_id, payment_id, msisdn, amount, currency, provider,"
        " deadline, journal_transfer_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
        " $11, $12, $13, $14, $15) ON CONFLICT (saga_id) DO NOTHING RETURNING 1)"
        f" SELECT count(*) FROM (SELECT pg_notify({PAYOUTS_CHANNEL_SQL}, '') FROM ins) n",
        uuid.uuid4(), kind, saga_id, uuid.uuid5(uuid.NAMESPACE_URL, f"noria:payout:{saga_id}"),
        request_hash, loan_id, client_id, partner_id, payment_id, msisdn, amount, currency,
        provider, deadline, journal_transfer_id)
    return bool(inserted)


async def payout_by_saga(conn: Conn, saga_id: str) -> Payout | None:
    row = await conn.fetchrow(f"SELECT {_PAYOUT_COLS} FROM payouts WHERE saga_id = $1", saga_id)
    return _payout(row) if row else None


async def payout(conn: Conn, payout_id: uuid.UUID, *, lock: bool = False
                 ) -> Payout | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT {_PAYOUT_COLS} FROM payouts WHERE id = $1{suffix}",
                              payout_id)
    return _payout(row) if row else None


async def payout_by_correlation(conn: Conn, provider: str, *,
                                correlation_id: uuid.UUID | None = None,
                                server_correlation_id: str | None = None) -> Payout | None:
    row = await conn.fetchrow(
        f"SELECT {_PAYOUT_COLS} FROM payouts WHERE provider = $1 AND"
        " (correlation_id = $2 OR server_correlation_id = $3)",
        provider, correlation_id, server_correlation_id)
    return _payout(row) if row else None


async def claim_due(conn: Conn, limit: int, lease_s: float) -> list[Payout]:
    """Claim due payouts with a lease (so one worker replica handles each at a time)."""
    rows = await conn.fetch(
        f"UPDATE payouts SET next_attempt_at = now() + make_interval(secs => $2),"
        f" attempts = attempts + 1, updated_at = now() WHERE id IN ("
        f"  SELECT id FROM payouts WHERE status IN ('pending', 'submitted')"
        f"  AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1"
        f"  FOR UPDATE SKIP LOCKED) RETURNING {_PAYOUT_COLS}", limit, lease_s)
    return [_payout(r) for r in rows]


async def mark_submitted(conn: Conn, payout_id: uuid.UUID,
                         server_correlation_id: str | None, poll_after_s: float) -> None:
    await conn.execute(
        "UPDATE payouts SET status = 'submitted',"
        " server_correlation_id = coalesce($2, server_correlation_id),"
        " next_attempt_at = now() + make_interval(secs => $3), updated_at = now()"
        " WHERE id = $1 AND status IN ('pending', 'submitted')",
        payout_id, server_correlation_id, poll_after_s)


async def retry_later(conn: Conn, payout_id: uuid.UUID, error: str,
                      after_s: float) -> None:
    await conn.execute(
        "UPDATE payouts SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3),"
        " updated_at = now() WHERE id = $1 AND status IN ('pending', 'submitted')",
        payout_id, error[:1000], after_s)


async def mark_final(conn: Conn, payout_id: uuid.UUID, status: PayoutStatus, *,
                     reference: str | None, reason: str | None, resolved_by: str) -> None:
    await conn.execute(
        "UPDATE payouts SET status = $2, provider_reference = coalesce($3, provider_reference),"
        " failure_reason = $4, resolved_by = $5, updated_at = now(),"
        " completed_at = CASE WHEN $2 = 'completed' THEN now() END WHERE id = $1",
        payout_id, status.value, reference, reason, resolved_by)


# -- payments (collections) -------------------------------------------------------

PAYMENT_COLS = ("id, loan_id, amount, currency, payer_msisdn, provider, source, partner_id,"
                " external_ref, provider_reference, status, rejection_reason, received_at,"
                " updated_at")


async def insert_payment(conn: Conn, *, payment_id: uuid.UUID, loan_id: str,
                         amount: Decimal, currency: str, payer_msisdn: str | None,
                         provider: str, source: str, partner_id: str | None,
                         external_ref: str, provider_reference: str | None) -> bool:
    row = await conn.fetchval(
        "INSERT INTO payments (id, loan_id, amount, currency, payer_msisdn, provider, source,"
        " partner_id, external_ref, provider_reference) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " $8, $9, $10) ON CONFLICT DO NOTHING RETURNING 1",
        payment_id, loan_id, amount, currency, payer_msisdn, provider, source, partner_id,
        external_ref, provider_reference)
    return row is not None


async def payment(conn: Conn, payment_id: uuid.UUID, *, lock: bool = False
                  ) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {PAYMENT_COLS} FROM payments WHERE id = $1{suffix}",
                               payment_id)


async def mark_posted(conn: Conn, payment_id: uuid.UUID, amount: Decimal,
                      loan_id: str) -> asyncpg.Record | None:
    """Lock the payment and move it ``received`` → ``posted`` if it is for ``amount`` on
    ``loan_id``, in one statement. The row as it was, plus ``moved``; None if unknown."""
    return await conn.fetchrow(
        f"WITH cur AS (SELECT {PAYMENT_COLS} FROM payments WHERE id = $1 FOR UPDATE),"
        " upd AS (UPDATE payments p SET status = 'posted', updated_at = now() FROM cur"
        " WHERE p.id = cur.id AND cur.status = 'received' AND cur.amount = $2"
        " AND cur.loan_id = $3 RETURNING p.id)"
        " SELECT cur.*, EXISTS (SELECT 1 FROM upd) AS moved FROM cur",
        payment_id, amount, loan_id)


async def payment_by_ref(conn: Conn, provider: str, source: str,
                         external_ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PAYMENT_COLS} FROM payments WHERE provider = $1 AND source = $2"
        " AND external_ref = $3", provider, source, external_ref)


async def set_payment_status(conn: Conn, payment_id: uuid.UUID, status: str,
                             reason: str | None = None, *, only_from: str | None = None
                             ) -> None:
    await conn.execute(
        "UPDATE payments SET status = $2, rejection_reason = coalesce($3, rejection_reason),"
        " updated_at = now() WHERE id = $1 AND ($4::text IS NULL OR status = $4)",
        payment_id, status, reason, only_from)


async def refunds_of(conn: Conn, payment_id: uuid.UUID) -> list[Payout]:
    rows = await conn.fetch(
        f"SELECT {_PAYOUT_COLS} FROM payouts WHERE payment_id = $1 ORDER BY created_at",
        payment_id)
    return [_payout(r) for r in rows]


async def record_webhook(conn: Conn, provider: str, webhook_id: str,
                         outcome: str) -> bool:
    """Remember a webhook id; False if it was seen before (a replay)."""
    row = await conn.fetchval(
        "INSERT INTO webhook_receipts (provider, webhook_id, outcome) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1", provider, webhook_id, outcome)
    return row is not None


# -- the day's payments (GET /v1/payments) -------------------------------------------

LISTING_KINDS = ("collection", "payout", "refund")

# One shape for collections (payments) and payouts (disbursements, refunds), so a
# page can be cut with one keyset (at, id) across the three kinds.
_LISTING_SQL = """
SELECT * FROM (
  SELECT 'collection'::text AS kind, id, received_at AS at, status, amount, currency,
         loan_id, coalesce(partner_id, '') AS partner_id, payer_msisdn AS msisdn, provider,
         provider_reference, NULL::uuid AS payment_id, NULL::text AS saga_id,
         rejection_reason AS reason, source, NULL::timestamptz AS completed_at
    FROM payments
   WHERE 'collection' = ANY($3::text[]) AND received_at >= $1 AND received_at < $2
  UNION ALL
  SELECT CASE kind WHEN 'disbursement' THEN 'payout' ELSE 'refund' END, id, created_at,
         status, amount, currency, loan_id, partner_id, msisdn, provider,
         provider_reference, payment_id, saga_id, failure_reason, NULL::text, completed_at
    FROM payouts
   WHERE ((kind = 'disbursement' AND 'payout' = ANY($3::text[]))
          OR (kind = 'refund' AND 'refund' = ANY($3::text[])))
     AND created_at >= $1 AND created_at < $2
) day
WHERE ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR partner_id = $5)
"""


async def list_day_payments(conn: Conn, *, start: dt.datetime, end: dt.datetime,
                            kinds: list[str], status: str | None, partner_id: str | None,
                            after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                            ) -> list[asyncpg.Record]:
    """Payments created in ``[start, end)``, oldest first, after the keyset ``after``."""
    after_at, after_id = after if after else (None, None)
    return list(await conn.fetch(
        _LISTING_SQL + " AND ($6::timestamptz IS NULL OR (at, id) > ($6, $7::uuid))"
        " ORDER BY at, id LIMIT $8",
        start, end, kinds, status, partner_id, after_at, after_id, limit))


async def day_payment_totals(conn: Conn, *, start: dt.datetime, end: dt.datetime,
                             kinds: list[str], status: str | None, partner_id: str | None
                             ) -> dict[str, tuple[int, Decimal]]:
    rows = await conn.fetch(
        "SELECT kind, count(*) AS n, coalesce(sum(amount), 0) AS total FROM ("
        + _LISTING_SQL + ") t GROUP BY kind", start, end, kinds, status, partner_id)
    return {r["kind"]: (r["n"], r["total"]) for r in rows}


# -- refunds held for review, and operator retries ----------------------------------


async def refund_payout_count(conn: Conn, payment_id: uuid.UUID) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM payouts WHERE payment_id = $1 AND kind = 'refund'", payment_id))


async def latest_refund_payout(conn: Conn, payment_id: uuid.UUID) -> Payout | None:
    row = await conn.fetchrow(
        f"SELECT {_PAYOUT_COLS} FROM payouts WHERE payment_id = $1 AND kind = 'refund'"
        " ORDER BY created_at DESC, id DESC LIMIT 1", payment_id)
    return _payout(row) if row else None


async def entry_amount(conn: Conn, transfer_id: str) -> Decimal | None:
    value: Decimal | None = await conn.fetchval(
        "SELECT amount FROM journal_entries WHERE transfer_id = $1", transfer_id)
    return value


async def insert_refund_retry(conn: Conn, *, payment_id: uuid.UUID, payout_id: uuid.UUID,
                              previous_payout_id: uuid.UUID | None, attempt: int,
                              amount: Decimal, msisdn: str, requested_by: str, note: str,
                              idempotency_key: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO refund_retries (payment_id, payout_id, previous_payout_id, attempt,"
        " amount, msisdn, requested_by, note, idempotency_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        payment_id, payout_id, previous_payout_id, attempt, amount, msisdn, requested_by,
        note, idempotency_key)
    assert row is not None
    return row


async def refund_retries_of(conn: Conn, payment_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM refund_retries WHERE payment_id = $1 ORDER BY attempt", payment_id))


async def held_refunds(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Refunds whose money sits in client payable: the latest refund payout failed, or
    none could be made (no payer wallet). Oldest first."""
    return list(await conn.fetch(
        "SELECT p.id AS payment_id, p.loan_id, p.partner_id, p.payer_msisdn, p.provider,"
        " p.status AS payment_status, p.rejection_reason, p.received_at,"
        " d.amount AS amount_due, r.id AS payout_id, r.amount AS payout_amount, r.msisdn,"
        " r.failure_reason, r.updated_at AS failed_at,"
        " (SELECT count(*) FROM refund_retries x WHERE x.payment_id = p.id) AS retries"
        " FROM (SELECT id FROM payments WHERE status = 'refund_failed'"
        "       UNION SELECT payment_id FROM payouts WHERE kind = 'refund'"
        "       AND status = 'failed' AND payment_id IS NOT NULL) c"
        " JOIN payments p ON p.id = c.id"
        " JOIN journal_entries d ON d.transfer_id = 'refund_due:' || p.id::text"
        " LEFT JOIN LATERAL (SELECT id, amount, msisdn, status, failure_reason, updated_at"
        "   FROM payouts WHERE payment_id = p.id AND kind = 'refund'"
        "   ORDER BY created_at DESC, id DESC LIMIT 1) r ON true"
        " WHERE p.status IN ('refund_failed', 'posted')"
        "   AND (r.status = 'failed' OR (r.id IS NULL AND p.status = 'refund_failed'))"
        " ORDER BY p.received_at LIMIT $1", limit))


