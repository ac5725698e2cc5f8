"""The projection of savings accounts learnt from ``savings.events``: each account's
client and last known ledger balance (the dormancy notice names it)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from shared.db import Conn


async def remember_opened(conn: Conn, account_id: str, client_id: str,
                          at: dt.datetime) -> None:
    """A new account holds nothing (its opening deposit is a DepositPosted)."""
    await conn.execute(
        "INSERT INTO savings_accounts (account_id, client_id, ledger_balance, balance_at)"
        " VALUES ($1, $2, 0, $3) ON CONFLICT (account_id) DO NOTHING",
        account_id, client_id, at)


async def remember_balance(conn: Conn, account_id: str, client_id: str,
                           balance: Decimal, at: dt.datetime) -> None:
    """The ledger balance an event of ``at`` reports; an older event changes nothing."""
    await conn.execute(
        "INSERT INTO savings_accounts (account_id, client_id, ledger_balance, balance_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET"
        " ledger_balance = EXCLUDED.ledger_balance, balance_at = EXCLUDED.balance_at,"
        " updated_at = now() WHERE savings_accounts.balance_at <= EXCLUDED.balance_at",
        account_id, client_id, balance, at)


async def balance_of(conn: Conn, account_id: str) -> Decimal | None:
    value: Decimal | None = await conn.fetchval(
        "SELECT ledger_balance FROM savings_accounts WHERE account_id = $1", account_id)
    return value


async def client_of(conn: Conn, account_id: str) -> str | None:
    """The client of a savings account the projection knows (account ids compare in
    lower case, as payments' ``SAV-`` references carry them)."""
    value: str | None = await conn.fetchval(
        "SELECT client_id FROM savings_accounts WHERE account_id = lower($1)",
        account_id)
    return value
