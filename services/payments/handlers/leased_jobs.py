"""The loop every leased provider job runs (wallet-report confirmations, payee lookups):
one round claims what is due, asks the provider outside any transaction and records the
answers; it goes again at once while a round found work, and sleeps when one did not.
A database or network error is logged and the next round tries again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("noria.payments.jobs")


async def run_rounds(round_: Callable[[], Awaitable[dict[str, int]]], idle_s: float,
                     what: str) -> None:
    while True:
        try:
            counts = await round_()
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("%s: %r; trying again", what, exc)
            counts = {}
        if not any(counts.values()):
            await asyncio.sleep(idle_s)
