"""Payee lookups (``payee_lookups``): one per group saga step, claimed by the lookup job
with a lease until the provider answers."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from services.payments.repository import Conn
from shared.leases import claim_sql

COLS = ("id, saga_id, request_hash, loan_id, client_id, msisdn, provider, status,"
        " account_status, reason, attempts, next_at, last_answer, in_doubt_since,"
        " created_at, decided_at")


async def insert(conn: Conn, *, saga_id: str, request_hash: str, loan_id: str,
                 client_id: str, msisdn: str, provider: str) -> bool:
    """Record a lookup to make; False when the saga step already has one."""
    done = await conn.fetchval(
        "INSERT INTO payee_lookups (id, saga_id, request_hash, loan_id, client_id, msisdn,"
        " provider) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (saga_id) DO NOTHING"
        " RETURNING 1", uuid.uuid4(), saga_id, request_hash, loan_id, client_id, msisdn,
        provider)
    return done is not None


async def by_saga(conn: Conn, saga_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {COLS} FROM payee_lookups WHERE saga_id = $1"
        + (" FOR UPDATE" if lock else ""), saga_id)
    return row


# ``next_at`` is the lease, moved from the service's clock (``$1``)
_CLAIM_SQL = claim_sql(
    "payee_lookups", lease_column="next_at", now="$1", lease_s="$2", limit="$3",
    also="attempts = attempts + 1",
    due="status = 'pending' AND next_at <= $1 AND ($4::text[] IS NULL OR saga_id = ANY($4))",
    order_by="next_at", returning=COLS)


async def claim_due(conn: Conn, *, now: dt.datetime, lease_s: float, limit: int,
                    only: list[str] | None = None) -> list[asyncpg.Record]:
    """Claim lookups due for a question to the provider (a lease; replicas share)."""
    return list(await conn.fetch(_CLAIM_SQL, now, lease_s, limit, only))


async def decide(conn: Conn, lookup_id: uuid.UUID, status: str, *, account_status: str | None,
                 reason: str, at: dt.datetime) -> bool:
    """``pending`` → ``confirmed`` | ``refused``, once (the first word stands)."""
    done = await conn.fetchval(
        "UPDATE payee_lookups SET status = $2, account_status = $3, reason = $4,"
        " last_answer = $4, decided_at = $5 WHERE id = $1 AND status = 'pending'"
        " RETURNING 1", lookup_id, status, account_status, reason[:500], at)
    return done is not None


async def unanswered(conn: Conn, lookup_id: uuid.UUID, *, next_at: dt.datetime, answer: str,
                     at: dt.datetime) -> bool:
    """No answer: ask again at ``next_at``. True the first time (the lookup is now in
    doubt and loans is told so, once)."""
    first = await conn.fetchval(
        "UPDATE payee_lookups SET next_at = $2, last_answer = $3,"
        " in_doubt_since = COALESCE(in_doubt_since, $4) WHERE id = $1 AND status = 'pending'"
        " RETURNING in_doubt_since = $4", lookup_id, next_at, answer[:500], at)
    return bool(first)
