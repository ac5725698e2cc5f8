"""Accounts (rows <-> ``Account``), their statement lines, and listing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from services.savings.domain.account import Account, Balances
from services.savings.repository import Conn

COLUMNS = (
    "id, client_id, partner_id, product_id, product_version, kind, status, ledger_balance,"
    " held_balance, opened_by, opening_deposit, blocked, block_reason, blocked_by, approved_by,"
    " linked_loan_id, linked_loan_closed, maturity_date, maturity_instruction,"
    " last_client_txn_on, opened_on, closed_on, created_at, version, office_id, office_path"
)


def to_account(r: asyncpg.Record) -> Account:
    data = dict(r)
    ledger, held = data.pop("ledger_balance"), data.pop("held_balance")
    return Account(**data, balances=Balances(ledger, held))


@dataclass(frozen=True)
class InterestTerms:
    annual_rate: Decimal
    interest_basis: str
    posting_period: str | None
    withholding_rate: Decimal
    dormant_after_months: int | None
    term_months: int | None = None
    term_start: dt.date | None = None
    early_break_penalty_rate: Decimal | None = None


async def insert(conn: Conn, a: Account, terms: InterestTerms) -> Account:
    row = await conn.fetchrow(
        "INSERT INTO accounts (id, client_id, partner_id, product_id, product_version, kind,"
        " status, opened_by, opening_deposit, linked_loan_id, maturity_date,"
        " maturity_instruction, opened_on, accrued_through, annual_rate, interest_basis,"
        " posting_period, withholding_rate, dormant_after_months, term_months, term_start,"
        " early_break_penalty_rate, last_client_txn_on, office_id, office_path)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13::date - 1, $14,"
        " $15, $16, $17, $18, $19, $20, $21, $13, $22, $23)"
        f" RETURNING {COLUMNS}",
        a.id, a.client_id, a.partner_id, a.product_id, a.product_version, a.kind, a.status,
        a.opened_by, a.opening_deposit, a.linked_loan_id, a.maturity_date,
        a.maturity_instruction, a.opened_on, terms.annual_rate, terms.interest_basis,
        terms.posting_period, terms.withholding_rate, terms.dormant_after_months,
        terms.term_months, terms.term_start, terms.early_break_penalty_rate, a.office_id,
        a.office_path)
    assert row is not None
    return to_account(row)


async def get(conn: Conn, account_id: str, *, for_update: bool = False) -> Account | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM accounts WHERE id = $1{lock}", account_id)
    return to_account(row) if row else None


async def interest_state(conn: Conn, account_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT annual_rate, interest_basis, posting_period, withholding_rate,"
        " accrued_through, accrued_interest, carried_interest, period_min_balance,"
        " period_days, last_posted_on, term_months, term_start, early_break_penalty_rate"
        " FROM accounts WHERE id = $1", account_id)
    return row


async def save(conn: Conn, a: Account) -> Account:
    """Write the state the domain changes (status, block, approval) back."""
    row = await conn.fetchrow(
        "UPDATE accounts SET status = $2, blocked = $3, block_reason = $4, blocked_by = $5,"
        " approved_by = $6, closed_on = $7, updated_at = now(), version = version + 1"
        f" WHERE id = $1 RETURNING {COLUMNS}",
        a.id, a.status, a.blocked, a.block_reason, a.blocked_by, a.approved_by, a.closed_on)
    assert row is not None
    return to_account(row)


async def activate_interest(conn: Conn, account_id: str, on: dt.date) -> None:
    """An approved account accrues from its approval date."""
    await conn.execute(
        "UPDATE accounts SET accrued_through = greatest(accrued_through, $2::date - 1),"
        " term_start = CASE WHEN kind = 'term_deposit' THEN $2::date ELSE term_start END,"
        " maturity_date = CASE WHEN kind = 'term_deposit'"
        "   THEN ($2::date + make_interval(months => term_months))::date ELSE maturity_date END"
        " WHERE id = $1", account_id, on)


async def move(conn: Conn, account_id: str, *, ledger: Decimal = Decimal(0),
               held: Decimal = Decimal(0), client_txn_on: dt.date | None = None
               ) -> Balances:
    """Add ``ledger`` and ``held`` to the account's balances (the row is locked by the
    caller); the table's checks refuse a negative available balance."""
    row = await conn.fetchrow(
        "UPDATE accounts SET ledger_balance = ledger_balance + $2,"
        " held_balance = held_balance + $3,"
        " last_client_txn_on = COALESCE(greatest(last_client_txn_on, $4), last_client_txn_on),"
        " updated_at = now(), version = version + 1"
        " WHERE id = $1 RETURNING ledger_balance, held_balance",
        account_id, ledger, held, client_txn_on)
    assert row is not None
    return Balances(row["ledger_balance"], row["held_balance"])


async def add_line(conn: Conn, account_id: str, *, key: str, kind: str, amount: Decimal,
                   value_date: dt.date, created_by: str, channel: str | None = None,
                   reference: str | None = None) -> bool:
    """A statement line, once per ``key``; False if that movement was already recorded."""
    done = await conn.fetchval(
        "INSERT INTO transactions (account_id, txn_key, kind, amount, value_date, channel,"
        " reference, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (txn_key) DO NOTHING RETURNING 1",
        account_id, key, kind, amount, value_date, channel, reference, created_by)
    return done is not None


async def statement(conn: Conn, account_id: str, *, date_from: dt.date | None = None,
                    date_to: dt.date | None = None, limit: int = 500
                    ) -> tuple[Decimal, list[dict[str, Any]]]:
    """The opening balance before ``date_from`` and the lines with their running balance,
    in value-date order."""
    opening = await conn.fetchval(
        "SELECT COALESCE(sum(amount), 0) FROM transactions WHERE account_id = $1"
        " AND $2::date IS NOT NULL AND value_date < $2::date", account_id, date_from)
    rows = await conn.fetch(
        "SELECT id, kind, amount, value_date, channel, reference, created_at,"
        " $4::numeric + sum(amount) OVER (ORDER BY value_date, id) AS balance"
        " FROM transactions WHERE account_id = $1"
        " AND ($2::date IS NULL OR value_date >= $2::date)"
        " AND ($3::date IS NULL OR value_date <= $3::date)"
        " ORDER BY value_date, id LIMIT $5",
        account_id, date_from, date_to, opening, limit)
    return opening, [dict(r) for r in rows]


OFFICE_SUBTREE = ("($1::text IS NULL OR {col} = $1 OR starts_with({col}, $1 || '/'))")
"""Rows of an office and its subtree (``$1`` the token's office path, NULL: every office)."""


async def list_for(conn: Conn, *, partner_id: str | None, client_id: str | None,
                   status: str | None, limit: int, office_path: str | None = None
                   ) -> list[Account]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM accounts WHERE {OFFICE_SUBTREE.format(col='office_path')}"
        " AND ($2::text IS NULL OR partner_id = $2)"
        " AND ($3::text IS NULL OR client_id = $3) AND ($4::text IS NULL OR status = $4)"
        " ORDER BY created_at DESC, id DESC LIMIT $5",
        office_path, partner_id, client_id, status, limit)
    return [to_account(r) for r in rows]


async def move_office(conn: Conn, client_id: str, office_id: str, office_path: str
                      ) -> int:
    """The client was transferred: its accounts belong to the new office."""
    tag = await conn.execute(
        "UPDATE accounts SET office_id = $2, office_path = $3, updated_at = now()"
        " WHERE client_id = $1", client_id, office_id, office_path)
    return int(tag.rsplit(" ", 1)[-1])


async def linked_to(conn: Conn, loan_id: str, *, for_update: bool = False) -> list[Account]:
    """The compulsory accounts securing a loan, oldest first."""
    lock = " FOR UPDATE" if for_update else ""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM accounts WHERE linked_loan_id = $1 AND kind = 'compulsory'"
        f" AND status IN ('active', 'dormant') ORDER BY created_at, id{lock}", loan_id)
    return [to_account(r) for r in rows]


async def reopen_linked(conn: Conn, loan_id: str) -> list[str]:
    """The loan will not be disbursed: its compulsory savings are withdrawable."""
    return await close_linked(conn, loan_id)


async def close_linked(conn: Conn, loan_id: str) -> list[str]:
    rows = await conn.fetch(
        "UPDATE accounts SET linked_loan_closed = true, updated_at = now()"
        " WHERE linked_loan_id = $1 AND NOT linked_loan_closed RETURNING id", loan_id)
    return [r["id"] for r in rows]
