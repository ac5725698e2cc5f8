"""Savings accounts as payments sees them: their deposit liability and the withdrawals
payments has recorded for them but not finished."""

from __future__ import annotations

from decimal import Decimal

from services.payments.domain import accounts
from services.payments.repository import Conn
from services.payments.repository import ledger as ledger_repo


async def deposit_liability(conn: Conn, account_id: str) -> tuple[bool, Decimal]:
    """(whether the ledger has the account, its deposit-liability balance)."""
    ledger_account = accounts.savings_deposits(account_id)
    exists = await ledger_repo.account_exists(conn, ledger_account)
    return exists, await ledger_repo.balance(conn, ledger_account)


async def withdrawals_open(conn: Conn, account_id: str) -> tuple[int, Decimal]:
    """Withdrawal payouts of the account not final yet (pending, submitted, in doubt):
    already debited from its deposits here, still held (not debited) in savings."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM payouts"
        " WHERE kind = 'withdrawal' AND account_id = $1"
        " AND status IN ('pending', 'submitted', 'in_doubt')", account_id)
    assert row is not None
    return int(row["n"]), Decimal(row["total"])
