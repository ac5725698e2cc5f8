"""Delivery receipts and the message parts they apply to: storing a receipt, the batch
waiting to be applied, the parts' statuses, and the parts still without a receipt."""

from __future__ import annotations

import uuid

import asyncpg

from services.notifications.domain.messages import Status
from shared.db import Conn


async def store_receipt(conn: Conn, provider: str, provider_id: str, stat: str,
                        error: str) -> None:
    await conn.execute(
        "INSERT INTO receipts (provider, provider_message_id, stat, error)"
        " VALUES ($1, $2, $3, $4)", provider, provider_id, stat, error)


async def store_receipts(conn: Conn, receipts: list[tuple[str, str, str, str]]) -> None:
    """Store several (provider, provider id, stat, error) receipts in one statement."""
    await conn.execute(
        "INSERT INTO receipts (provider, provider_message_id, stat, error)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
        [r[0] for r in receipts], [r[1] for r in receipts], [r[2] for r in receipts],
        [r[3] for r in receipts])


async def pending_receipts(conn: Conn, limit: int = 200) -> list[asyncpg.Record]:
    """Unapplied receipts whose part is now known, oldest first, locked for applying."""
    return list(await conn.fetch(
        "SELECT r.id, r.provider, r.provider_message_id, r.stat, p.message_id, p.attempt"
        " FROM receipts r JOIN message_parts p USING (provider, provider_message_id)"
        " WHERE r.applied_at IS NULL ORDER BY r.id LIMIT $1 FOR UPDATE OF r SKIP LOCKED",
        limit))


async def part_statuses(conn: Conn, messages: list[tuple[uuid.UUID, int]]
                        ) -> dict[tuple[uuid.UUID, int], dict[tuple[str, str], Status]]:
    """The parts of several (message, attempt) pairs and their statuses, in one read."""
    rows = await conn.fetch(
        "SELECT p.message_id, p.attempt, p.provider, p.provider_message_id, p.status"
        " FROM message_parts p JOIN unnest($1::uuid[], $2::int[]) AS k(message_id, attempt)"
        " ON p.message_id = k.message_id AND p.attempt = k.attempt",
        [m for m, _ in messages], [a for _, a in messages])
    out: dict[tuple[uuid.UUID, int], dict[tuple[str, str], Status]] = {
        key: {} for key in messages}
    for r in rows:
        out[(r["message_id"], r["attempt"])][(r["provider"], r["provider_message_id"])] = (
            r["status"])
    return out


async def apply_part_statuses(conn: Conn, receipt_ids: list[int],
                              parts: list[tuple[str, str, Status, str]]) -> None:
    """Mark receipts applied and set each part's (provider, id, status, stat), once each."""
    await conn.execute("UPDATE receipts SET applied_at = now() WHERE id = ANY($1::bigint[])",
                       receipt_ids)
    await conn.execute(
        "UPDATE message_parts p SET status = u.status, receipt = u.stat"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
        " AS u(provider, provider_message_id, status, stat)"
        " WHERE p.provider = u.provider AND p.provider_message_id = u.provider_message_id",
        [x[0] for x in parts], [x[1] for x in parts], [x[2] for x in parts],
        [x[3] for x in parts])


async def unreceipted_parts(conn: Conn, provider: str,
                            limit: int = 100) -> list[str]:
    rows = await conn.fetch(
        "SELECT p.provider_message_id FROM message_parts p JOIN messages m"
        " ON m.id = p.message_id WHERE p.provider = $1 AND p.status = 'submitted'"
        " AND m.status = 'submitted' ORDER BY m.submitted_at LIMIT $2", provider, limit)
    return [r["provider_message_id"] for r in rows]
