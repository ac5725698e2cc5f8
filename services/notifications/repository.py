"""SQL of the projection (recipients, loans) and the templates, with $n parameters."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from services.notifications.db import Conn
from services.notifications.domain.messages import Recipient
from services.notifications.domain.templates import Template

# -- the projection of clients.events ----------------------------------------------------


def _recipient(row: asyncpg.Record) -> Recipient:
    return Recipient(client_id=row["client_id"], partner_id=row["partner_id"],
                     phone=row["phone"], language=row["language"], consent=row["consent"],
                     blocked=row["blocked"])


async def upsert_registered(conn: Conn, client_id: str, partner_id: str,
                            phone: str, language: str, consent: bool) -> None:
    await conn.execute(
        "INSERT INTO recipients (client_id, partner_id, phone, language, consent)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO UPDATE SET"
        " partner_id = EXCLUDED.partner_id, phone = EXCLUDED.phone,"
        " language = EXCLUDED.language, consent = EXCLUDED.consent, updated_at = now()",
        client_id, partner_id, phone, language, consent)


async def update_recipient(conn: Conn, client_id: str, **changes: Any) -> bool:
    """Set the given columns of a known client; False when the client is unknown."""
    allowed = {"phone", "language", "consent", "blocked"}
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


# -- triggers held until their client is known ----------------------------------------

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


# -- templates -------------------------------------------------------------------------

def _template(row: asyncpg.Record) -> Template:
    return Template(name=row["name"], version=row["version"], language=row["language"],
                    body=row["body"], variables=dict(row["variables"]), urgent=row["urgent"],
                    policy=row["policy"])


async def current_templates(conn: Conn) -> dict[tuple[str, str], Template]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (name, language) * FROM templates"
        " ORDER BY name, language, version DESC")
    return {(r["name"], r["language"]): _template(r) for r in rows}


async def template_versions(conn: Conn, name: str) -> list[Template]:
    rows = await conn.fetch(
        "SELECT * FROM templates WHERE name = $1 ORDER BY language, version", name)
    return [_template(r) for r in rows]


async def add_template_version(conn: Conn, name: str, language: str, body: str,
                               variables: dict[str, str], urgent: bool, policy: str,
                               created_by: str) -> Template:
    # Serialise concurrent authors of one template: the next version is max + 1.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"template.{name}")
    version = await conn.fetchval(
        "SELECT COALESCE(max(version), 0) + 1 FROM templates WHERE name = $1 AND language = $2",
        name, language)
    row = await conn.fetchrow(
        "INSERT INTO templates (name, language, version, body, variables, urgent, policy,"
        " created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        name, language, version, body, variables, urgent, policy, created_by)
    assert row is not None
    return _template(row)
