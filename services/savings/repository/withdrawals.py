"""Withdrawals: the saga's state, one row each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from services.savings.repository import Conn


@dataclass(frozen=True)
class Withdrawal:
    id: str
    account_id: str
    client_id: str
    partner_id: str
    amount: Decimal
    fee: Decimal
    msisdn: str
    status: str
    requested_by: str
    requested_on: dt.date
    reason: str | None
    provider: str | None
    provider_reference: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def hold(self) -> Decimal:
        return self.amount + self.fee


_COLS = ("id, account_id, client_id, partner_id, amount, fee, msisdn, status, requested_by,"
         " requested_on, reason, provider, provider_reference, created_at, updated_at")


def _row(r: asyncpg.Record) -> Withdrawal:
    return Withdrawal(**dict(r))


async def insert(conn: Conn, *, id: str, account_id: str, client_id: str, partner_id: str,
                 amount: Decimal, fee: Decimal, msisdn: str, requested_by: str,
                 requested_on: dt.date) -> Withdrawal:
    row = await conn.fetchrow(
        "INSERT INTO withdrawals (id, account_id, client_id, partner_id, amount, fee, msisdn,"
        " status, requested_by, requested_on) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending',"
        f" $8, $9) RETURNING {_COLS}",
        id, account_id, client_id, partner_id, amount, fee, msisdn, requested_by, requested_on)
    assert row is not None
    return _row(row)


async def get(conn: Conn, withdrawal_id: str, *, for_update: bool = False) -> Withdrawal | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLS} FROM withdrawals WHERE id = $1{lock}",
                              withdrawal_id)
    return _row(row) if row else None


async def set_status(conn: Conn, withdrawal_id: str, status: str, *, reason: str | None = None,
                     provider: str | None = None, provider_reference: str | None = None
                     ) -> None:
    await conn.execute(
        "UPDATE withdrawals SET status = $2, reason = COALESCE($3, reason),"
        " provider = COALESCE($4, provider),"
        " provider_reference = COALESCE($5, provider_reference), updated_at = now()"
        " WHERE id = $1", withdrawal_id, status, reason, provider, provider_reference)


async def count_in_month(conn: Conn, account_id: str, day: dt.date) -> int:
    """Withdrawals of the account in ``day``'s calendar month that were not released."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM withdrawals WHERE account_id = $1"
        " AND requested_on >= date_trunc('month', $2::date)::date AND requested_on <= $2::date"
        " AND status <> 'released'", account_id, day)
    return n


async def list_for(conn: Conn, *, account_id: str | None, partner_id: str | None,
                   status: str | None, limit: int, office_path: str | None = None
                   ) -> list[Withdrawal]:
    """``office_path``: only the withdrawals of that office's subtree's accounts."""
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM withdrawals WHERE ($1::text IS NULL OR account_id = $1)"
        " AND ($2::text IS NULL OR partner_id = $2) AND ($3::text IS NULL OR status = $3)"
        " AND ($5::text IS NULL OR account_id IN (SELECT a.id FROM accounts a"
        "      WHERE a.office_path = $5 OR starts_with(a.office_path, $5 || '/')))"
        " ORDER BY created_at DESC, id DESC LIMIT $4",
        account_id, partner_id, status, limit, office_path)
    return [_row(r) for r in rows]
