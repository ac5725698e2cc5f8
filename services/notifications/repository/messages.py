"""Outgoing messages: queueing one (with its wake-up), claiming due ones for the sender,
their attempts, their end, and the reads of the API (one, a list, the stats)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.notifications.domain.messages import Recipient, Status
from services.notifications.repository.offices import OfficeFilter
from shared.db import Conn
from shared.leases import claim_sql


@dataclass(frozen=True)
class NewMessage:
    id: uuid.UUID
    template: str
    template_version: int
    language: str
    text: str
    encoding: str
    segments: int
    urgent: bool
    status: Status
    not_before: dt.datetime
    source_event_id: uuid.UUID | None = None
    source_type: str | None = None
    client_id: str | None = None
    partner_id: str | None = None
    loan_id: str | None = None
    phone: str | None = None
    reason: str | None = None
    resend_of: uuid.UUID | None = None
    requested_by: str | None = None
    dedup_key: str | None = None  # one message per key, whatever the event id


# NOTIFY on this channel wakes the senders (of every replica) when a queued message is
# committed; PostgreSQL delivers it at commit, and not at all on rollback.
QUEUED_CHANNEL_SQL = "current_schema() || '_sms'"


def queued_channel(schema: str) -> str:
    return f"{schema}_sms"


async def insert_message(conn: Conn, m: NewMessage) -> bool:
    """Insert; False when this event already produced this template's message, or a
    message with the same ``dedup_key`` exists."""
    inserted = await conn.fetchval(
        "WITH ins AS (INSERT INTO messages (id, source_event_id, source_type, template,"
        " template_version, client_id, partner_id, loan_id, phone, language, text, encoding,"
        " segments, urgent, status, reason, not_before, next_attempt_at, resend_of,"
        " requested_by, dedup_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
        " $17, $17, $18, $19, $20)"
        # (source_event_id, template) or dedup_key: the one message already made
        " ON CONFLICT DO NOTHING RETURNING status)"
        " SELECT count(*) FROM ins"
        f" LEFT JOIN LATERAL (SELECT pg_notify({QUEUED_CHANNEL_SQL}, '')"
        "  WHERE ins.status = 'queued') n ON true",
        m.id, m.source_event_id, m.source_type, m.template, m.template_version, m.client_id,
        m.partner_id, m.loan_id, m.phone, m.language, m.text, m.encoding, m.segments, m.urgent,
        m.status, m.reason, m.not_before, m.resend_of, m.requested_by, m.dedup_key)
    return bool(inserted)


# a queued message is claimed by moving its lease (``claimed_until``) forward
CLAIM_SQL = claim_sql(
    "messages", lease_column="claimed_until", lease_s="$2", limit="$3",
    due="status = 'queued' AND next_attempt_at <= $1 AND not_before <= $1"
        " AND (claimed_until IS NULL OR claimed_until < now())",
    order_by="next_attempt_at, created_at")


# The claim, each message with its client's consent as the projection has it now (the
# ``recipient_*`` columns, NULL for a client the projection does not know): the sender
# re-checks consent at send time without a read of its own per message.
CLAIM_WITH_RECIPIENT_SQL = (
    f"WITH claimed AS ({CLAIM_SQL})"
    " SELECT c.*, r.client_id AS recipient_client_id, r.partner_id AS recipient_partner_id,"
    " r.phone AS recipient_phone, r.language AS recipient_language,"
    " r.consent AS recipient_consent, r.blocked AS recipient_blocked,"
    " r.office_path AS recipient_office_path"
    " FROM claimed c LEFT JOIN recipients r ON r.client_id = c.client_id")


async def claim_due(conn: Conn, now: dt.datetime, lease_s: float,
                    limit: int) -> list[asyncpg.Record]:
    """Claim due messages (see ``CLAIM_WITH_RECIPIENT_SQL``), in one statement."""
    return list(await conn.fetch(CLAIM_WITH_RECIPIENT_SQL, now, lease_s, limit))


def claimed_recipient(row: asyncpg.Record) -> Recipient | None:
    """The recipient a claimed row carries; None when its client is not known."""
    if row["recipient_client_id"] is None:
        return None
    return Recipient(client_id=row["recipient_client_id"],
                     partner_id=row["recipient_partner_id"], phone=row["recipient_phone"],
                     language=row["recipient_language"], consent=row["recipient_consent"],
                     blocked=row["recipient_blocked"],
                     office_path=row["recipient_office_path"])


async def record_attempt(conn: Conn, message_id: uuid.UUID, attempt: int,
                         provider: str, outcome: str, detail: str | None,
                         started_at: dt.datetime) -> None:
    await conn.execute(
        "INSERT INTO attempts (message_id, attempt, provider, outcome, detail, started_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        message_id, attempt, provider, outcome, detail, started_at)


async def mark_submitted(conn: Conn, message_id: uuid.UUID, attempt: int,
                         provider: str, part_ids: list[str], now: dt.datetime,
                         started_at: dt.datetime) -> bool:
    """Record the successful attempt (begun at ``started_at``) and, if the message is
    still queued, mark it submitted with its parts (numbered from 1), in one statement;
    False when it was no longer queued (the attempt is recorded all the same)."""
    marked = await conn.fetchval(
        "WITH marked AS (UPDATE messages SET status = 'submitted', provider = $2,"
        " attempts = $3, submitted_at = $4, claimed_until = NULL, reason = NULL"
        " WHERE id = $1 AND status = 'queued' RETURNING id),"
        " attempt AS (INSERT INTO attempts (message_id, attempt, provider, outcome, detail,"
        " started_at) VALUES ($1, $3, $2, 'submitted', NULL, $6)),"
        " parts AS (INSERT INTO message_parts (provider, provider_message_id, message_id,"
        " attempt, part) SELECT $2, u.pid, m.id, $3, u.n FROM marked m,"
        " unnest($5::text[]) WITH ORDINALITY AS u(pid, n) ON CONFLICT DO NOTHING)"
        " SELECT count(*) FROM marked",
        message_id, provider, attempt, now, part_ids, started_at)
    return bool(marked)


async def schedule_retry(conn: Conn, message_id: uuid.UUID, attempt: int,
                         at: dt.datetime, reason: str) -> None:
    await conn.execute(
        "UPDATE messages SET attempts = $2, next_attempt_at = $3, reason = $4,"
        " claimed_until = NULL WHERE id = $1 AND status = 'queued'",
        message_id, attempt, at, reason)


async def finish(conn: Conn, message_id: uuid.UUID, status: Status, *,
                 reason: str | None, permanent: bool | None, now: dt.datetime,
                 attempt: int | None = None, provider: str | None = None,
                 from_status: tuple[Status, ...] = ("queued", "submitted")
                 ) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "UPDATE messages SET status = $2, reason = $3, permanent = $4, finished_at = $5,"
        " attempts = COALESCE($6, attempts), provider = COALESCE($7, provider),"
        " claimed_until = NULL WHERE id = $1 AND status = ANY($8::text[]) RETURNING *",
        message_id, status, reason, permanent, now, attempt, provider, list(from_status))
    return row


# -- reads -------------------------------------------------------------------------------

# A message with its client's current office (from the contact projection).
WITH_OFFICE = ("SELECT m.*, r.office_id, r.office_path FROM messages m"
               " LEFT JOIN recipients r ON r.client_id = m.client_id")


async def get_message(conn: Conn, message_id: uuid.UUID
                      ) -> asyncpg.Record | None:
    """The message and its client's current ``office_id`` and ``office_path``."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"{WITH_OFFICE} WHERE m.id = $1", message_id)
    return row


async def attempts_of(conn: Conn, message_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM attempts WHERE message_id = $1 ORDER BY id", message_id))


async def list_messages(conn: Conn, *, client_id: str | None,
                        loan_id: str | None, phone: str | None, partner_id: str | None,
                        limit: int, offices: OfficeFilter = OfficeFilter()
                        ) -> list[asyncpg.Record]:
    clauses: list[str] = []
    args: list[object] = []
    for column, value in (("client_id", client_id), ("loan_id", loan_id), ("phone", phone),
                          ("partner_id", partner_id)):
        if value is not None:
            args.append(value)
            clauses.append(f"m.{column} = ${len(args)}")
    if offices.active:
        clauses.append(offices.sql("r.office_path", args))
    where = " AND ".join(clauses) or "true"
    args.append(limit)
    return list(await conn.fetch(
        f"{WITH_OFFICE} WHERE {where} ORDER BY m.created_at DESC, m.id"
        f" LIMIT ${len(args)}", *args))


async def stats(conn: Conn, partner_id: str | None,
                offices: OfficeFilter = OfficeFilter()) -> list[dict[str, Any]]:
    """Message counts and segments per (provider, language, encoding)."""
    args: list[object] = [partner_id]
    where = "($1::text IS NULL OR m.partner_id = $1)"
    join = ""
    if offices.active:
        join = " JOIN recipients r ON r.client_id = m.client_id"
        where += " AND " + offices.sql("r.office_path", args)
    rows = await conn.fetch(
        "SELECT COALESCE(m.provider, '-') AS provider, m.language, m.encoding,"
        " count(*) FILTER (WHERE m.status IN ('submitted', 'delivered', 'failed', 'expired')"
        "   AND m.provider IS NOT NULL) AS sent,"
        " count(*) FILTER (WHERE m.status = 'delivered') AS delivered,"
        " count(*) FILTER (WHERE m.status = 'failed') AS failed,"
        " count(*) FILTER (WHERE m.status = 'expired') AS expired,"
        " count(*) FILTER (WHERE m.status = 'queued') AS queued,"
        " count(*) FILTER (WHERE m.status = 'suppressed') AS suppressed,"
        " COALESCE(sum(m.segments) FILTER (WHERE m.provider IS NOT NULL), 0) AS segments"
        f" FROM messages m{join} WHERE {where}"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", *args)
    return [dict(r) for r in rows]
