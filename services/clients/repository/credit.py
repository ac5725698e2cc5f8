"""Credit accounts (one locked row per client) and reservations."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.clients.domain.credit import CreditAccount
from services.clients.repository import Conn


async def open_account(conn: Conn, client_id: str, limit: Decimal) -> None:
    await conn.execute(
        "INSERT INTO credit_accounts (client_id, credit_limit) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING", client_id, limit)


async def get_account(conn: Conn, client_id: str, *, for_update: bool = False
                      ) -> CreditAccount | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        "SELECT client_id, credit_limit, cycle, reserved, outstanding FROM credit_accounts"
        f" WHERE client_id = $1{lock}", client_id)
    if row is None:
        return None
    return CreditAccount(row["client_id"], row["credit_limit"], row["cycle"], row["reserved"],
                         row["outstanding"])


async def save_account(conn: Conn, a: CreditAccount) -> None:
    await conn.execute(
        "UPDATE credit_accounts SET credit_limit = $2, cycle = $3, reserved = $4,"
        " outstanding = $5, updated_at = now() WHERE client_id = $1",
        a.client_id, a.credit_limit, a.cycle, a.reserved, a.outstanding)


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    client_id: str
    saga_id: str
    loan_id: str
    amount: Decimal
    status: str
    reject_reason: str | None
    reject_detail: str | None
    outstanding: Decimal


_RES_COLUMNS = ("reservation_id, client_id, saga_id, loan_id, amount, status, reject_reason,"
                " reject_detail, outstanding")


async def get_reservation(conn: Conn, reservation_id: str
                          ) -> Reservation | None:
    row = await conn.fetchrow(
        f"SELECT {_RES_COLUMNS} FROM reservations WHERE reservation_id = $1 FOR UPDATE",
        reservation_id)
    return Reservation(**dict(row)) if row else None


async def reservation_for_loan(conn: Conn, loan_id: str) -> Reservation | None:
    """The reservation that carries this loan's exposure (the newest live one).

    Not locked: lock the client's credit account first, then re-read the
    reservation with ``get_reservation`` (one lock order everywhere: no deadlock).
    """
    row = await conn.fetchrow(
        f"SELECT {_RES_COLUMNS} FROM reservations WHERE loan_id = $1"
        " ORDER BY (status IN ('reserved', 'outstanding')) DESC, created_at DESC LIMIT 1",
        loan_id)
    return Reservation(**dict(row)) if row else None


async def insert_reservation(conn: Conn, r: Reservation) -> None:
    await conn.execute(
        f"INSERT INTO reservations ({_RES_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        r.reservation_id, r.client_id, r.saga_id, r.loan_id, r.amount, r.status,
        r.reject_reason, r.reject_detail, r.outstanding)


async def set_reservation(conn: Conn, reservation_id: str, *, status: str,
                          outstanding: Decimal) -> None:
    await conn.execute(
        "UPDATE reservations SET status = $2, outstanding = $3, updated_at = now()"
        " WHERE reservation_id = $1", reservation_id, status, outstanding)


async def live_reservations(conn: Conn, client_id: str) -> list[Reservation]:
    """The reservations that make up the client's exposure, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_RES_COLUMNS} FROM reservations WHERE client_id = $1"
        " AND status IN ('reserved', 'outstanding') ORDER BY created_at", client_id)
    return [Reservation(**dict(r)) for r in rows]
