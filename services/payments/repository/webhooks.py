"""Webhook receipts: each provider callback's ``webhook-id`` is handled once."""

from __future__ import annotations

from services.payments.repository import Conn


async def webhook_outcome(conn: Conn, provider: str, webhook_id: str) -> str | None:
    """What was made of ``webhook_id`` when it was first received; None if never seen."""
    outcome: str | None = await conn.fetchval(
        "SELECT outcome FROM webhook_receipts WHERE provider = $1 AND webhook_id = $2",
        provider, webhook_id)
    return outcome


async def record_webhook(conn: Conn, provider: str, webhook_id: str,
                         outcome: str) -> bool:
    """Remember a webhook id; False if it was seen before (a replay)."""
    row = await conn.fetchval(
        "INSERT INTO webhook_receipts (provider, webhook_id, outcome) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1", provider, webhook_id, outcome)
    return row is not None
