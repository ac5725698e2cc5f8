"""Closed accounting periods, year-end closes and manual journals in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from services.payments.repository import Conn


async def closed_period_of(conn: Conn, day: dt.date) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT period FROM closed_periods WHERE $1 BETWEEN starts_on AND ends_on", day)
    return value


async def close_period(conn: Conn, period: str, starts_on: dt.date, ends_on: dt.date,
                       by: str) -> tuple[asyncpg.Record, bool]:
    """Close a month; (the row, whether this call closed it). Entries being posted in
    it are waited for first (a SHARE lock on the entries), so none slips in after."""
    await conn.execute("LOCK TABLE journal_entries IN SHARE MODE")
    row = await conn.fetchrow(
        "INSERT INTO closed_periods (period, starts_on, ends_on, closed_by)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (period) DO NOTHING RETURNING *",
        period, starts_on, ends_on, by)
    if row is not None:
        return row, True
    existing = await conn.fetchrow("SELECT * FROM closed_periods WHERE period = $1", period)
    assert existing is not None
    return existing, False


async def periods(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM closed_periods ORDER BY starts_on")
    return [dict(r) for r in rows]


async def year_end(conn: Conn, year: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM year_end_closes WHERE year = $1", year)


async def record_year_end(conn: Conn, year: int, transfer_id: str, net_income: Any,
                          by: str) -> None:
    await conn.execute(
        "INSERT INTO year_end_closes (year, transfer_id, net_income, closed_by)"
        " VALUES ($1, $2, $3, $4)", year, transfer_id, net_income, by)


async def insert_journal(conn: Conn, *, journal_id: uuid.UUID, business_date: dt.date,
                         reason: str, attachments: list[str], lines: list[dict[str, str]],
                         office_id: str | None, amount: Any, by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO manual_journals (id, business_date, reason, attachments, lines,"
        " office_id, amount, proposed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " RETURNING *", journal_id, business_date, reason, attachments, lines, office_id,
        amount, by)
    assert row is not None
    return row


async def journal(conn: Conn, journal_id: uuid.UUID, *, lock: bool = False
                  ) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM manual_journals WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        journal_id)


async def decide(conn: Conn, journal_id: uuid.UUID, status: str, by: str, note: str | None,
                 transfer_id: str | None) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE manual_journals SET status = $2, decided_by = $3, decided_at = now(),"
        " decision_note = $4, transfer_id = $5 WHERE id = $1 RETURNING *",
        journal_id, status, by, note, transfer_id)
    assert row is not None
    return row


async def journals(conn: Conn, status: str | None, limit: int, *,
                   after: tuple[dt.datetime, uuid.UUID] | None = None,
                   newest_first: bool = False, offices: list[str] | None = None
                   ) -> list[asyncpg.Record]:
    """Journals in the order they were proposed (keyset on (proposed_at, id)), after
    the keyset ``after``; newest first when asked."""
    at, ident = after if after else (None, None)
    if newest_first:
        keyset, order = "(proposed_at, id) < ($3, $4::uuid)", "DESC"
    else:
        keyset, order = "(proposed_at, id) > ($3, $4::uuid)", "ASC"
    return list(await conn.fetch(
        "SELECT * FROM manual_journals WHERE ($1::text IS NULL OR status = $1)"
        f" AND ($3::timestamptz IS NULL OR {keyset})"
        " AND ($5::text[] IS NULL OR office_id = ANY($5::text[]))"
        f" ORDER BY proposed_at {order}, id {order} LIMIT $2", status, limit, at, ident,
        offices))
