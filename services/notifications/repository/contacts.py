"""The contact projection of ``clients.events`` (recipients and their opt-outs) and the
loan → client table learnt from ``loans.events``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from services.notifications.domain.messages import Recipient
from services.notifications.repository.offices import OfficeFilter
from shared.db import Conn


@dataclass(frozen=True)
class Office:
    """A client's office (id and materialised path) and loan officer; None: not known."""

    office_id: str | None = None
    office_path: str | None = None
    officer_id: str | None = None


def _recipient(row: asyncpg.Record) -> Recipient:
    return Recipient(client_id=row["client_id"], partner_id=row["partner_id"],
                     phone=row["phone"], language=row["language"], consent=row["consent"],
                     blocked=row["blocked"], office_path=row["office_path"])


async def upsert_registered(conn: Conn, client_id: str, partner_id: str,
                            phone: str, language: str, consent: bool,
                            office: Office = Office()) -> None:
    await conn.execute(
        "INSERT INTO recipients (client_id, partner_id, phone, language, consent,"
        " office_id, office_path, officer_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (client_id) DO UPDATE SET"
        " partner_id = EXCLUDED.partner_id, phone = EXCLUDED.phone,"
        " language = EXCLUDED.language, consent = EXCLUDED.consent,"
        " office_id = EXCLUDED.office_id, office_path = EXCLUDED.office_path,"
        " officer_id = EXCLUDED.officer_id, updated_at = now()",
        client_id, partner_id, phone, language, consent, office.office_id,
        office.office_path, office.officer_id)


async def update_recipient(conn: Conn, client_id: str, **changes: Any) -> bool:
    """Set the given columns of a known client; False when the client is unknown."""
    allowed = {"phone", "language", "consent", "blocked", "office_id", "office_path",
               "officer_id"}
    if not changes or not set(changes) <= allowed:
        raise ValueError(f"cannot update {sorted(changes)}")
    cols = list(changes)
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
    extra = ", opted_out_at = NULL" if changes.get("consent") is True else ""
    status = await conn.execute(
        f"UPDATE recipients SET {sets}{extra}, updated_at = now() WHERE client_id = $1",
        client_id, *changes.values())
    return bool(status.endswith(" 1"))


async def get_recipient(conn: Conn, client_id: str) -> Recipient | None:
    row = await conn.fetchrow("SELECT * FROM recipients WHERE client_id = $1", client_id)
    return _recipient(row) if row else None


@dataclass(frozen=True)
class LookedUp:
    recipient: Recipient | None
    template_generation: int


async def look_up(conn: Conn, client_id: str | None,
                  remember: tuple[str, str, str | None] | None = None) -> LookedUp:
    """The recipient ``client_id`` (None: not known, or no client) and the templates'
    generation, in one statement — which first remembers the loan → client row
    ``remember`` (loan id, client id, partner id) as :func:`remember_loan` does."""
    loan_id, loan_client, partner_id = remember or (None, None, None)
    row = await conn.fetchrow(
        "WITH remembered AS (INSERT INTO loan_clients (loan_id, client_id, partner_id)"
        " SELECT $2::text, $3::text, $4::text WHERE $2::text IS NOT NULL AND $3::text <> ''"
        " ON CONFLICT (loan_id) DO UPDATE SET"
        " partner_id = COALESCE(EXCLUDED.partner_id, loan_clients.partner_id))"
        " SELECT g.generation AS template_generation, r.*"
        " FROM template_generation g LEFT JOIN recipients r ON r.client_id = $1::text",
        client_id, loan_id, loan_client, partner_id)
    assert row is not None
    return LookedUp(_recipient(row) if row["client_id"] is not None else None,
                    row["template_generation"])


async def recipients_by_phone(conn: Conn, phone: str) -> list[Recipient]:
    rows = await conn.fetch("SELECT * FROM recipients WHERE phone = $1 ORDER BY client_id",
                            phone)
    return [_recipient(r) for r in rows]


async def opt_out(conn: Conn, phone: str, source: str,
                  requested_by: str | None) -> list[str]:
    """Withdraw consent for every client with ``phone``; return their ids."""
    rows = await conn.fetch(
        "UPDATE recipients SET consent = false, opted_out_at = now(), updated_at = now()"
        " WHERE phone = $1 RETURNING client_id", phone)
    ids = [r["client_id"] for r in rows]
    await conn.execute(
        "INSERT INTO opt_outs (phone, client_id, source, requested_by) VALUES ($1, $2, $3, $4)",
        phone, ids[0] if ids else None, source, requested_by)
    return ids


async def opt_outs_by_source(conn: Conn, partner_id: str | None,
                             offices: OfficeFilter = OfficeFilter()) -> dict[str, int]:
    """How many opt-outs each source recorded (a partner counts its clients' ones; an
    office filter, the clients' of that office)."""
    args: list[object] = [partner_id]
    where = "($1::text IS NULL OR r.partner_id = $1)"
    if offices.active:
        where += " AND " + offices.sql("r.office_path", args)
    rows = await conn.fetch(
        "SELECT o.source, count(*) AS n FROM opt_outs o LEFT JOIN recipients r"
        f" ON r.client_id = o.client_id WHERE {where} GROUP BY 1", *args)
    return {r["source"]: r["n"] for r in rows}


async def remember_loan(conn: Conn, loan_id: str, client_id: str,
                        partner_id: str | None) -> None:
    if not client_id:
        return
    await conn.execute(
        "INSERT INTO loan_clients (loan_id, client_id, partner_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (loan_id) DO UPDATE SET"
        " partner_id = COALESCE(EXCLUDED.partner_id, loan_clients.partner_id)",
        loan_id, client_id, partner_id)


async def client_of_loan(conn: Conn, loan_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT client_id FROM loan_clients WHERE loan_id = $1", loan_id)
    return value
