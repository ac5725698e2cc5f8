"""The maker-checker queues paged by keyset, oldest first: rescheduling requests and loan
requests (write-offs, waivers), each seen only within the reader's office subtree and,
for a partner, on its own loans."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.loans.repository import Conn
from services.loans.repository.loan_requests import _COLS as _LR_COLS
from services.loans.repository.schedules import _REQ_COLS


def _scope(alias: str, office: str, partner: str) -> str:
    """``alias``'s loan is in the office subtree and the partner's (NULL: any)."""
    return (f"({office}::text IS NULL OR {alias}.office_path = {office}"
            f" OR starts_with({alias}.office_path, {office} || '/'))"
            f" AND ({partner}::text IS NULL OR {alias}.partner_id = {partner})")


_R_COLS = ", ".join(f"r.{c.strip()}" for c in _REQ_COLS.split(","))
# $1 status, $2 kind, $3 loan id, $4/$5 after (created_at, id), $6 limit, $7 office path,
# $8 partner. A bulk request (no single loan) shows when every loan it names is in scope.
RESCHEDULE_PAGE = f"""
SELECT {_R_COLS}
  FROM reschedule_requests r LEFT JOIN loans l ON l.id = r.loan_id
 WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.kind = $2)
   AND ($3::text IS NULL OR r.loan_id = $3)
   AND ($4::timestamptz IS NULL OR (r.created_at, r.id) > ($4::timestamptz, $5::text))
   AND CASE WHEN r.loan_id IS NOT NULL THEN l.id IS NOT NULL AND {_scope('l', '$7', '$8')}
            WHEN $7::text IS NULL AND $8::text IS NULL THEN true
            ELSE NOT EXISTS (
              SELECT 1 FROM jsonb_array_elements_text(r.preview -> 'loan_ids') AS x(id)
                LEFT JOIN loans m ON m.id = x.id
               WHERE m.id IS NULL OR NOT ({_scope('m', '$7', '$8')})) END
 ORDER BY r.created_at, r.id
 LIMIT $6
"""

_Q_COLS = ", ".join(f"q.{c.strip()}" for c in _LR_COLS.split(","))
# $1 status, $2 kind, $3 loan id, $4/$5 after (proposed_at, id), $6 limit, $7 office path
LOAN_REQUESTS_PAGE = f"""
SELECT {_Q_COLS}
  FROM loan_requests q JOIN loans l ON l.id = q.loan_id
 WHERE ($1::text IS NULL OR q.status = $1) AND ($2::text IS NULL OR q.kind = $2)
   AND ($3::text IS NULL OR q.loan_id = $3)
   AND ($4::timestamptz IS NULL OR (q.proposed_at, q.id) > ($4::timestamptz, $5::text))
   AND {_scope('l', '$7', 'NULL')}
 ORDER BY q.proposed_at, q.id
 LIMIT $6
"""


async def reschedule_page(conn: Conn, *, status: str | None, kind: str | None,
                          loan_id: str | None, after: tuple[datetime, str] | None,
                          limit: int, office_path: str | None, partner_id: str | None
                          ) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        RESCHEDULE_PAGE, status, kind, loan_id, after[0] if after else None,
        after[1] if after else None, limit, office_path, partner_id)
    return rows


async def loan_requests_page(conn: Conn, *, status: str | None, kind: str | None,
                             loan_id: str | None, after: tuple[datetime, str] | None,
                             limit: int, office_path: str | None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        LOAN_REQUESTS_PAGE, status, kind, loan_id, after[0] if after else None,
        after[1] if after else None, limit, office_path)
    return rows
