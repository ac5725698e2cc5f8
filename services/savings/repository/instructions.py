"""Standing instructions: pay a loan's due installments from a voluntary account."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from services.savings.repository import Conn

_COLS = "account_id, loan_id, max_amount, active, created_by, created_at, updated_at"


async def upsert(conn: Conn, account_id: str, loan_id: str, max_amount: Decimal | None,
                 by: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(
        "INSERT INTO standing_instructions (account_id, loan_id, max_amount, created_by)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, loan_id) DO UPDATE"
        " SET max_amount = EXCLUDED.max_amount, active = true, updated_at = now()"
        f" RETURNING {_COLS}", account_id, loan_id, max_amount, by)
    assert row is not None
    return row


async def cancel(conn: Conn, account_id: str, loan_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "UPDATE standing_instructions SET active = false, updated_at = now()"
        f" WHERE account_id = $1 AND loan_id = $2 RETURNING {_COLS}", account_id, loan_id)
    return row


async def for_account(conn: Conn, account_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLS} FROM standing_instructions WHERE account_id = $1"
        " ORDER BY created_at", account_id)
    return rows


async def active_for_loan(conn: Conn, loan_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLS} FROM standing_instructions WHERE loan_id = $1 AND active"
        " ORDER BY created_at, account_id", loan_id)
    return rows
