"""Reconciliation: our side of a provider's business day, its alerts, its runs and the
scheduler's lease."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.payments.domain.reconciliation import Alert
from services.payments.repository import Conn

ALERT_COLS = ("id, provider, business_date, mismatch, reference, kind, loan_id, ours_amount,"
              " theirs_amount, status, raised_at, resolved_at, resolved_by, resolution_note")


async def our_day(conn: Conn, provider: str, start: dt.datetime, end: dt.datetime
                  ) -> list[asyncpg.Record]:
    """Money that moved through ``provider`` in ``[start, end)`` on our books: completed
    payouts and refunds (by completion), credited collections (by receipt)."""
    return list(await conn.fetch(
        "SELECT 'payout' AS source, id, provider_reference AS ref, kind, amount,"
        " saga_id AS our_ref, loan_id, status FROM payouts WHERE provider = $1"
        " AND status = 'completed' AND completed_at >= $2 AND completed_at < $3"
        " UNION ALL"
        " SELECT 'payment', id, provider_reference, 'collection', amount, id::text, loan_id,"
        " status FROM payments WHERE provider = $1 AND confirmed_at IS NOT NULL"
        " AND received_at >= $2 AND received_at < $3", provider, start, end))


async def linked(conn: Conn, provider: str, refs: list[str], correlation_ids: list[uuid.UUID],
                 request_refs: list[str]) -> list[asyncpg.Record]:
    """Our payouts and payments (any day, any status) a statement's entries name."""
    return list(await conn.fetch(
        "SELECT 'payout' AS source, id, provider_reference AS ref, kind, amount,"
        " saga_id AS our_ref, loan_id, status, correlation_id FROM payouts"
        " WHERE provider = $1 AND (provider_reference = ANY($2::text[])"
        " OR correlation_id = ANY($3::uuid[]) OR saga_id = ANY($4::text[]))"
        " UNION ALL"
        " SELECT 'payment', id, provider_reference, 'collection', amount, id::text, loan_id,"
        " status, NULL::uuid FROM payments WHERE provider = $1"
        " AND provider_reference = ANY($2::text[])",
        provider, refs, correlation_ids, request_refs))


async def raise_alert(conn: Conn, provider: str, day: dt.date, alert: Alert,
                      detail: dict[str, Any]) -> uuid.UUID | None:
    """Record ``alert`` once; its id if it is new, None if it was raised before."""
    value: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO reconciliation_alerts (id, provider, business_date, mismatch, reference,"
        " kind, loan_id, ours_amount, theirs_amount, detail) VALUES ($1, $2, $3, $4, $5, $6,"
        " $7, $8, $9, $10::jsonb) ON CONFLICT DO NOTHING RETURNING id",
        uuid.uuid4(), provider, day, alert.mismatch, alert.reference, alert.kind,
        alert.loan_id, alert.ours, alert.theirs, orjson.dumps(detail).decode())
    return value


async def close_cleared(conn: Conn, provider: str, day: dt.date,
                        still: list[tuple[str, str]]) -> int:
    """Open alerts of the day that the latest run no longer finds are resolved by it."""
    result: str = await conn.execute(
        "UPDATE reconciliation_alerts SET status = 'resolved', resolved_at = now(),"
        " resolved_by = 'reconciliation', resolution_note = 'no longer found by a later run'"
        " WHERE provider = $1 AND business_date = $2 AND status = 'open'"
        " AND (mismatch, reference) NOT IN (SELECT * FROM unnest($3::text[], $4::text[]))",
        provider, day, [m for m, _ in still], [r for _, r in still])
    return int(result.split()[-1])


async def open_count(conn: Conn, provider: str) -> int:
    value: int = await conn.fetchval(
        "SELECT count(*) FROM reconciliation_alerts WHERE provider = $1 AND status = 'open'",
        provider)
    return value


async def record_run(conn: Conn, provider: str, day: dt.date, at: dt.datetime,
                     summary: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO reconciliation_runs (provider, business_date, runs, last_run_at,"
        " last_summary) VALUES ($1, $2, 1, $3, $4::jsonb) ON CONFLICT (provider, business_date)"
        " DO UPDATE SET runs = reconciliation_runs.runs + 1, last_run_at = $3,"
        " last_summary = $4::jsonb", provider, day, at, orjson.dumps(summary).decode())


async def last_run(conn: Conn, provider: str, day: dt.date) -> dt.datetime | None:
    value: dt.datetime | None = await conn.fetchval(
        "SELECT last_run_at FROM reconciliation_runs WHERE provider = $1"
        " AND business_date = $2", provider, day)
    return value


async def alerts_page(conn: Conn, *, provider: str | None, day: dt.date | None,
                      status: str | None, after: tuple[dt.datetime, uuid.UUID] | None,
                      limit: int) -> list[asyncpg.Record]:
    """Alerts oldest first, after the keyset ``after`` (raised_at, id)."""
    after_at, after_id = after if after else (None, None)
    return list(await conn.fetch(
        f"SELECT {ALERT_COLS} FROM reconciliation_alerts"
        " WHERE ($1::text IS NULL OR provider = $1) AND ($2::date IS NULL OR business_date = $2)"
        " AND ($3::text IS NULL OR status = $3)"
        " AND ($4::timestamptz IS NULL OR (raised_at, id) > ($4, $5::uuid))"
        " ORDER BY raised_at, id LIMIT $6", provider, day, status, after_at, after_id, limit))


async def alert(conn: Conn, alert_id: uuid.UUID, *, lock: bool = False
                ) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        f"SELECT {ALERT_COLS} FROM reconciliation_alerts WHERE id = $1{suffix}", alert_id)


async def resolve_alert(conn: Conn, alert_id: uuid.UUID, by: str, note: str
                        ) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE reconciliation_alerts SET status = 'resolved', resolved_at = now(),"
        f" resolved_by = $2, resolution_note = $3 WHERE id = $1 AND status = 'open'"
        f" RETURNING {ALERT_COLS}", alert_id, by, note)


async def take_lease(conn: Conn, name: str, holder: str, seconds: float) -> bool:
    """Hold the singleton ``name`` for ``seconds`` (renewed by its holder); False if
    another replica holds it."""
    value = await conn.fetchval(
        "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2,"
        " now() + make_interval(secs => $3)) ON CONFLICT (name) DO UPDATE"
        " SET holder = $2, expires_at = now() + make_interval(secs => $3)"
        " WHERE job_leases.holder = $2 OR job_leases.expires_at < now() RETURNING 1",
        name, holder, seconds)
    return value is not None


def amount(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)
