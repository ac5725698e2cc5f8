"""Payments (collections): recording, the moves of their status, and the day's listing
of collections, payouts and refunds (``GET /v1/payments``) and a provider's day for
reconciliation."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg

from services.payments.repository import Conn
from shared.leases import claim_sql

PAYMENT_COLS = ("id, loan_id, amount, currency, payer_msisdn, provider, source, partner_id,"
                " external_ref, provider_reference, status, rejection_reason, received_at,"
                " updated_at, confirmed_at")

# A wallet's report waiting for the provider, and one the provider never confirmed.
UNCONFIRMED = "unconfirmed"
REJECTED_UNCONFIRMED = "rejected_unconfirmed"
NOT_CREDITED = (UNCONFIRMED, REJECTED_UNCONFIRMED)


async def insert_payment(conn: Conn, *, payment_id: uuid.UUID, loan_id: str,
                         amount: Decimal, currency: str, payer_msisdn: str | None,
                         provider: str, source: str, partner_id: str | None,
                         external_ref: str, provider_reference: str | None,
                         confirmed_at: dt.datetime | None = None,
                         confirm_deadline: dt.datetime | None = None) -> bool:
    """Record a payment: credited (``confirmed_at`` given, status ``received``) or
    ``unconfirmed`` until ``confirm_deadline``. False if one like it exists (same
    provider transaction, or same provider/source/external_ref)."""
    row = await conn.fetchval(
        "INSERT INTO payments (id, loan_id, amount, currency, payer_msisdn, provider, source,"
        " partner_id, external_ref, provider_reference, status, confirmed_at,"
        " confirm_next_at, confirm_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, CASE WHEN $11::timestamptz IS NULL THEN 'unconfirmed' ELSE 'received' END,"
        " $11, CASE WHEN $11::timestamptz IS NULL THEN now() END, $12)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        payment_id, loan_id, amount, currency, payer_msisdn, provider, source, partner_id,
        external_ref, provider_reference, confirmed_at, confirm_deadline)
    return row is not None


async def confirm(conn: Conn, payment_id: uuid.UUID, at: dt.datetime, *,
                  amount: Decimal | None = None, loan_id: str | None = None
                  ) -> asyncpg.Record | None:
    """``unconfirmed``/``rejected_unconfirmed`` → ``received`` (the provider confirmed it),
    with the provider's ``amount`` and ``loan_id`` when given (its word wins over the
    wallet's report); the row after, or None if it was not waiting (already credited)."""
    return await conn.fetchrow(
        f"UPDATE payments SET status = 'received', confirmed_at = $2, updated_at = now(),"
        f" rejection_reason = NULL, amount = coalesce($3, amount),"
        f" loan_id = coalesce($4, loan_id) WHERE id = $1"
        f" AND status IN ('unconfirmed', 'rejected_unconfirmed') RETURNING {PAYMENT_COLS}",
        payment_id, at, amount, loan_id)


async def adopt(conn: Conn, payment_id: uuid.UUID, partner_id: str) -> None:
    """A wallet reported a transaction a callback recorded first: it may read it too."""
    await conn.execute("UPDATE payments SET partner_id = $2 WHERE id = $1"
                       " AND partner_id IS NULL", payment_id, partner_id)


# ``confirm_next_at`` is the lease, moved from the service's clock (``$1``)
_CLAIM_UNCONFIRMED_SQL = claim_sql(
    "payments", lease_column="confirm_next_at", now="$1", lease_s="$2", limit="$3",
    also="confirm_attempts = confirm_attempts + 1",
    due="status = 'unconfirmed' AND confirm_next_at <= $1"
        " AND ($4::uuid[] IS NULL OR id = ANY($4::uuid[]))",
    order_by="confirm_next_at",
    returning=f"{PAYMENT_COLS}, confirm_attempts, confirm_deadline")


async def claim_unconfirmed(conn: Conn, *, now: dt.datetime, lease_s: float, limit: int,
                            only: list[uuid.UUID] | None = None) -> list[asyncpg.Record]:
    """Claim wallet reports due for a confirmation attempt (a lease; replicas share)."""
    return list(await conn.fetch(_CLAIM_UNCONFIRMED_SQL, now, lease_s, limit, only))


async def retry_confirmation(conn: Conn, payment_id: uuid.UUID, next_at: dt.datetime,
                             answer: str) -> None:
    await conn.execute(
        "UPDATE payments SET confirm_next_at = $2, confirm_last_answer = $3"
        " WHERE id = $1 AND status = 'unconfirmed'", payment_id, next_at, answer[:500])


async def reject_unconfirmed(conn: Conn, payment_id: uuid.UUID, reason: str) -> bool:
    """``unconfirmed`` → ``rejected_unconfirmed``: nothing was credited, nothing is owed."""
    row = await conn.fetchval(
        "UPDATE payments SET status = 'rejected_unconfirmed', rejection_reason = $2,"
        " confirm_last_answer = $2, updated_at = now()"
        " WHERE id = $1 AND status = 'unconfirmed' RETURNING 1", payment_id, reason[:500])
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


async def payment_by_provider_reference(conn: Conn, provider: str,
                                        provider_reference: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PAYMENT_COLS} FROM payments WHERE provider = $1 AND provider_reference = $2",
        provider, provider_reference)


# -- the day's payments (GET /v1/payments) -------------------------------------------

LISTING_KINDS = ("collection", "payout", "refund", "withdrawal")

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
  SELECT CASE kind WHEN 'disbursement' THEN 'payout' ELSE kind END, id, created_at,
         status, amount, currency, loan_id, partner_id, msisdn, provider,
         provider_reference, payment_id, saga_id, failure_reason, NULL::text, completed_at
    FROM payouts
   WHERE ((kind = 'disbursement' AND 'payout' = ANY($3::text[]))
          OR (kind = 'refund' AND 'refund' = ANY($3::text[]))
          OR (kind = 'withdrawal' AND 'withdrawal' = ANY($3::text[])))
     AND created_at >= $1 AND created_at < $2
) day
WHERE ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR partner_id = $5)
"""


async def list_day_payments(conn: Conn, *, start: dt.datetime, end: dt.datetime,
                            kinds: list[str], status: str | None, partner_id: str | None,
                            after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                            ) -> list[asyncpg.Record]:
    """Payments created in ``[start, end)`` (a local day's bounds, as UTC instants), oldest
    first, after the keyset ``after``."""
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


# -- a provider's day, for reconciliation -------------------------------------------


async def provider_movements(conn: Conn, provider: str, day: dt.date
                             ) -> list[asyncpg.Record]:
    """Completed payouts and confirmed collections through ``provider`` on the business
    ``day`` (a local day in Africa/Casablanca, as everywhere in the platform)."""
    return list(await conn.fetch(
        "SELECT provider_reference AS ref, kind, amount, saga_id AS our_ref, loan_id"
        " FROM payouts WHERE provider = $1 AND status = 'completed'"
        " AND (completed_at AT TIME ZONE 'Africa/Casablanca')::date = $2"
        " UNION ALL"
        " SELECT provider_reference, 'collection', amount, id::text, loan_id"
        " FROM payments WHERE provider = $1 AND source = 'callback'"
        " AND (received_at AT TIME ZONE 'Africa/Casablanca')::date = $2", provider, day))
