"""Delivery receipts and the message parts they apply to: storing a receipt, the batch
waiting to be applied, the parts' statuses, and the parts still without a receipt."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from services.notifications.domain.messages import Status
from shared.db import Conn, any_of, opaque_array


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
    """Unapplied receipts whose part is now known, oldest first, locked for applying;
    each with every part of its (message, attempt) and their statuses (``part_providers``,
    ``part_ids``, ``part_statuses``, in the same order), in one statement."""
    return list(await conn.fetch(
        "SELECT r.id, r.provider, r.provider_message_id, r.stat, p.message_id, p.attempt,"
        " s.part_providers, s.part_ids, s.part_statuses"
        " FROM receipts r JOIN message_parts p USING (provider, provider_message_id)"
        " CROSS JOIN LATERAL (SELECT array_agg(q.provider ORDER BY q.part) AS part_providers,"
        "  array_agg(q.provider_message_id ORDER BY q.part) AS part_ids,"
        "  array_agg(q.status ORDER BY q.part) AS part_statuses FROM message_parts q"
        "  WHERE q.message_id = p.message_id AND q.attempt = p.attempt) s"
        " WHERE r.applied_at IS NULL ORDER BY r.id LIMIT $1 FOR UPDATE OF r SKIP LOCKED",
        limit))


def part_statuses(rows: list[asyncpg.Record]
                  ) -> dict[tuple[uuid.UUID, int], dict[tuple[str, str], Status]]:
    """The parts of each (message, attempt) the pending receipts are about, and their
    statuses, as read with them."""
    out: dict[tuple[uuid.UUID, int], dict[tuple[str, str], Status]] = {}
    for r in rows:
        key = (r["message_id"], r["attempt"])
        if key not in out:
            out[key] = {(provider, pid): status for provider, pid, status in zip(
                r["part_providers"], r["part_ids"], r["part_statuses"], strict=True)}
    return out


async def apply_batch(conn: Conn, receipt_ids: list[int],
                      parts: list[tuple[str, str, Status, str]],
                      ends: list[tuple[uuid.UUID, Status, str | None, bool | None]],
                      now: dt.datetime) -> dict[uuid.UUID, asyncpg.Record]:
    """In one statement: mark the receipts applied, set each part's (provider, id,
    status, stat), and end the messages (id, status, reason, permanent) still
    submitted; returns those messages' rows, by id."""
    rows = await conn.fetch(
        # (arrays through opaque_array: planned once per connection, not per batch)
        "WITH applied AS (UPDATE receipts SET applied_at = now()"
        f" WHERE id = {any_of('$1::bigint[]')}),"
        " parts AS (UPDATE message_parts p SET status = u.status, receipt = u.stat"
        f" FROM unnest({opaque_array('$2::text[]')}, $3::text[], $4::text[], $5::text[])"
        " AS u(provider, provider_message_id, status, stat)"
        " WHERE p.provider = u.provider AND p.provider_message_id = u.provider_message_id)"
        " UPDATE messages m SET status = e.status, reason = e.reason,"
        " permanent = e.permanent, finished_at = $10, claimed_until = NULL"
        f" FROM unnest({opaque_array('$6::uuid[]')}, $7::text[], $8::text[], $9::bool[])"
        " AS e(id, status, reason, permanent)"
        " WHERE m.id = e.id AND m.status = 'submitted' RETURNING m.*",
        receipt_ids, [x[0] for x in parts], [x[1] for x in parts], [x[2] for x in parts],
        [x[3] for x in parts], [e[0] for e in ends], [e[1] for e in ends],
        [e[2] for e in ends], [e[3] for e in ends], now)
    return {r["id"]: r for r in rows}


async def unreceipted_parts(conn: Conn, provider: str,
                            limit: int = 100) -> list[str]:
    rows = await conn.fetch(
        "SELECT p.provider_message_id FROM message_parts p JOIN messages m"
        " ON m.id = p.message_id WHERE p.provider = $1 AND p.status = 'submitted'"
        " AND m.status = 'submitted' ORDER BY m.submitted_at LIMIT $2", provider, limit)
    return [r["provider_message_id"] for r in rows]
