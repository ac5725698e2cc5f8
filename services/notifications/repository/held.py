"""Triggers held until their client is known, and the per-client advisory lock that
serialises holding and releasing them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from shared.db import Conn


async def lock_client(conn: Conn, key: str) -> None:
    """Take the transaction-scoped advisory lock named ``key`` (released at commit/rollback)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def hold_trigger(conn: Conn, source_event_id: uuid.UUID, client_id: str,
                       loan_id: str | None, source_type: str,
                       envelope: dict[str, Any]) -> bool:
    """Hold a trigger event; False when it is already held."""
    row = await conn.fetchval(
        "INSERT INTO held_triggers (source_event_id, client_id, loan_id, source_type, envelope)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_event_id) DO NOTHING RETURNING 1",
        source_event_id, client_id, loan_id, source_type, envelope)
    return row is not None


async def take_held(conn: Conn, client_id: str) -> list[dict[str, Any]]:
    """Delete and return the envelopes held for ``client_id``, oldest first."""
    rows = await conn.fetch(
        "DELETE FROM held_triggers WHERE client_id = $1 RETURNING envelope, held_at",
        client_id)
    return [r["envelope"] for r in sorted(rows, key=lambda r: r["held_at"])]


async def clients_held_since(conn: Conn, before: dt.datetime, limit: int) -> list[str]:
    """Clients with a trigger held since before ``before`` (their events are older)."""
    rows = await conn.fetch(
        "SELECT client_id FROM held_triggers WHERE held_at < $1"
        " GROUP BY client_id ORDER BY client_id LIMIT $2", before, limit)
    return [r["client_id"] for r in rows]


async def held_count(conn: Conn, partner_id: str | None) -> int:
    """How many triggers wait for their client (a partner sees its loans' ones)."""
    value: int = await conn.fetchval(
        "SELECT count(*) FROM held_triggers h LEFT JOIN loan_clients l USING (loan_id)"
        " WHERE $1::text IS NULL OR l.partner_id = $1", partner_id)
    return value
