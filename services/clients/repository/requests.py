"""Maker-checker requests of the organisation (``org_requests``)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import asyncpg
import orjson

from services.clients.domain.transfer import OrgRequest
from services.clients.repository import Conn
from services.clients.repository.offices import subtree_sql
from shared.errors import InvalidInput

COLUMNS = (
    "id, kind, status, client_id, from_office_id, from_office_path, to_office_id,"
    " to_office_path, from_officer_id, to_officer_id, reason, requested_by, requested_at,"
    " decided_by, decided_at, decision_reason, moved_clients, moved_groups"
)


def _request(row: asyncpg.Record) -> OrgRequest:
    return OrgRequest(**dict(row))


async def insert(conn: Conn, r: OrgRequest) -> OrgRequest:
    row = await conn.fetchrow(
        "INSERT INTO org_requests (id, kind, client_id, from_office_id, from_office_path,"
        " to_office_id, to_office_path, from_officer_id, to_officer_id, reason, requested_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        f" RETURNING {COLUMNS}",
        r.id, r.kind, r.client_id, r.from_office_id, r.from_office_path, r.to_office_id,
        r.to_office_path, r.from_officer_id, r.to_officer_id, r.reason, r.requested_by)
    assert row is not None
    return _request(row)


async def get(conn: Conn, request_id: str, kind: str, *, for_update: bool = False
              ) -> OrgRequest | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM org_requests WHERE id = $1 AND kind = $2{lock}",
        request_id, kind)
    return _request(row) if row else None


async def save_decision(conn: Conn, r: OrgRequest) -> OrgRequest:
    row = await conn.fetchrow(
        "UPDATE org_requests SET status = $2, decided_by = $3, decided_at = $4,"
        " decision_reason = $5, moved_clients = $6, moved_groups = $7, to_office_path = $8,"
        f" from_office_path = $9 WHERE id = $1 RETURNING {COLUMNS}",
        r.id, r.status, r.decided_by, r.decided_at, r.decision_reason, r.moved_clients,
        r.moved_groups, r.to_office_path, r.from_office_path)
    assert row is not None
    return _request(row)


def encode_cursor(requested_at: dt.datetime, request_id: str) -> str:
    raw = orjson.dumps([requested_at.isoformat(), request_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, rid = orjson.loads(base64.urlsafe_b64decode(padded))
        return dt.datetime.fromisoformat(at), str(rid)
    except Exception:
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from None


async def list_requests(conn: Conn, *, kind: str, status: str, within: str | None,
                        limit: int, cursor: str | None) -> tuple[list[OrgRequest], str | None]:
    """Oldest first; a scoped token sees the requests whose both ends are in its subtree."""
    args: list[Any] = [kind, status]
    where = ["kind = $1", "status = $2"]
    for column in ("from_office_path", "to_office_path"):
        cond = subtree_sql(column, within, args)
        if cond:
            where.append(cond)
    if cursor is not None:
        at, rid = decode_cursor(cursor)
        args.extend([at, rid])
        where.append(f"(requested_at, id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM org_requests WHERE {' AND '.join(where)}"
        f" ORDER BY requested_at, id LIMIT ${len(args)}", *args)
    found = [_request(r) for r in rows[:limit]]
    last = found[-1] if found else None
    more = len(rows) > limit
    nxt = (encode_cursor(last.requested_at, last.id)
           if more and last is not None and last.requested_at is not None else None)
    return found, nxt
