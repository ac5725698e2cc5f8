"""Collection sheets (what each member of an officer's groups, or of one group, owes on a
day), the cash collected against them, and a branch's day-end cash count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.loans.repository import Conn
from services.loans.repository.org import in_subtree

_OWED = ("(i.principal_due + i.interest_due + i.fees_due + i.penalties_due"
         " - i.principal_paid - i.interest_paid - i.fees_paid - i.penalties_paid)")

# $1 officer or group id, $2 the sheet's date, $3 the token's office path (NULL: all),
# $4 the sheet id (what was already collected against it)
_SHEET = f"""
SELECT l.id AS loan_id, l.reference, l.client_id, l.office_id, l.office_path, l.officer_id,
       l.days_in_arrears, l.currency, c.full_name, c.phone,
       g.group_id, g.name AS group_name, g.leader_id,
       COALESCE(d.due_today, 0)::numeric(14,2) AS due_today,
       COALESCE(d.arrears, 0)::numeric(14,2) AS arrears,
       p.received_at AS last_paid_at, p.amount AS last_paid_amount,
       cc.amount AS collected
  FROM loans l
  LEFT JOIN client_projection c ON c.client_id = l.client_id
  LEFT JOIN LATERAL (
        SELECT gp.group_id, gp.name, gp.leader_id
          FROM group_members m JOIN group_projection gp ON gp.group_id = m.group_id
         WHERE m.client_id = l.client_id AND NOT gp.dissolved
         ORDER BY gp.updated_at DESC LIMIT 1) g ON true
  LEFT JOIN LATERAL (
        SELECT sum({_OWED}) FILTER (WHERE i.due_date = $2::date) AS due_today,
               sum({_OWED}) FILTER (WHERE i.due_date < $2::date) AS arrears
          FROM installments i
         WHERE i.loan_id = l.id AND i.is_open
           AND i.due_date <= $2::date) d ON true
  LEFT JOIN LATERAL (
        SELECT r.received_at, r.amount FROM repayments r
         WHERE r.loan_id = l.id AND r.outcome = 'applied'
         ORDER BY r.received_at DESC LIMIT 1) p ON true
  LEFT JOIN cash_collections cc ON cc.sheet_id = $4 AND cc.loan_id = l.id
 WHERE l.status = 'active' AND {in_subtree('l.office_path', 3)} AND {{selector}}
 ORDER BY g.name NULLS LAST, g.group_id, c.full_name, l.id
"""
BY_OFFICER = _SHEET.format(selector="l.officer_id = $1")
BY_GROUP = _SHEET.format(
    selector="l.client_id IN (SELECT client_id FROM group_members WHERE group_id = $1)")


async def sheet_rows(conn: Conn, *, kind: str, key: str, day: date, office_path: str | None,
                     sheet_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        BY_OFFICER if kind == "o" else BY_GROUP, key, day, office_path, sheet_id)
    return rows


@dataclass(frozen=True)
class Collection:
    collection_id: str
    sheet_id: str
    loan_id: str
    client_id: str
    group_id: str | None
    amount: Decimal
    currency: str
    office_id: str
    office_path: str
    branch_office_id: str
    officer_id: str | None
    collected_on: date
    collected_at: datetime
    recorded_by: str


async def recorded(conn: Conn, sheet_id: str) -> dict[str, Decimal]:
    """What was already collected against the sheet, by loan."""
    return {r["loan_id"]: r["amount"] for r in await conn.fetch(
        "SELECT loan_id, amount FROM cash_collections WHERE sheet_id = $1", sheet_id)}


async def group_loans_on(conn: Conn, group_ids: list[str], sheet_id: str
                         ) -> dict[str, tuple[str, Decimal | None]]:
    """Per group: its active group loan and the group's collection on the sheet (if any)."""
    rows = await conn.fetch(
        "SELECT g.group_id, g.id, c.amount FROM group_loans g LEFT JOIN cash_collections c"
        " ON c.loan_id = g.id AND c.sheet_id = $2"
        " WHERE g.group_id = ANY($1::text[]) AND g.status = 'active'", group_ids, sheet_id)
    return {r["group_id"]: (r["id"], r["amount"]) for r in rows}


async def record(conn: Conn, c: Collection) -> bool:
    """Store one line; False when the sheet already has one for the loan."""
    done = await conn.fetchval(
        "INSERT INTO cash_collections (collection_id, sheet_id, loan_id, client_id, group_id,"
        " amount, currency, office_id, office_path, branch_office_id, officer_id,"
        " collected_on, collected_at, recorded_by)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        c.collection_id, c.sheet_id, c.loan_id, c.client_id, c.group_id, c.amount,
        c.currency, c.office_id, c.office_path, c.branch_office_id, c.officer_id,
        c.collected_on, c.collected_at, c.recorded_by)
    return bool(done)


# -- a branch's day-end cash ----------------------------------------------------------
async def expected_cash(conn: Conn, branch_office_id: str, day: date) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT COALESCE(officer_id, '') AS officer_id, count(*) AS n, sum(amount) AS amount"
        " FROM cash_collections WHERE branch_office_id = $1 AND collected_on = $2"
        " GROUP BY 1 ORDER BY 1", branch_office_id, day)
    return {"collections": sum(r["n"] for r in rows),
            "expected": sum((r["amount"] for r in rows), Decimal("0.00")),
            "by_officer": [{"officer_id": r["officer_id"] or None, "collections": r["n"],
                            "amount": str(r["amount"])} for r in rows]}


async def reconciliation(conn: Conn, office_id: str, day: date) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM cash_reconciliations WHERE office_id = $1 AND business_date = $2",
        office_id, day)
    return row


async def insert_reconciliation(conn: Conn, *, reconciliation_id: str, office_id: str,
                                office_path: str, day: date, expected: Decimal,
                                declared: Decimal, collections: int, declared_by: str,
                                note: str) -> bool:
    done = await conn.fetchval(
        "INSERT INTO cash_reconciliations (reconciliation_id, office_id, office_path,"
        " business_date, expected, declared, difference, collections, declared_by, note)"
        " VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $6::numeric - $5::numeric, $7, $8, $9)"
        " ON CONFLICT (office_id, business_date) DO NOTHING RETURNING 1",
        reconciliation_id, office_id, office_path, day, expected, declared, collections,
        declared_by, note)
    return bool(done)
