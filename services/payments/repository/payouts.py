"""Payouts (loan disbursements, refund payouts, savings withdrawals): rows ↔ ``Payout``,
the worker's lease, and the ``NOTIFY`` that wakes it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain.payouts import PayoutStatus
from services.payments.repository import Conn
from shared.leases import claim_sql


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
    request_date: dt.datetime | None = None
    in_doubt_since: dt.datetime | None = None
    in_doubt_reason: str | None = None
    doubt_queries: int = 0
    resend_requested: bool = False
    account_id: str | None = None  # a withdrawal's savings account (else None)

    @property
    def sent(self) -> bool:
        """The request may have left our hands (its ``requestDate`` is set before the
        first send)."""
        return self.request_date is not None

    def public(self) -> dict[str, Any]:
        return {
            "payout_id": str(self.id), "kind": self.kind, "saga_id": self.saga_id,
            "loan_id": self.loan_id, "msisdn": self.msisdn, "amount": self.amount,
            "currency": self.currency, "provider": self.provider, "status": self.status.value,
            "provider_reference": self.provider_reference, "failure_reason": self.failure_reason,
            "resolved_by": self.resolved_by, "deadline": self.deadline,
            "created_at": self.created_at, "completed_at": self.completed_at,
            "payment_id": str(self.payment_id) if self.payment_id else None,
            "in_doubt_since": self.in_doubt_since, "account_id": self.account_id,
        }


PAYOUT_COLS = ", ".join(Payout.__dataclass_fields__)

# The channel a recorded payout is announced on: one per schema, like the outbox's.
PAYOUTS_CHANNEL_SQL = "current_schema() || '_payouts'"


def payouts_channel(schema: str) -> str:
    return f"{schema}_payouts"


def payout_of(row: asyncpg.Record) -> Payout:
    data = dict(row)
    data["status"] = PayoutStatus(data["status"])
    return Payout(**{k: data[k] for k in Payout.__dataclass_fields__})


async def insert_payout(conn: Conn, *, kind: str, saga_id: str,
                        request_hash: str, loan_id: str, client_id: str, partner_id: str,
                        payment_id: uuid.UUID | None, msisdn: str, amount: Decimal,
                        currency: str, provider: str, deadline: dt.datetime,
                        journal_transfer_id: str, account_id: str | None = None) -> bool:
    """Insert once per saga step; False if the step already has a payout.

    An inserted payout also queues ``NOTIFY <schema>_payouts``, which PostgreSQL
    delivers only when the transaction commits: the payout workers (of every
    replica) wake up at once instead of at their next poll.
    """
    inserted = await conn.fetchval(
        "WITH ins AS (INSERT INTO payouts (id, kind, saga_id, correlation_id, request_hash,"
        " loan_id, client_id, partner_id, payment_id, msisdn, amount, currency, provider,"
        " deadline, journal_transfer_id, account_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (saga_id) DO NOTHING RETURNING 1)"
        f" SELECT count(*) FROM (SELECT pg_notify({PAYOUTS_CHANNEL_SQL}, '') FROM ins) n",
        uuid.uuid4(), kind, saga_id, uuid.uuid5(uuid.NAMESPACE_URL, f"noria:payout:{saga_id}"),
        request_hash, loan_id, client_id, partner_id, payment_id, msisdn, amount, currency,
        provider, deadline, journal_transfer_id, account_id)
    return bool(inserted)


async def payout_by_saga(conn: Conn, saga_id: str) -> Payout | None:
    row = await conn.fetchrow(f"SELECT {PAYOUT_COLS} FROM payouts WHERE saga_id = $1", saga_id)
    return payout_of(row) if row else None


async def payout(conn: Conn, payout_id: uuid.UUID, *, lock: bool = False
                 ) -> Payout | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT {PAYOUT_COLS} FROM payouts WHERE id = $1{suffix}",
                              payout_id)
    return payout_of(row) if row else None


async def payout_by_correlation(conn: Conn, provider: str, *,
                                correlation_id: uuid.UUID | None = None,
                                server_correlation_id: str | None = None) -> Payout | None:
    row = await conn.fetchrow(
        f"SELECT {PAYOUT_COLS} FROM payouts WHERE provider = $1 AND"
        " (correlation_id = $2 OR server_correlation_id = $3)",
        provider, correlation_id, server_correlation_id)
    return payout_of(row) if row else None


# ``next_attempt_at`` is the lease: a claimed payout is next due when the lease ends
_CLAIM_DUE_SQL = claim_sql(
    "payouts", lease_column="next_attempt_at", lease_s="$2", limit="$1",
    also="attempts = attempts + 1, updated_at = now()",
    due="status IN ('pending', 'submitted', 'in_doubt') AND next_attempt_at <= now()",
    order_by="next_attempt_at", returning=PAYOUT_COLS)


async def claim_due(conn: Conn, limit: int, lease_s: float) -> list[Payout]:
    """Claim due payouts with a lease (so one worker replica handles each at a time)."""
    rows = await conn.fetch(_CLAIM_DUE_SQL, limit, lease_s)
    return [payout_of(r) for r in rows]


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


async def set_request_date(conn: Conn, payout_id: uuid.UUID, at: dt.datetime) -> dt.datetime:
    """The request's ``requestDate``, fixed before it is first sent (so every resend is
    byte-identical, and a payout without one was never sent)."""
    value = await conn.fetchval(
        "UPDATE payouts SET request_date = coalesce(request_date, $2), updated_at = now()"
        " WHERE id = $1 RETURNING request_date", payout_id, at)
    assert value is not None
    return value  # type: ignore[no-any-return]


async def clear_resend(conn: Conn, payout_id: uuid.UUID) -> None:
    await conn.execute("UPDATE payouts SET resend_requested = false WHERE id = $1", payout_id)


async def request_resend(conn: Conn, payout_id: uuid.UUID) -> None:
    """An in-doubt payout: ask the provider again now and, if it does not know the request,
    send the same request (same correlation id, same body) once more."""
    await conn.execute(
        "UPDATE payouts SET resend_requested = true, next_attempt_at = now(),"
        " updated_at = now() WHERE id = $1 AND status = 'in_doubt'", payout_id)
    await conn.execute(f"SELECT pg_notify({PAYOUTS_CHANNEL_SQL}, '')")


async def mark_in_doubt(conn: Conn, payout_id: uuid.UUID, *, since: dt.datetime,
                        reason: str, server_correlation_id: str | None,
                        next_after_s: float) -> None:
    await conn.execute(
        "UPDATE payouts SET status = 'in_doubt', in_doubt_since = $2, in_doubt_reason = $3,"
        " server_correlation_id = coalesce($4, server_correlation_id), doubt_queries = 0,"
        " next_attempt_at = now() + make_interval(secs => $5), updated_at = now()"
        " WHERE id = $1 AND status IN ('pending', 'submitted')",
        payout_id, since, reason[:1000], server_correlation_id, next_after_s)


async def doubt_asked(conn: Conn, payout_id: uuid.UUID, *, error: str,
                      server_correlation_id: str | None, next_after_s: float) -> None:
    """An in-doubt payout was asked again and the provider still did not settle it."""
    await conn.execute(
        "UPDATE payouts SET doubt_queries = doubt_queries + 1, last_error = $2,"
        " server_correlation_id = coalesce($3, server_correlation_id),"
        " next_attempt_at = now() + make_interval(secs => $4), updated_at = now()"
        " WHERE id = $1 AND status = 'in_doubt'",
        payout_id, error[:1000], server_correlation_id, next_after_s)


async def in_doubt_page(conn: Conn, *, limit: int,
                        after: tuple[dt.datetime, uuid.UUID] | None,
                        kind: str | None, provider: str | None) -> list[Payout]:
    """In-doubt payouts, oldest doubt first, keyset-paged on (in_doubt_since, id)."""
    after_at, after_id = after if after is not None else (None, None)
    rows = await conn.fetch(
        f"SELECT {PAYOUT_COLS} FROM payouts WHERE status = 'in_doubt'"
        " AND ($2::timestamptz IS NULL OR (in_doubt_since, id) > ($2, $3::uuid))"
        " AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR provider = $5)"
        " ORDER BY in_doubt_since, id LIMIT $1", limit, after_at, after_id, kind, provider)
    return [payout_of(r) for r in rows]


async def in_doubt_counts(conn: Conn, providers: list[str]) -> list[asyncpg.Record]:
    """In-doubt payouts by kind and provider, zero for every configured pair."""
    return list(await conn.fetch(
        "SELECT k.kind, pr.provider, count(p.id) AS n"
        " FROM (VALUES ('disbursement'), ('refund'), ('withdrawal')) AS k(kind)"
        " CROSS JOIN unnest($1::text[]) AS pr(provider)"
        " LEFT JOIN payouts p ON p.status = 'in_doubt' AND p.kind = k.kind"
        "  AND p.provider = pr.provider GROUP BY k.kind, pr.provider", providers))
