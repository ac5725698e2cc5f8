"""Compulsory savings the loans disbursement saga asked to hold (``compulsory_holds``)."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from services.savings.repository import Conn

_COLS = ("saga_id, loan_id, client_id, partner_id, loan_product_id, principal, required,"
         " held, status, reason, created_at, updated_at")


async def get(conn: Conn, saga_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLS} FROM compulsory_holds WHERE saga_id = $1{lock}", saga_id)
    return row


async def insert(conn: Conn, *, saga_id: str, loan_id: str, client_id: str, partner_id: str,
                 loan_product_id: str, principal: Decimal, required: Decimal
                 ) -> asyncpg.Record:
    """The saga's request, once (a second insert of the same saga returns the first)."""
    await conn.execute(
        "INSERT INTO compulsory_holds (saga_id, loan_id, client_id, partner_id,"
        " loan_product_id, principal, required, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting') ON CONFLICT (saga_id) DO NOTHING",
        saga_id, loan_id, client_id, partner_id, loan_product_id, principal, required)
    row = await get(conn, saga_id, for_update=True)
    assert row is not None
    return row


async def set_state(conn: Conn, saga_id: str, status: str, *, held: Decimal | None = None,
                    reason: str | None = None) -> None:
    await conn.execute(
        "UPDATE compulsory_holds SET status = $2, held = COALESCE($3, held),"
        " reason = COALESCE($4, reason), updated_at = now() WHERE saga_id = $1",
        saga_id, status, held, reason)


async def waiting_for(conn: Conn, loan_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLS} FROM compulsory_holds WHERE loan_id = $1 AND status = 'waiting'"
        " ORDER BY created_at FOR UPDATE", loan_id)
    return rows


async def free(conn: Conn, loan_id: str, reason: str) -> int:
    """The loan is over: its holds end."""
    tag = await conn.execute(
        "UPDATE compulsory_holds SET status = 'freed', reason = $2, updated_at = now()"
        " WHERE loan_id = $1 AND status IN ('waiting', 'held')", loan_id, reason)
    return int(tag.rsplit(" ", 1)[-1])


async def for_loan(conn: Conn, loan_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLS} FROM compulsory_holds WHERE loan_id = $1 ORDER BY created_at",
        loan_id)
    return rows
