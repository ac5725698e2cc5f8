"""Reconciliation of one provider's day: our movements against its statement.

The I/O (our completed payouts and confirmed collections, the provider's statement)
is here; the matching is pure (:mod:`services.payments.domain.reconciliation`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import httpx

from services.payments.domain.reconciliation import Item, reconcile
from services.payments.providers.gsma import ProviderClient
from services.payments.repository import Conn
from services.payments.repository import payments as payments_repo
from shared.errors import DomainError
from shared.money import parse_amount


class ProviderStatementUnavailable(DomainError):
    title = "Provider statement unavailable"
    code = "provider_unavailable"


async def our_movements(conn: Conn, provider: str, day: dt.date) -> list[Item]:
    rows = await payments_repo.provider_movements(conn, provider, day)
    return [Item(r["ref"], r["kind"], r["amount"],
                 {"our_reference": r["our_ref"], "loan_id": r["loan_id"]}) for r in rows]


async def their_movements(client: ProviderClient, day: dt.date) -> list[Item]:
    """The provider's statement for ``day``, cash-ins (wallet top-ups) left out."""
    try:
        entries = await client.statement(day)
    except httpx.HTTPError as exc:
        raise ProviderStatementUnavailable(
            f"{client.name}'s statement for {day} is unavailable: {type(exc).__name__}",
            field="provider") from None
    return [Item(str(e["transactionReference"]), str(e.get("type", "")),
                 parse_amount(str(e["amount"])),
                 {"msisdn": e.get("msisdn"), "provider_reference_kind": e.get("purpose")})
            for e in entries if e.get("type") != "cashin"]


async def reconcile_day(pool: asyncpg.Pool, client: ProviderClient, day: dt.date
                        ) -> dict[str, Any]:
    """Match our movements through ``client``'s provider on ``day`` with its statement.

    A connection of ``pool`` is held only while our side is read, never while the
    provider is asked.
    """
    async with pool.acquire() as conn:
        ours = await our_movements(conn, client.name, day)
    theirs = await their_movements(client, day)
    return reconcile(ours, theirs)
