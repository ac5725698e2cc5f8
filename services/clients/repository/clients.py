"""Clients: rows ↔ ``Client``, duplicates, search with keyset pagination."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from services.clients.domain.client import Client
from services.clients.repository import Conn
from shared.errors import InvalidInput

COLUMNS = (
    "id, partner_id, full_name, national_id, phone, date_of_birth, language, sms_consent,"
    " region, address, onboarded_by, kyc_status, kyc_reason, kyc_decided_by, kyc_decided_at,"
    " blocked, block_reason, blocked_by, blocked_by_operator, created_at, updated_at, version,"
    " office_id, office_path, officer_id"
)


def _to_client(row: asyncpg.Record) -> Client:
    return Client(**dict(row))


async def insert(conn: Conn, c: Client) -> Client:
    row = await conn.fetchrow(
        "INSERT INTO clients (id, partner_id, full_name, national_id, phone, date_of_birth,"
        " language, sms_consent, region, address, onboarded_by, office_id, office_path,"
        " officer_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        f" RETURNING {COLUMNS}",
        c.id, c.partner_id, c.full_name, c.national_id, c.phone, c.date_of_birth, c.language,
        c.sms_consent, c.region, c.address, c.onboarded_by, c.office_id, c.office_path,
        c.officer_id)
    assert row is not None
    return _to_client(row)


async def get(conn: Conn, client_id: str, *, for_update: bool = False
              ) -> Client | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM clients WHERE id = $1{lock}", client_id)
    return _to_client(row) if row else None


async def get_many(conn: Conn, ids: list[str], *, for_update: bool = False
                   ) -> list[Client]:
    lock = " ORDER BY id FOR UPDATE" if for_update else ""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM clients WHERE id = ANY($1::text[]){lock}",
                            ids)
    return [_to_client(r) for r in rows]


async def update(conn: Conn, c: Client) -> Client:
    """Write the mutable fields back and bump the version (the aggregate's lock)."""
    row = await conn.fetchrow(
        "UPDATE clients SET phone = $2, language = $3, sms_consent = $4, kyc_status = $5,"
        " kyc_reason = $6, kyc_decided_by = $7, kyc_decided_at = $8, blocked = $9,"
        " block_reason = $10, blocked_by = $11, blocked_by_operator = $12,"
        " updated_at = now(), version = version + 1"
        f" WHERE id = $1 RETURNING {COLUMNS}",
        c.id, c.phone, c.language, c.sms_consent, c.kyc_status, c.kyc_reason, c.kyc_decided_by,
        c.kyc_decided_at, c.blocked, c.block_reason, c.blocked_by, c.blocked_by_operator)
    assert row is not None
    return _to_client(row)


async def move(conn: Conn, client_id: str, *, office_id: str, office_path: str,
               officer_id: str | None) -> Client:
    """Put the client in another office and/or with another loan officer."""
    row = await conn.fetchrow(
        "UPDATE clients SET office_id = $2, office_path = $3, officer_id = $4,"
        " updated_at = now(), version = version + 1"
        f" WHERE id = $1 RETURNING {COLUMNS}", client_id, office_id, office_path, officer_id)
    assert row is not None
    return _to_client(row)


async def reassign_portfolio(conn: Conn, from_officer_id: str, to_officer_id: str
                             ) -> list[Client]:
    """Give every client of one officer to another (rows locked in id order)."""
    await conn.execute("SELECT id FROM clients WHERE officer_id = $1 ORDER BY id FOR UPDATE",
                       from_officer_id)
    rows = await conn.fetch(
        "UPDATE clients SET officer_id = $2, updated_at = now(), version = version + 1"
        f" WHERE officer_id = $1 RETURNING {COLUMNS}", from_officer_id, to_officer_id)
    return sorted((_to_client(r) for r in rows), key=lambda c: c.id)


async def portfolio_offices(conn: Conn, officer_id: str) -> list[str]:
    """The distinct office paths of an officer's clients and active groups."""
    rows = await conn.fetch(
        "SELECT office_path FROM clients WHERE officer_id = $1"
        " UNION SELECT office_path FROM groups WHERE officer_id = $1 AND status = 'active'",
        officer_id)
    return sorted(r["office_path"] for r in rows)


async def find_duplicate(conn: Conn, *, national_id: str | None = None,
                         phone: str | None = None, exclude_id: str | None = None
                         ) -> tuple[str, str, str, str] | None:
    """(field, client id, partner id, office path) of a client already holding this CIN
    or phone."""
    row = await conn.fetchrow(
        "SELECT id, partner_id, office_path, national_id = $1 AS same_cin FROM clients"
        " WHERE (national_id = $1 OR phone = $2) AND id IS DISTINCT FROM $3"
        " ORDER BY (national_id = $1) DESC LIMIT 1",
        national_id, phone, exclude_id)
    if row is None:
        return None
    return (("national_id" if row["same_cin"] else "phone"), row["id"], row["partner_id"],
            row["office_path"])


@dataclass(frozen=True)
class SearchQuery:
    partner_id: str | None  # None: every partner (operator)
    within_office: str | None = None  # an office path: that office and below; None: all
    office_id: str | None = None
    officer_id: str | None = None
    phone: str | None = None
    national_id: str | None = None
    q: str | None = None
    kyc_status: str | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(created_at: dt.datetime, client_id: str) -> str:
    raw = orjson.dumps([created_at.isoformat(), client_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, cid = orjson.loads(base64.urlsafe_b64decode(padded))
        return dt.datetime.fromisoformat(created), str(cid)
    except Exception:
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


async def search(conn: Conn, query: SearchQuery) -> tuple[list[Client], str | None]:
    """Newest first; the cursor names the last row returned."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if query.partner_id is not None:
        where.append(f"partner_id = {arg(query.partner_id)}")
    if query.within_office is not None:
        path = arg(query.within_office)
        where.append(f"(office_path = {path} OR office_path LIKE {path} || '/%')")
    if query.office_id is not None:
        where.append(f"office_id = {arg(query.office_id)}")
    if query.officer_id is not None:
        where.append(f"officer_id = {arg(query.officer_id)}")
    if query.phone is not None:
        where.append(f"phone = {arg(query.phone)}")
    if query.national_id is not None:
        where.append(f"national_id = {arg(query.national_id)}")
    if query.q:
        where.append(f"lower(full_name) LIKE {arg(_like(query.q))}")
    if query.kyc_status is not None:
        where.append(f"kyc_status = {arg(query.kyc_status)}")
    if query.cursor is not None:
        created, cid = decode_cursor(query.cursor)
        where.append(f"(created_at, id) < ({arg(created)}, {arg(cid)})")
    sql = f"SELECT {COLUMNS} FROM clients"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY created_at DESC, id DESC LIMIT {arg(query.limit + 1)}"
    rows = await conn.fetch(sql, *args)
    clients = [_to_client(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    last = clients[-1] if clients else None
    next_cursor = (encode_cursor(last.created_at, last.id)
                   if more and last is not None and last.created_at is not None else None)
    return clients, next_cursor
