"""Replies from phones (MO messages), kept with whether they were a STOP."""

from __future__ import annotations

from shared.db import Conn


async def insert_reply(conn: Conn, provider: str, phone: str, text: str, is_stop: bool
                       ) -> None:
    await conn.execute(
        "INSERT INTO replies (provider, phone, text, is_stop) VALUES ($1, $2, $3, $4)",
        provider, phone, text[:1000], is_stop)
