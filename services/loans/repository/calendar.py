"""The business date, working days and holidays (and the audit of their changes)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import asyncpg

from services.loans.domain.calendar import WorkingCalendar
from services.loans.repository import Conn

CALENDAR_SPAN_DAYS = 5 * 366 + 60
"""How far ahead of a start date the holidays a schedule may need are read."""


async def business_date(conn: Conn) -> asyncpg.Record | None:
    """The stored business date and the last date closed (None before the first close)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT business_date, last_closed, updated_at FROM business_date WHERE id")
    return row


async def advance(conn: Conn, closed: date) -> None:
    """Close of business closed ``closed``: the business date is the day after (never
    moving backwards)."""
    await conn.execute(
        "INSERT INTO business_date (id, business_date, last_closed) VALUES (true, $1, $2)"
        " ON CONFLICT (id) DO UPDATE SET business_date = greatest(business_date.business_date,"
        " EXCLUDED.business_date), last_closed = greatest(business_date.last_closed,"
        " EXCLUDED.last_closed), updated_at = now()",
        closed + timedelta(days=1), closed)


async def working_calendar(conn: Conn, start: date,
                           span_days: int = CALENDAR_SPAN_DAYS) -> WorkingCalendar:
    """The calendar from ``start`` (a few days before too) over ``span_days``."""
    weekdays = await conn.fetch("SELECT weekday FROM working_days WHERE working")
    days = await conn.fetch("SELECT day FROM holidays WHERE day BETWEEN $1 AND $2",
                            *calendar_window(start, span_days))
    return WorkingCalendar(frozenset(r["weekday"] for r in weekdays),
                           frozenset(r["day"] for r in days))


def calendar_window(start: date, span_days: int = CALENDAR_SPAN_DAYS) -> tuple[date, date]:
    """The days whose holidays ``working_calendar`` reads for a start date."""
    return start - timedelta(days=60), start + timedelta(days=span_days)


async def working_days(conn: Conn) -> dict[int, bool]:
    rows = await conn.fetch("SELECT weekday, working FROM working_days ORDER BY weekday")
    return {r["weekday"]: r["working"] for r in rows}


async def set_working_days(conn: Conn, working: dict[int, bool], by: str) -> None:
    before = await working_days(conn)
    await conn.executemany(
        "INSERT INTO working_days (weekday, working) VALUES ($1, $2)"
        " ON CONFLICT (weekday) DO UPDATE SET working = EXCLUDED.working",
        list(working.items()))
    await audit(conn, by, "working_days.set", "working_days",
                {str(k): v for k, v in before.items()},
                {str(k): v for k, v in {**before, **working}.items()})


def holiday_json(r: asyncpg.Record) -> dict[str, Any]:
    return {"date": r["day"].isoformat(), "name": r["name"], "provisional": r["provisional"],
            "updated_by": r["updated_by"], "updated_at": r["updated_at"].isoformat()}


async def holidays(conn: Conn, start: date | None, end: date | None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT day, name, provisional, updated_by, updated_at FROM holidays"
        " WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day <= $2)"
        " ORDER BY day", start, end)
    return rows


async def holiday(conn: Conn, day: date, *, lock: bool = False) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT day, name, provisional, updated_by, updated_at FROM holidays WHERE day = $1"
        + (" FOR UPDATE" if lock else ""), day)
    return row


async def upsert_holiday(conn: Conn, day: date, name: str, provisional: bool, by: str
                         ) -> asyncpg.Record:
    before = await holiday(conn, day, lock=True)
    row = await conn.fetchrow(
        "INSERT INTO holidays (day, name, provisional, updated_by) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (day) DO UPDATE SET name = EXCLUDED.name,"
        " provisional = EXCLUDED.provisional, updated_by = EXCLUDED.updated_by,"
        " updated_at = now() RETURNING day, name, provisional, updated_by, updated_at",
        day, name, provisional, by)
    assert row is not None
    await audit(conn, by, "holiday.update" if before else "holiday.create", day.isoformat(),
                _plain(before), _plain(row))
    return row


async def move_holiday(conn: Conn, day: date, new_day: date, name: str, provisional: bool,
                       by: str) -> asyncpg.Record:
    """A holiday whose date changed (a confirmed Islamic date): one audited change."""
    before = await holiday(conn, day, lock=True)
    await conn.execute("DELETE FROM holidays WHERE day = $1", day)
    row = await conn.fetchrow(
        "INSERT INTO holidays (day, name, provisional, updated_by) VALUES ($1, $2, $3, $4)"
        " RETURNING day, name, provisional, updated_by, updated_at",
        new_day, name, provisional, by)
    assert row is not None
    await audit(conn, by, "holiday.move", day.isoformat(), _plain(before), _plain(row))
    return row


async def delete_holiday(conn: Conn, day: date, by: str) -> bool:
    before = await holiday(conn, day, lock=True)
    if before is None:
        return False
    await conn.execute("DELETE FROM holidays WHERE day = $1", day)
    await audit(conn, by, "holiday.delete", day.isoformat(), _plain(before), None)
    return True


def _plain(r: asyncpg.Record | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"date": r["day"].isoformat(), "name": r["name"], "provisional": r["provisional"]}


async def audit(conn: Conn, by: str, action: str, subject: str,
                before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    await conn.execute(
        "INSERT INTO calendar_audit (by_sub, action, subject, before, after)"
        " VALUES ($1, $2, $3, $4, $5)", by, action, subject, before, after)


async def audit_log(conn: Conn, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, at, by_sub, action, subject, before, after FROM calendar_audit"
        " ORDER BY id DESC LIMIT $1", limit)
    return [{"id": r["id"], "at": r["at"].isoformat(), "by": r["by_sub"],
             "action": r["action"], "subject": r["subject"],
             "before": _json(r["before"]), "after": _json(r["after"])} for r in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
