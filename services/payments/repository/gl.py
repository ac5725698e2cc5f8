"""The chart of accounts, the accounting rules, the institution's accounting settings,
what payments knows of each loan (product, office, non-accrual), and set-based posting
of many small entries at once (a close of business).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain.chart import DEFAULT_PRODUCT, GLAccount, GLType
from services.payments.domain.ledger import Entry, InsufficientBalance
from services.payments.domain.office_transfers import BookedLine
from services.payments.repository import Conn
from services.payments.repository.ledger import (
    LOCK_CLIENT_ACCOUNTS_SQL,
    PeriodClosed,
    ensure_accounts,
)
from shared.db import any_of

# -- chart ------------------------------------------------------------------------------


def _gl(row: asyncpg.Record) -> GLAccount:
    return GLAccount(row["code"], row["name_fr"], row["name_ar"], GLType(row["type"]),
                     row["usage"], row["parent_code"], row["regulator_code"])


async def chart(conn: Conn) -> dict[str, GLAccount]:
    rows = await conn.fetch("SELECT * FROM gl_accounts ORDER BY code")
    return {r["code"]: _gl(r) for r in rows}


async def upsert_gl_account(conn: Conn, account: GLAccount) -> bool:
    """Create or change a GL account; True when it was created."""
    created: bool = await conn.fetchval(
        "INSERT INTO gl_accounts (code, name_fr, name_ar, type, usage, parent_code,"
        " regulator_code) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (code) DO UPDATE SET name_fr = $2, name_ar = $3, type = $4, usage = $5,"
        " parent_code = $6, regulator_code = $7, updated_at = now()"
        " RETURNING xmax = 0", account.code, account.name_fr, account.name_ar,
        account.type.value, account.usage, account.parent_code, account.regulator_code)
    return created


async def gl_account_used(conn: Conn, code: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM journal_lines WHERE gl_code = $1)"
        " OR EXISTS (SELECT 1 FROM accounting_rules WHERE gl_code = $1)", code))


# -- rules ------------------------------------------------------------------------------


async def rules(conn: Conn, product_id: str) -> dict[str, dict[str, Any]]:
    """The rules in force for a product: its own rows over the defaults."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (kind) kind, gl_code, product_id, updated_by, updated_at"
        " FROM accounting_rules WHERE product_id IN ($1, $2)"
        " ORDER BY kind, (product_id = $2)", product_id, DEFAULT_PRODUCT)
    return {r["kind"]: {"gl_code": r["gl_code"],
                        "source": "default" if r["product_id"] == DEFAULT_PRODUCT
                        and product_id != DEFAULT_PRODUCT else "product",
                        "updated_by": r["updated_by"], "updated_at": r["updated_at"]}
            for r in rows}


async def put_rules(conn: Conn, product_id: str, mapping: dict[str, str], by: str) -> None:
    """Replace a product's own rules (roles it does not name fall back to the defaults;
    the default product's roles are changed, never removed)."""
    if product_id != DEFAULT_PRODUCT:
        await conn.execute("DELETE FROM accounting_rules WHERE product_id = $1", product_id)
    await conn.executemany(
        "INSERT INTO accounting_rules (product_id, kind, gl_code, updated_by)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (product_id, kind) DO UPDATE"
        " SET gl_code = $3, updated_by = $4, updated_at = now()",
        [(product_id, kind, code, by) for kind, code in sorted(mapping.items())])


# -- settings ---------------------------------------------------------------------------


async def settings(conn: Conn, *, lock: bool = False) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT accounting_basis, non_accrual_days, updated_by, updated_at"
        " FROM accounting_settings" + (" FOR UPDATE" if lock else ""))
    assert row is not None
    return dict(row)


async def put_settings(conn: Conn, basis: str, non_accrual_days: int, by: str) -> None:
    await conn.execute(
        "UPDATE accounting_settings SET accounting_basis = $1, non_accrual_days = $2,"
        " updated_by = $3, updated_at = now()", basis, non_accrual_days, by)


# -- loans ------------------------------------------------------------------------------


async def remember_loans(conn: Conn, loan_ids: Sequence[str],
                         product_ids: Sequence[str | None],
                         office_ids: Sequence[str | None]) -> None:
    """Record what is known of each loan's product and office (a later value wins; an
    unknown one never erases a known one). A loan whose row already says so is not
    written again (a close of business names every loan every night)."""
    if not loan_ids:
        return
    await conn.execute(
        "INSERT INTO loan_dimensions (loan_id, product_id, office_id)"
        " SELECT u.* FROM unnest($1::text[], $2::text[], $3::text[]) AS u(loan, product, office)"
        " WHERE NOT EXISTS (SELECT 1 FROM loan_dimensions d WHERE d.loan_id = u.loan"
        " AND (u.product IS NULL OR d.product_id = u.product)"
        " AND (u.office IS NULL OR d.office_id = u.office))"
        " ON CONFLICT (loan_id) DO UPDATE SET"
        " product_id = coalesce(EXCLUDED.product_id, loan_dimensions.product_id),"
        " office_id = coalesce(EXCLUDED.office_id, loan_dimensions.office_id),"
        " updated_at = now()", list(loan_ids), list(product_ids), list(office_ids))


async def non_accrual_loans(conn: Conn, loan_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT loan_id FROM loan_dimensions WHERE loan_id = ANY($1::text[])"
        " AND non_accrual_since IS NOT NULL", list(loan_ids))
    return {r["loan_id"] for r in rows}


async def set_non_accrual(conn: Conn, loan_ids: Sequence[str], since: dt.date | None) -> None:
    if loan_ids:
        await conn.execute(
            "UPDATE loan_dimensions SET non_accrual_since = $2, updated_at = now()"
            " WHERE loan_id = ANY($1::text[])", list(loan_ids), since)


async def balances(conn: Conn, account_ids: Sequence[str]) -> dict[str, Decimal]:
    """Balances in each account's normal direction (absent accounts: zero)."""
    if not account_ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, CASE normal_side WHEN 'debit' THEN debits - credits"
        f" ELSE credits - debits END AS balance FROM accounts WHERE id = {any_of('$1::text[]')}",
        list(account_ids))
    return {r["id"]: r["balance"] for r in rows}


# -- posting many entries ---------------------------------------------------------------

_POST_MANY_SQL = (
    "WITH e AS (INSERT INTO journal_entries (id, transfer_id, request_hash, kind, loan_id,"
    " memo, amount, business_date, office_id)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[], $7::numeric[], $8::date[], $9::text[])"
    " ON CONFLICT (transfer_id) DO NOTHING RETURNING id)"
    " INSERT INTO journal_lines (entry_id, account_id, side, amount)"
    " SELECT l.entry, l.account, l.side, l.amount"
    " FROM unnest($10::uuid[], $11::text[], $12::text[], $13::numeric[]) WITH ORDINALITY"
    " AS l(entry, account, side, amount, n) JOIN e ON e.id = l.entry ORDER BY l.n")


async def post_many(conn: Conn, entries: Sequence[Entry]) -> int:
    """Post many entries in three statements (set-based): open their accounts, lock the
    client's among them in id order (the shared ones move at commit), insert entries
    and lines. An entry whose transfer id exists is skipped (idempotent). The database
    checks balance, sign and period as for one."""
    if not entries:
        return 0
    account_ids = sorted({ln.account for e in entries for ln in e.lines})
    await ensure_accounts(conn, account_ids)
    await conn.execute(LOCK_CLIENT_ACCOUNTS_SQL, account_ids)
    ids = [uuid.uuid4() for _ in entries]
    line_entry: list[uuid.UUID] = []
    line_account: list[str] = []
    line_side: list[str] = []
    line_amount: list[Decimal] = []
    for entry_id, entry in zip(ids, entries, strict=True):
        for ln in entry.lines:
            line_entry.append(entry_id)
            line_account.append(ln.account)
            line_side.append(ln.side.value)
            line_amount.append(ln.amount)
    try:
        status = await conn.execute(
            _POST_MANY_SQL, ids, [e.transfer_id for e in entries],
            [e.request_hash() for e in entries], [e.kind for e in entries],
            [e.loan_id for e in entries], [e.memo for e in entries],
            [e.amount for e in entries], [e.business_date for e in entries],
            [e.office_id for e in entries], line_entry, line_account, line_side, line_amount)
    except asyncpg.CheckViolationError as exc:
        raise InsufficientBalance(f"the ledger refused the entries: {exc}",
                                  field="amount") from None
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise PeriodClosed(str(exc), field="business_date") from None
    return int(status.split()[-1]) if status else 0



_POST_BOOKED_SQL = (
    "WITH e AS (INSERT INTO journal_entries (id, transfer_id, request_hash, kind, loan_id,"
    " memo, amount, business_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (transfer_id) DO NOTHING RETURNING id)"
    " INSERT INTO journal_lines (entry_id, account_id, side, amount, office_id)"
    " SELECT e.id, l.account, l.side, l.amount, l.office FROM e,"
    " unnest($9::text[], $10::text[], $11::numeric[], $12::text[]) WITH ORDINALITY"
    " AS l(account, side, amount, office, n) ORDER BY l.n")


async def post_booked(conn: Conn, transfer_id: str, kind: str, loan_id: str | None,
                      day: dt.date, memo: str, lines: Sequence[BookedLine]) -> bool:
    """Post one entry whose lines name their own offices (an entry spanning branches);
    False when the transfer id was posted before. The database checks balance, sign,
    period and references as for any entry."""
    if not lines:
        return False
    account_ids = sorted({ln.account for ln in lines})
    await ensure_accounts(conn, account_ids)
    amount = sum((ln.amount for ln in lines if ln.side.value == "debit"), Decimal("0.00"))
    body = "|".join(sorted(f"{ln.account}:{ln.side.value}:{ln.amount}:{ln.office_id}"
                           for ln in lines))
    try:
        status = await conn.execute(
            _POST_BOOKED_SQL, uuid.uuid4(), transfer_id,
            hashlib.sha256(f"{kind}|{loan_id}|{body}".encode()).hexdigest(), kind, loan_id,
            memo, amount, day, [ln.account for ln in lines], [ln.side.value for ln in lines],
            [ln.amount for ln in lines], [ln.office_id for ln in lines])
    except asyncpg.CheckViolationError as exc:
        raise InsufficientBalance(f"the ledger refused the entry: {exc}",
                                  field="amount") from None
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise PeriodClosed(str(exc), field="business_date") from None
    return bool(status) and int(status.split()[-1]) > 0
