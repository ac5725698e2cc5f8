"""The ledger in PostgreSQL: idempotent postings, client accounts locked in id order.

``post`` locks the client's accounts the entry touches (a loan's portfolio and
receivables, a savings account) in id order, reads the institution's shared accounts
(settlement, suspense, income, cash) without a lock, re-checks the non-negative rule in
code against the committed balances plus this transaction's own pending moves, then
inserts the entry and its lines. The database checks the same rules again: a client's
account is moved by the lines' statement trigger, a shared one at commit (payments
migration 0021: its row is locked only from the commit's first step to its end, so
postings on the same shared account no longer queue behind each other's whole
transactions), each with a CHECK; a deferred trigger checks that the entry balances.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain.accounts import Side, spec_for
from services.payments.domain.ledger import (
    ZERO,
    Entry,
    InsufficientBalance,
    TransferExists,
    check_balances,
)
from services.payments.repository import Conn
from shared.clock import today
from shared.db import any_of
from shared.errors import Conflict, InvalidInput, NotFound


class PeriodClosed(Conflict):
    """The entry's business date is in a closed accounting period."""

    code = "period_closed"


@dataclass(frozen=True)
class Posted:
    entry_id: uuid.UUID
    transfer_id: str
    created: bool  # False when the same transfer was already posted


async def ensure_accounts(conn: Conn, ids: Sequence[str]) -> None:
    """Open the accounts ``ids`` name (as the chart describes them) that do not exist
    yet, in one statement, in id order."""
    specs = [spec_for(i) for i in sorted(set(ids))]
    await conn.execute(
        "INSERT INTO accounts (id, kind, name, normal_side, non_negative, moved_at_commit)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        " $5::boolean[], $6::boolean[]) ON CONFLICT (id) DO NOTHING",
        [s.id for s in specs], [s.kind.value for s in specs], [s.name for s in specs],
        [s.normal.value for s in specs], [s.non_negative for s in specs],
        [s.moved_at_commit for s in specs])


def _balance(normal: str, debits: Decimal, credits: Decimal) -> Decimal:
    return debits - credits if normal == Side.DEBIT.value else credits - debits


# The accounts an entry touches and whether the transfer exists, in one round trip (the
# entry's lookup is an init-plan, run once). A client's accounts are locked, in id order
# (the order the lines' trigger locks them in: two postings never deadlock); a shared
# account is only read, its committed totals plus what this transaction has already
# posted to it (moved at commit, migration 0021), for the code's non-negative check.
_PENDING_DEBITS = "coalesce((ledger_pending_moves() -> a.id ->> 0)::numeric, 0)"
_PENDING_CREDITS = "coalesce((ledger_pending_moves() -> a.id ->> 1)::numeric, 0)"
# (The ids through ``any_of``: planned once per connection, not on every posting.)
_IDS = any_of("$1::text[]")
_LOCK_SQL = (
    "WITH locked AS (SELECT id, normal_side, debits, credits FROM accounts"
    f" WHERE id = {_IDS} AND NOT moved_at_commit ORDER BY id FOR UPDATE)"
    f" SELECT a.id, a.normal_side, a.debits + {_PENDING_DEBITS} AS debits,"
    f" a.credits + {_PENDING_CREDITS} AS credits,"
    " (SELECT je.id FROM journal_entries je WHERE je.transfer_id = $2) AS existing_id,"
    " (SELECT je.request_hash FROM journal_entries je WHERE je.transfer_id = $2)"
    " AS existing_hash"
    " FROM (SELECT * FROM locked UNION ALL SELECT id, normal_side, debits, credits"
    f" FROM accounts WHERE id = {_IDS} AND moved_at_commit) a")

# Only the client's accounts among them, locked in id order (gl.post_many's batches).
LOCK_CLIENT_ACCOUNTS_SQL = (
    f"SELECT 1 FROM accounts WHERE id = {_IDS} AND NOT moved_at_commit"
    " ORDER BY id FOR UPDATE")

# The entry and its lines in one statement (lines in the entry's order); no row when
# the transfer id is already taken (a concurrent twin won the race).
_INSERT_SQL = (
    "WITH e AS (INSERT INTO journal_entries (id, transfer_id, request_hash, kind, loan_id,"
    " provider, reverses, memo, amount, business_date, office_id)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $13, $14)"
    " ON CONFLICT (transfer_id) DO NOTHING RETURNING id)"
    " INSERT INTO journal_lines (entry_id, account_id, side, amount)"
    " SELECT e.id, l.account, l.side, l.amount FROM e,"
    " unnest($10::text[], $11::text[], $12::numeric[]) WITH ORDINALITY"
    " AS l(account, side, amount, n) ORDER BY l.n RETURNING entry_id")


async def post(conn: Conn, entry: Entry) -> Posted:
    """Post ``entry`` once: a repeat with the same body returns the original.

    Two statements when the accounts exist: lock them (and learn whether the
    transfer was posted before), then insert the entry with its lines.
    """
    account_ids = sorted({ln.account for ln in entry.lines})
    rows = await conn.fetch(_LOCK_SQL, account_ids, entry.transfer_id)
    if len(rows) < len(account_ids):  # an account's first entry: open it, lock again
        await ensure_accounts(conn, account_ids)
        rows = await conn.fetch(_LOCK_SQL, account_ids, entry.transfer_id)
    if rows and rows[0]["existing_id"] is not None:
        return _same_or_refuse(rows[0]["existing_id"], rows[0]["existing_hash"], entry)
    balances = {r["id"]: _balance(r["normal_side"], r["debits"], r["credits"]) for r in rows}
    check_balances(entry, balances)
    reverses: uuid.UUID | None = None
    if entry.reverses is not None:
        reverses = await conn.fetchval(
            "SELECT id FROM journal_entries WHERE transfer_id = $1", entry.reverses)
        if reverses is None:
            raise InvalidInput(f"cannot reverse unknown transfer {entry.reverses}",
                               field="reverses")
        if await conn.fetchval("SELECT 1 FROM journal_entries WHERE reverses = $1", reverses):
            raise Conflict(f"transfer {entry.reverses} is already reversed", field="reverses")
    entry_id = uuid.uuid4()
    try:
        inserted = await conn.fetchval(
            _INSERT_SQL, entry_id, entry.transfer_id, entry.request_hash(), entry.kind,
            entry.loan_id, entry.provider, reverses, entry.memo, entry.amount,
            [ln.account for ln in entry.lines], [ln.side.value for ln in entry.lines],
            [ln.amount for ln in entry.lines], entry.business_date or today(),
            entry.office_id)
    except asyncpg.CheckViolationError as exc:  # the database's own non-negative check
        raise InsufficientBalance(f"the ledger refused the entry: {exc}", field="amount") from None
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:  # a closed period (trigger)
        raise PeriodClosed(str(exc), field="business_date") from None
    if inserted is None:  # a concurrent twin won the race
        existing = await conn.fetchrow(
            "SELECT id, request_hash FROM journal_entries WHERE transfer_id = $1",
            entry.transfer_id)
        assert existing is not None
        return _same_or_refuse(existing["id"], existing["request_hash"], entry)
    return Posted(entry_id, entry.transfer_id, True)


def _same_or_refuse(entry_id: uuid.UUID, request_hash: str, entry: Entry) -> Posted:
    if request_hash != entry.request_hash():
        raise TransferExists(
            f"transfer {entry.transfer_id} exists with a different body", field="transfer_id")
    return Posted(entry_id, entry.transfer_id, False)


async def entry_exists(conn: Conn, transfer_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM journal_entries WHERE transfer_id = $1", transfer_id))


async def balance(conn: Conn, account_id: str) -> Decimal:
    row = await conn.fetchrow(  # with what this transaction moves at its commit
        f"SELECT normal_side, debits + {_PENDING_DEBITS} AS debits,"
        f" credits + {_PENDING_CREDITS} AS credits FROM accounts a WHERE id = $1",
        account_id)
    if row is None:
        return ZERO
    return _balance(row["normal_side"], row["debits"], row["credits"])


async def trial_balance(conn: Conn) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT kind, normal_side, count(*) AS accounts, sum(debits) AS debits,"
        " sum(credits) AS credits FROM accounts GROUP BY kind, normal_side ORDER BY kind")
    lines = await conn.fetchrow(
        "SELECT coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS d,"
        " coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS c FROM journal_lines")
    assert lines is not None
    total_debits = sum((r["debits"] for r in rows), ZERO)
    total_credits = sum((r["credits"] for r in rows), ZERO)
    by_kind = [{
        "kind": r["kind"], "normal_side": r["normal_side"], "accounts": r["accounts"],
        "debits": r["debits"], "credits": r["credits"],
        "balance": _balance(r["normal_side"], r["debits"], r["credits"]),
    } for r in rows]
    return {
        "total_debits": total_debits, "total_credits": total_credits,
        "lines_debits": lines["d"], "lines_credits": lines["c"],
        "balanced": total_debits == total_credits and lines["d"] == lines["c"]
        and lines["d"] == total_debits,
        "by_kind": by_kind,
    }


async def statement(conn: Conn, account_id: str, limit: int,
                    before: int | None) -> dict[str, Any]:
    acct = await conn.fetchrow(
        "SELECT id, kind, name, normal_side, non_negative, debits, credits FROM accounts"
        " WHERE id = $1", account_id)
    if acct is None:
        raise NotFound(f"no account {account_id}", field="account_id")
    rows = await conn.fetch(
        "SELECT * FROM ("
        " SELECT l.id, l.side, l.amount, e.transfer_id, e.kind, e.loan_id, e.memo,"
        "  e.created_at, sum(CASE WHEN l.side = $2 THEN l.amount ELSE -l.amount END)"
        "  OVER (ORDER BY l.id) AS running"
        " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
        " WHERE l.account_id = $1) s"
        " WHERE $3::bigint IS NULL OR s.id < $3 ORDER BY s.id DESC LIMIT $4",
        account_id, acct["normal_side"], before, limit)
    return {
        "account": {
            "id": acct["id"], "kind": acct["kind"], "name": acct["name"],
            "normal_side": acct["normal_side"], "non_negative": acct["non_negative"],
            "debits": acct["debits"], "credits": acct["credits"],
            "balance": _balance(acct["normal_side"], acct["debits"], acct["credits"]),
        },
        "lines": [{
            "line_id": r["id"], "transfer_id": r["transfer_id"], "kind": r["kind"],
            "loan_id": r["loan_id"], "side": r["side"], "amount": r["amount"],
            "balance_after": r["running"], "memo": r["memo"], "posted_at": r["created_at"],
        } for r in rows],
        "next_before": rows[-1]["id"] if len(rows) == limit else None,
    }


async def account_exists(conn: Conn, account_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id))


async def entry_amount(conn: Conn, transfer_id: str) -> Decimal | None:
    value: Decimal | None = await conn.fetchval(
        "SELECT amount FROM journal_entries WHERE transfer_id = $1", transfer_id)
    return value
