"""The local projection of clients (from ``clients.events``)."""

from __future__ import annotations

from dataclasses import dataclass

from services.savings.repository import Conn


@dataclass(frozen=True)
class ClientView:
    client_id: str
    partner_id: str | None
    kyc_status: str
    blocked: bool
    phone: str | None
    office_id: str | None = None
    office_path: str | None = None


async def upsert(conn: Conn, client_id: str, **values: object) -> None:
    """Set the given columns of the client's row, creating it if needed."""
    cols = list(values)
    placeholders = ", ".join(f"${i + 2}" for i in range(len(cols)))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
    await conn.execute(
        f"INSERT INTO client_projection (client_id, {', '.join(cols)}) VALUES ($1, {placeholders})"
        f" ON CONFLICT (client_id) DO UPDATE SET {updates}, updated_at = now()",
        client_id, *values.values())


async def get(conn: Conn, client_id: str) -> ClientView | None:
    row = await conn.fetchrow(
        "SELECT client_id, partner_id, kyc_status, blocked, phone, office_id, office_path"
        " FROM client_projection"
        " WHERE client_id = $1", client_id)
    if row is None:
        return None
    return ClientView(row["client_id"], row["partner_id"], row["kyc_status"], row["blocked"],
                      row["phone"], row["office_id"], row["office_path"])
