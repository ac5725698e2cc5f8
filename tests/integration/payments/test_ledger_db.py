"""The database itself keeps the books sound, whatever the code does."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from services.payments.domain import postings
from services.payments.domain.ledger import InsufficientBalance, TransferExists
from services.payments.repository import ledger as ledger_repo
from tests.integration.payments.conftest import Rig, new_id

pytestmark = pytest.mark.integration


async def test_an_unbalanced_entry_cannot_be_committed(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            async with conn.transaction():
                entry_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO journal_entries (id, transfer_id, request_hash, kind, amount)"
                    " VALUES ($1, $2, 'x', 'manual', 10)", entry_id, new_id("manual"))
                await conn.execute(
                    "INSERT INTO journal_lines (entry_id, account_id, side, amount) VALUES"
                    " ($1, 'funding', 'debit', 10), ($1, 'income:fees', 'credit', 9)", entry_id)


async def test_posted_lines_and_entries_cannot_be_changed_or_deleted(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        for sql in ("UPDATE journal_lines SET amount = amount + 1",
                    "DELETE FROM journal_lines", "UPDATE journal_entries SET memo = 'x'",
                    "DELETE FROM journal_entries"):
            with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                await conn.execute(sql)


async def test_a_constrained_account_cannot_go_negative_even_in_sql(rig: Rig) -> None:
    loan = new_id("loan")
    async with rig.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="account_not_negative"):
            async with conn.transaction():
                await ledger_repo.ensure_accounts(conn, [f"portfolio:{loan}"])
                entry_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO journal_entries (id, transfer_id, request_hash, kind, amount)"
                    " VALUES ($1, $2, 'x', 'manual', 10)", entry_id, new_id("manual"))
                await conn.execute(
                    "INSERT INTO journal_lines (entry_id, account_id, side, amount) VALUES"
                    " ($1, 'funding', 'debit', 10), ($1, $2, 'credit', 10)",
                    entry_id, f"portfolio:{loan}")


async def test_postings_are_idempotent_on_the_transfer_id(rig: Rig) -> None:
    loan = new_id("loan")
    entry = postings.collection(str(uuid.uuid4()), loan, "sim", Decimal("10.00"))
    async with rig.pool.acquire() as conn:
        async with conn.transaction():
            first = await ledger_repo.post(conn, entry)
        async with conn.transaction():
            again = await ledger_repo.post(conn, entry)
        assert first.created and not again.created and again.entry_id == first.entry_id
        other = postings.collection(entry.transfer_id.split(":", 1)[1], loan, "sim",
                                    Decimal("11.00"))
        with pytest.raises(TransferExists):
            async with conn.transaction():
                await ledger_repo.post(conn, other)
        assert await conn.fetchval(
            "SELECT count(*) FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
            " WHERE e.transfer_id = $1", entry.transfer_id) == 2


async def test_concurrent_postings_keep_balances_exact_and_never_overdraw(rig: Rig) -> None:
    """40 concurrent movements on overlapping accounts: no deadlock, no lost update,
    and the portfolio never pays back more than was lent."""
    loan = new_id("loan")
    async with rig.pool.acquire() as conn, conn.transaction():
        await ledger_repo.post(conn, postings.disbursement(new_id("saga"), loan, "sim",
                                                           Decimal("100.00")))

    async def repay(i: int) -> bool:
        pid = str(uuid.uuid4())
        try:
            async with rig.pool.acquire() as conn, conn.transaction():
                await ledger_repo.post(conn, postings.collection(pid, loan, "sim",
                                                                 Decimal("10.00")))
                await ledger_repo.post(conn, postings.repayment(
                    pid, loan, Decimal("10.00"), {"principal": Decimal("10.00")}))
            return True
        except InsufficientBalance:
            return False

    results = await asyncio.gather(*(repay(i) for i in range(40)))
    assert results.count(True) == 10  # exactly the 100.00 lent, 10.00 at a time
    assert await rig.portfolio(loan) == Decimal("0.00")
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_line_added_to_an_entry_of_an_earlier_transaction_is_refused(rig: Rig) -> None:
    """An entry written in this transaction is checked once, by its own trigger; a line
    slipped into an entry committed before is still checked against that entry."""
    transfer = new_id("manual")
    async with rig.pool.acquire() as conn:
        async with conn.transaction():
            entry_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO journal_entries (id, transfer_id, request_hash, kind, amount)"
                " VALUES ($1, $2, 'x', 'manual', 10)", entry_id, transfer)
            await conn.execute(
                "INSERT INTO journal_lines (entry_id, account_id, side, amount) VALUES"
                " ($1, 'funding', 'debit', 10), ($1, 'income:fees', 'credit', 10)", entry_id)
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO journal_lines (entry_id, account_id, side, amount)"
                    " VALUES ($1, 'funding', 'debit', 5)", entry_id)
        lines = await conn.fetchval(
            "SELECT count(*) FROM journal_lines WHERE entry_id = $1", entry_id)
    assert lines == 2


async def test_a_batch_holding_the_settlement_account_does_not_deadlock_a_savings_collection(
        rig: Rig) -> None:
    """A consumer's transaction posts a deposit into savings account A (so it holds
    settlement:sim), and then one into B; meanwhile a callback posts a deposit into B
    alone. In plain id order the callback held savings:B while waiting for settlement:sim,
    and the batch then waited for savings:B: a deadlock, one of them rolled back (the
    callback answered 500). The shared account is locked first: the callback waits holding
    nothing, and both commit."""
    from services.payments.domain.savings import wallet_deposit

    a, b = new_id("sa"), new_id("sa")
    amount = Decimal("10.00")
    async with rig.pool.acquire() as conn:
        await ledger_repo.ensure_accounts(conn, [f"savings:{a}", f"savings:{b}"])
    async with rig.pool.acquire() as batch, rig.pool.acquire() as single:
        pid = single.get_server_pid()

        async def callback() -> None:
            async with single.transaction():
                await ledger_repo.post(single, wallet_deposit(str(uuid.uuid4()), b, "sim",
                                                              amount))

        async def waiting_for_a_lock() -> bool:
            return bool(await rig.pool.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid))

        async with batch.transaction():
            await ledger_repo.post(batch, wallet_deposit(str(uuid.uuid4()), a, "sim", amount))
            alone = asyncio.create_task(callback())
            for _ in range(300):  # the callback now waits for the batch's lock
                if await waiting_for_a_lock():
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the callback's posting never waited for a lock")
            await ledger_repo.post(batch, wallet_deposit(str(uuid.uuid4()), b, "sim", amount))
        await alone  # raised DeadlockDetectedError with the accounts locked in id order
    async with rig.pool.acquire() as conn:
        balances = dict(await conn.fetch(
            "SELECT id, credits - debits FROM accounts WHERE id = ANY($1::text[])",
            [f"savings:{a}", f"savings:{b}"]))
    assert balances == {f"savings:{a}": amount, f"savings:{b}": 2 * amount}
    assert (await rig.trial_balance())["balanced"] is True
