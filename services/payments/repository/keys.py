"""Idempotency keys (``shared.idempotency``'s table): a key released when a request's
effect was not applied, so the caller may use it again."""

from __future__ import annotations

from services.payments.repository import Conn


async def release(conn: Conn, scope: str, key: str) -> None:
    await conn.execute("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2",
                       scope, key)
