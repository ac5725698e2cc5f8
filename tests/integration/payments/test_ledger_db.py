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


async def raw_entry(conn: asyncpg.Connection, credit_account: str, credit: int = 10,
                    transfer: str | None = None) -> uuid.UUID:
    """An entry written in SQL, past the code's checks: 10 debited to funding, ``credit``
    credited to ``credit_account``."""
    entry_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO journal_entries (id, transfer_id, request_hash, kind, amount)"
        " VALUES ($1, $2, 'x', 'manual', 10)", entry_id, transfer or new_id("manual"))
    await conn.execute(
        "INSERT INTO journal_lines (entry_id, account_id, side, amount) VALUES"
        " ($1, 'funding', 'debit', 10), ($1, $2, 'credit', $3)",
        entry_id, credit_account, credit)
    return entry_id


async def test_an_unbalanced_entry_cannot_be_committed(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            async with conn.transaction():
                await raw_entry(conn, "income:fees", credit=9)


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
                await raw_entry(conn, f"portfolio:{loan}")


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
            entry_id = await raw_entry(conn, "income:fees", transfer=transfer)
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO journal_lines (entry_id, account_id, side, amount)"
                    " VALUES ($1, 'funding', 'debit', 5)", entry_id)
        lines = await conn.fetchval(
            "SELECT count(*) FROM journal_lines WHERE entry_id = $1", entry_id)
    assert lines == 2


async def test_a_batch_holding_the_settlement_account_does_not_hold_up_a_savings_collection(
        rig: Rig) -> None:
    """A consumer's transaction posts a deposit into savings account A (raising
    settlement:sim) and stays open; meanwhile a callback posts a deposit into B alone.
    Before migration 0021 the callback queued behind the batch for settlement:sim (and in
    plain id order the two deadlocked); now the shared account moves at commit, so the
    callback commits while the batch is still open, and the batch then posts into B too."""
    from services.payments.domain.savings import wallet_deposit

    a, b = new_id("sa"), new_id("sa")
    amount = Decimal("10.00")
    async with rig.pool.acquire() as conn:
        await ledger_repo.ensure_accounts(conn, [f"savings:{a}", f"savings:{b}"])
    async with rig.pool.acquire() as batch, rig.pool.acquire() as single:

        async def callback() -> None:
            async with single.transaction():
                await ledger_repo.post(single, wallet_deposit(str(uuid.uuid4()), b, "sim",
                                                              amount))

        async with batch.transaction():
            await ledger_repo.post(batch, wallet_deposit(str(uuid.uuid4()), a, "sim", amount))
            # committed while the batch holds its transaction open (a lock wait here would
            # never end: the batch does not commit before the callback does)
            await asyncio.wait_for(callback(), timeout=30)
            await ledger_repo.post(batch, wallet_deposit(str(uuid.uuid4()), b, "sim", amount))
    async with rig.pool.acquire() as conn:
        balances = dict(await conn.fetch(
            "SELECT id, credits - debits FROM accounts WHERE id = ANY($1::text[])",
            [f"savings:{a}", f"savings:{b}"]))
    assert balances == {f"savings:{a}": amount, f"savings:{b}": 2 * amount}
    assert (await rig.trial_balance())["balanced"] is True


async def test_collections_do_not_queue_for_the_shared_accounts_and_move_them_at_commit(
        rig: Rig) -> None:
    """Two collections through the same provider: the second commits while the first's
    transaction is still open (neither settlement:<provider> nor suspense is held until
    the first commits), the first's amounts reach the shared accounts only at its commit,
    and both are in the totals afterwards."""
    provider = new_id("prov")
    settlement = f"settlement:{provider}"
    one, two = Decimal("10.00"), Decimal("2.50")
    async with rig.pool.acquire() as conn:  # opened before (a new account's row is locked)
        await ledger_repo.ensure_accounts(conn, [settlement])
    async with rig.pool.acquire() as first, rig.pool.acquire() as second:
        async def other() -> None:
            async with second.transaction():
                await ledger_repo.post(second, postings.collection(
                    str(uuid.uuid4()), new_id("loan"), provider, two))

        async with first.transaction():
            await ledger_repo.post(first, postings.collection(
                str(uuid.uuid4()), new_id("loan"), provider, one))
            # its own transaction sees what it will move; nobody else does yet
            assert await ledger_repo.balance(first, settlement) == one
            await asyncio.wait_for(other(), timeout=30)
            assert await ledger_repo.balance(second, settlement) == two
        assert await ledger_repo.balance(second, settlement) == one + two
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_shared_account_cannot_go_negative_when_two_postings_race_to_lower_it(
        rig: Rig) -> None:
    """10.00 at a provider, two disbursements of 10.00 at once: each passes the code's
    check (neither sees the other's pending move), the first commits, the second is
    refused at its commit by the database (account_not_negative), and nothing of it
    stays."""
    provider = new_id("prov")
    settlement = f"settlement:{provider}"
    amount = Decimal("10.00")
    async with rig.pool.acquire() as conn, conn.transaction():
        await ledger_repo.post(conn, postings.collection(str(uuid.uuid4()), new_id("loan"),
                                                         provider, amount))
    loans = [new_id("loan"), new_id("loan")]
    async with rig.pool.acquire() as first, rig.pool.acquire() as second:
        tx1, tx2 = first.transaction(), second.transaction()
        await tx1.start()
        await tx2.start()
        await ledger_repo.post(first, postings.disbursement(new_id("saga"), loans[0],
                                                            provider, amount))
        await asyncio.wait_for(ledger_repo.post(second, postings.disbursement(  # no wait
            new_id("saga"), loans[1], provider, amount)), timeout=30)
        await tx1.commit()
        with pytest.raises(asyncpg.CheckViolationError, match="account_not_negative"):
            await tx2.commit()
        assert await ledger_repo.balance(first, settlement) == Decimal("0.00")
        assert [await ledger_repo.balance(first, f"portfolio:{loan}") for loan in loans] \
            == [amount, Decimal("0")]
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_shared_account_cannot_go_negative_even_in_sql(rig: Rig) -> None:
    settlement = f"settlement:{new_id('prov')}"
    async with rig.pool.acquire() as conn:
        await ledger_repo.ensure_accounts(conn, [settlement])
        with pytest.raises(asyncpg.CheckViolationError, match="account_not_negative"):
            async with conn.transaction():
                await raw_entry(conn, settlement)
        assert await ledger_repo.balance(conn, settlement) == Decimal("0")


async def test_a_posting_rolled_back_to_its_savepoint_moves_no_shared_account(
        rig: Rig) -> None:
    provider = new_id("prov")
    settlement = f"settlement:{provider}"
    async with rig.pool.acquire() as conn:
        async with conn.transaction():
            await ledger_repo.post(conn, postings.collection(
                str(uuid.uuid4()), new_id("loan"), provider, Decimal("7.00")))
            with pytest.raises(RuntimeError):
                async with conn.transaction():  # a savepoint
                    await ledger_repo.post(conn, postings.collection(
                        str(uuid.uuid4()), new_id("loan"), provider, Decimal("100.00")))
                    raise RuntimeError("rolled back to the savepoint")
        assert await ledger_repo.balance(conn, settlement) == Decimal("7.00")
    assert (await rig.trial_balance())["balanced"] is True


async def test_lines_naming_an_unknown_entry_account_or_gl_account_are_refused(
        rig: Rig) -> None:
    """Without foreign keys, the lines' trigger checks what each line names, and the
    transaction leaves nothing behind."""
    transfer = new_id("manual")
    async with rig.pool.acquire() as conn:
        async with conn.transaction():
            entry_id = await raw_entry(conn, "income:fees", transfer=transfer)
        unknown_entry = uuid.uuid4()
        cases = [
            ("INSERT INTO journal_lines (entry_id, account_id, side, amount) VALUES"
             " ($1, 'funding', 'debit', 5), ($1, 'income:fees', 'credit', 5)",
             unknown_entry, f"unknown entry {unknown_entry}"),
            ("INSERT INTO journal_lines (entry_id, account_id, side, amount) VALUES"
             " ($1, 'funding', 'debit', 5), ($1, 'no-such-account', 'credit', 5)",
             entry_id, "unknown account no-such-account"),
            ("INSERT INTO journal_lines (entry_id, account_id, side, amount, gl_code) VALUES"
             " ($1, 'funding', 'debit', 5, '0000x'), ($1, 'income:fees', 'credit', 5, NULL)",
             entry_id, "unknown GL account 0000x"),
        ]
        for sql, entry, message in cases:
            with pytest.raises(asyncpg.ForeignKeyViolationError, match=message):
                async with conn.transaction():
                    await conn.execute(sql, entry)
        assert await conn.fetchval(
            "SELECT count(*) FROM journal_lines WHERE entry_id = ANY($1::uuid[])",
            [entry_id, unknown_entry]) == 2


async def test_a_large_batch_after_a_small_posting_on_one_connection_moves_every_account(
        rig: Rig) -> None:
    """The triggers' statements are planned once per session: a batch of many loans'
    lines posted on the connection that has just posted a two-line entry still moves
    each account by the sum of its own lines, gets each line's GL account, and leaves
    the shared income account's move for the commit."""
    loans = [new_id("loan") for _ in range(300)]
    provider = new_id("prov")
    async with rig.pool.acquire() as conn:
        async with conn.transaction():
            await ledger_repo.post(conn, postings.collection(
                str(uuid.uuid4()), loans[0], provider, Decimal("1.00")))
        receivables = [f"interest_receivable:{loan}" for loan in loans]
        await ledger_repo.ensure_accounts(conn, receivables)
        entry_id = uuid.uuid4()
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO journal_entries (id, transfer_id, request_hash, kind, amount)"
                " VALUES ($1, $2, 'x', 'interest_accrual', $3)",
                entry_id, new_id("accruals"), Decimal("0.01") * sum(range(1, 301)) * 2)
            await conn.execute(
                "INSERT INTO journal_lines (entry_id, account_id, side, amount)"
                " SELECT $1::uuid, a, 'debit', n * 0.01 FROM unnest($2::text[]) WITH ORDINALITY"
                " AS r(a, n) UNION ALL"
                " SELECT $1::uuid, a, 'debit', n * 0.01 FROM unnest($2::text[]) WITH ORDINALITY"
                " AS r(a, n) UNION ALL"
                " SELECT $1::uuid, 'income:interest', 'credit', $3::numeric", entry_id,
                receivables,
                Decimal("0.01") * sum(range(1, 301)) * 2)
        balances = await conn.fetch(
            "SELECT id, debits FROM accounts WHERE id = ANY($1::text[])", receivables)
        codes = await conn.fetch(
            "SELECT DISTINCT gl_code FROM journal_lines WHERE entry_id = $1", entry_id)
    assert {r["id"]: r["debits"] for r in balances} == {
        account: Decimal(n) * Decimal("0.02") for n, account in enumerate(receivables, 1)}
    assert "3499" not in {r["gl_code"] for r in codes} and len(codes) == 2
    assert (await rig.trial_balance())["balanced"] is True
