"""The ledger's properties on the real posting path: ``repository/ledger.py`` into
PostgreSQL, whose triggers check every entry again.

Each example runs one generated sequence of postings (fund, disburse, collect, apply,
refund, write off, reverse, replay, a different body under a taken transfer id) against
the in-memory model (``tests/unit/payments/memory_ledger.py``) and against the SQL
ledger in a schema of its own, and holds the two to the same outcome: what the model
posts is posted, what it refuses is refused with the same error and leaves nothing,
a repeat is idempotent by transfer id. An unbalanced entry is refused by the code and,
sent around the code, by the deferred trigger; posted lines are immutable; every
account's trigger-kept totals are the sum of its lines and the trial balance is zero.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.payments.domain import accounts as acc
from services.payments.domain import postings
from services.payments.domain.accounts import Side
from services.payments.domain.ledger import ZERO, Entry, Unbalanced, validate
from services.payments.domain.ledger import Line as LedgerLine
from services.payments.repository import ledger as ledger_repo
from shared.clock import today
from shared.errors import DomainError
from tests.integration.payments.conftest import MIGRATIONS
from tests.unit.payments.memory_ledger import Ledger

pytestmark = pytest.mark.integration

LOANS = ["L1", "L2"]
amounts = st.integers(min_value=1, max_value=200_000).map(lambda c: Decimal(c) / 100)
operation = st.one_of(
    st.tuples(st.just("fund"), amounts),
    st.tuples(st.just("disburse"), st.sampled_from(LOANS), amounts),
    st.tuples(st.just("collect"), st.sampled_from(LOANS), amounts),
    st.tuples(st.just("apply"), st.integers(0, 20), st.integers(0, 100)),
    st.tuples(st.just("refund"), st.integers(0, 20)),
    st.tuples(st.just("write_off"), st.sampled_from(LOANS)),
    st.tuples(st.just("reverse"), st.integers(0, 40)),
    st.tuples(st.just("replay"), st.integers(0, 40)),
    st.tuples(st.just("tamper"), st.integers(0, 40), amounts),
)
# lines over accounts of the chart, balanced or not (the debits' and credits' totals
# are drawn independently; equal only sometimes)
line_sets = st.lists(
    st.tuples(st.sampled_from([acc.INTEREST_INCOME, acc.FEE_INCOME, acc.PENALTY_INCOME,
                               acc.WRITE_OFF_EXPENSE]),  # unconstrained: only balance counts
              st.sampled_from([Side.DEBIT, Side.CREDIT]),
              st.integers(1, 3).map(lambda c: Decimal(c) * 100)),
    min_size=2, max_size=4)


@pytest.fixture(scope="module")
async def books(isolated_schema: Callable[..., Any]) -> AsyncIterator[asyncpg.Pool]:
    iso = await isolated_schema("ledger_p", MIGRATIONS)
    pool = await asyncpg.create_pool(iso.dsn, server_settings={"search_path": iso.schema},
                                     min_size=1, max_size=2)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


async def balances(conn: asyncpg.Connection) -> dict[str, Decimal]:
    rows = await conn.fetch("SELECT id, normal_side, debits, credits FROM accounts")
    return {r["id"]: (r["debits"] - r["credits"] if r["normal_side"] == "debit"
                      else r["credits"] - r["debits"]) for r in rows}


async def sql_post(conn: asyncpg.Connection, entry: Entry) -> tuple[str, bool]:
    """``(outcome, created)``: "posted", or the refusal's error code."""
    try:
        async with conn.transaction():
            posted = await ledger_repo.post(conn, entry)
    except DomainError as exc:
        return type(exc).__name__, False
    return "posted", posted.created


def model_post(ledger: Ledger, entry: Entry) -> str:
    try:
        ledger.post(entry)
    except DomainError as exc:
        return type(exc).__name__
    return "posted"


def build(op: tuple[Any, ...], tag: str, seq: int, model: Ledger,
          posted: list[Entry]) -> Entry | None:
    """The entry an operation posts (names unique to the example), or None."""
    provider, loans = f"sim{tag}", {loan: f"{loan}{tag}" for loan in LOANS}
    kind = op[0]
    if kind == "fund":
        return postings.funding(provider, op[1], f"funding:{tag}:{seq}")
    if kind == "disburse":
        return postings.disbursement(f"{tag}:{seq}", loans[op[1]], provider, op[2])
    if kind == "collect":
        return postings.collection(f"{tag}:{seq}", loans[op[1]], provider, op[2])
    collections = [e for e in posted if e.kind == "collection"]
    if kind == "apply" and collections:
        c = collections[op[1] % len(collections)]
        principal = (c.amount * op[2] / 100).quantize(Decimal("0.01"))
        parts = {"principal": principal, "interest": c.amount - principal}
        assert c.loan_id is not None
        return postings.repayment(c.transfer_id.removeprefix("collection:"), c.loan_id,
                                  c.amount, parts)
    if kind == "refund" and collections:
        c = collections[op[1] % len(collections)]
        assert c.loan_id is not None
        return postings.refund_due(c.transfer_id.removeprefix("collection:"), c.loan_id,
                                   c.amount)
    if kind == "write_off":
        balance = model.balances.get(acc.portfolio(loans[op[1]]), ZERO)
        return postings.write_off(loans[op[1]], balance) if balance > 0 else None
    if kind in ("reverse", "replay", "tamper") and posted:
        original = posted[op[1] % len(posted)]
        if kind == "reverse":
            return original.reversal()
        if kind == "replay":
            return original
        return postings.funding(provider, op[2], original.transfer_id)  # another body
    return None


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=20), lines=line_sets)
async def test_the_sql_ledger_posts_refuses_and_balances_like_the_model(
        books: asyncpg.Pool, ops: list[tuple[Any, ...]],
        lines: list[tuple[str, Side, Decimal]]) -> None:
    tag = uuid.uuid4().hex[:8]
    posted: list[Entry] = []
    async with books.acquire() as conn:
        before = await balances(conn)
        # the model starts from the books' balances (shared accounts such as suspense
        # hold earlier examples' money), so both judge "would go negative" alike
        model = Ledger(balances=dict(before))
        for seq, op in enumerate(ops):
            entry = build(op, tag, seq, model, posted)
            if entry is None:
                continue
            was = await balances(conn)
            new = entry.transfer_id not in model.entries
            expected = model_post(model, entry)
            outcome, created = await sql_post(conn, entry)
            assert outcome == expected, (op, entry)
            if outcome != "posted":
                assert await balances(conn) == was, "a refused entry left something"
            elif not new:  # the same transfer id and body again: the first one stands
                assert not created and await balances(conn) == was
            else:
                assert created
                posted.append(entry)

        # the SQL balances moved exactly as the model's
        after = await balances(conn)
        assert {a: v for a, v in after.items() if v} == {
            a: v for a, v in model.balances.items() if v}

        # an unbalanced entry: refused by the code, and by the trigger around the code
        debits = sum((a for _, s, a in lines if s is Side.DEBIT), ZERO)
        credits = sum((a for _, s, a in lines if s is Side.CREDIT), ZERO)
        drawn = tuple(LedgerLine(a, s, v) for a, s, v in lines)
        if debits != credits:
            with pytest.raises(Unbalanced):
                validate(drawn)
        await ledger_repo.ensure_accounts(conn, [a for a, _, _ in lines])
        was = await balances(conn)
        transfer = f"raw:{tag}"
        try:
            async with conn.transaction():
                await conn.fetchval(
                    ledger_repo._INSERT_SQL, uuid.uuid4(), transfer, "raw", "raw", None,
                    None, None, "", max(debits, credits) or Decimal("1.00"),
                    [a for a, _, _ in lines], [s.value for _, s, _ in lines],
                    [v for _, _, v in lines], today(), None)
        except asyncpg.CheckViolationError as exc:  # the deferred trigger, at commit
            assert debits != credits, exc
            assert "does not balance" in str(exc)
            assert await conn.fetchval(
                "SELECT count(*) FROM journal_entries WHERE transfer_id = $1", transfer) == 0
            assert await balances(conn) == was
        else:
            assert debits == credits, "the database took an unbalanced entry"

        # posted lines are immutable
        if posted:
            for statement in ("UPDATE journal_lines SET amount = amount + 1",
                              "DELETE FROM journal_lines"):
                with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                    await conn.execute(
                        f"{statement} WHERE entry_id = (SELECT id FROM journal_entries"
                        " WHERE transfer_id = $1)", posted[0].transfer_id)

        # every account's totals are the sum of its lines; the trial balance is zero
        assert await conn.fetch(
            "SELECT a.id FROM accounts a LEFT JOIN (SELECT account_id,"
            " coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS d,"
            " coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS c"
            " FROM journal_lines GROUP BY account_id) l ON l.account_id = a.id"
            " WHERE a.debits <> coalesce(l.d, 0) OR a.credits <> coalesce(l.c, 0)") == []
        assert await conn.fetchval(
            "SELECT sum(debits) = sum(credits) FROM accounts") is True
