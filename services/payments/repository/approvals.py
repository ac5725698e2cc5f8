"""Operator decisions that move money, maker-checker (``payout_approvals``), and their
append-only audit (``payout_audit``): one operator proposes, another approves.

JSON columns go through the pool's ``jsonb`` codec (dicts in, dicts out)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson

from services.payments.repository import Conn
from shared.errors import Conflict

SETTLEMENT = "settlement"
REFUND_RETRY = "refund_retry"


async def open_proposal(conn: Conn, kind: str, target_id: uuid.UUID, *,
                        lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        "SELECT * FROM payout_approvals WHERE kind = $1 AND target_id = $2"
        f" AND status = 'proposed'{suffix}", kind, target_id)


async def propose(conn: Conn, *, kind: str, target_id: uuid.UUID, body: dict[str, Any],
                  proposed_by: str, key: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO payout_approvals (kind, target_id, body, proposed_by, proposal_key)"
        " VALUES ($1, $2, $3::jsonb, $4, $5) ON CONFLICT DO NOTHING RETURNING *",
        kind, target_id, body, proposed_by, key)
    if row is None:
        raise Conflict(f"a {kind.replace('_', ' ')} of {target_id} is already proposed and "
                       "waits for another operator's approval", field="id",
                       state="proposed")
    return row


async def close(conn: Conn, approval_id: int, *, status: str, approved_by: str | None,
                outcome: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE payout_approvals SET status = $2, approved_by = $3, approved_at = now(),"
        " outcome = $4::jsonb WHERE id = $1 AND status = 'proposed' RETURNING *",
        approval_id, status, approved_by, outcome)
    assert row is not None
    return row


async def audit(conn: Conn, *, action: str, actor: str, payout_id: uuid.UUID | None = None,
                payment_id: uuid.UUID | None = None, approval_id: int | None = None,
                detail: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO payout_audit (payout_id, payment_id, approval_id, action, actor, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)", payout_id, payment_id, approval_id,
        action, actor, detail or {})


async def audit_of(conn: Conn, *, payout_id: uuid.UUID | None = None,
                   payment_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM payout_audit WHERE ($1::uuid IS NOT NULL AND payout_id = $1)"
        " OR ($2::uuid IS NOT NULL AND payment_id = $2) ORDER BY id", payout_id, payment_id))


def body_of(row: asyncpg.Record) -> dict[str, Any]:
    return as_dict(row["body"])


def as_dict(value: Any) -> dict[str, Any]:
    """A ``jsonb`` value as a dict, whether or not the connection decodes JSON."""
    return dict(orjson.loads(value) if isinstance(value, str | bytes) else value or {})
