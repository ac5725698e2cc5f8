"""The local projection of clients (from ``clients.events``)."""

from __future__ import annotations

from dataclasses import dataclass

from services.loans.repository import Conn


@dataclass(frozen=True)
class ClientView:
    client_id: str
    partner_id: str | None
    kyc_status: str
    blocked: bool


async def register(conn: Conn, client_id: str, partner_id: str) -> None:
    await conn.execute(
        "INSERT INTO client_projection (client_id, partner_id) VALUES ($1, $2)"
        " ON CONFLICT (client_id) DO UPDATE SET partner_id = EXCLUDED.partner_id,"
        " updated_at = now()", client_id, partner_id)


async def set_kyc(conn: Conn, client_id: str, status: str) -> None:
    await conn.execute(
        "INSERT INTO client_projection (client_id, kyc_status) VALUES ($1, $2)"
        " ON CONFLICT (client_id) DO UPDATE SET kyc_status = EXCLUDED.kyc_status,"
        " updated_at = now()", client_id, status)


async def set_blocked(conn: Conn, client_id: str, blocked: bool) -> None:
    await conn.execute(
        "INSERT INTO client_projection (client_id, blocked) VALUES ($1, $2)"
        " ON CONFLICT (client_id) DO UPDATE SET blocked = EXCLUDED.blocked,"
        " updated_at = now()", client_id, blocked)


async def get(conn: Conn, client_id: str) -> ClientView | None:
    row = await conn.fetchrow(
        "SELECT client_id, partner_id, kyc_status, blocked FROM client_projection"
        " WHERE client_id = $1", client_id)
    if row is None:
        return None
    return ClientView(row["client_id"], row["partner_id"], row["kyc_status"], row["blocked"])
