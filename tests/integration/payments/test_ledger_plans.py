"""The ledger's statements are planned once per connection, not on every posting.

Payments' lock of an entry's accounts looks two or three accounts up by key among a row
per loan and receivable. Written as ``id = ANY($1)``, PostgreSQL's plan cache kept
planning it anew on every call (its custom plan knows the array's length, so the generic
one always looked dearer): under load that planning cost four times the lookup itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from services.payments.domain import postings
from services.payments.repository import ledger as ledger_repo
from shared.db import connect
from tests.integration.payments.conftest import MIGRATIONS

pytestmark = pytest.mark.integration


async def test_postings_reuse_one_plan_of_the_account_lock(
        isolated_schema: Callable[..., Any]) -> None:
    iso = await isolated_schema("payments_plans", MIGRATIONS)
    conn = await connect(iso.dsn, schema=iso.schema)
    try:
        # a portfolio's worth of accounts, with statistics, as in production
        await conn.execute(
            "INSERT INTO accounts (id, kind, name, normal_side, non_negative, moved_at_commit)"
            " SELECT 'portfolio:L' || g, 'loan_portfolio', 'Loan portfolio', 'debit', true,"
            " false FROM generate_series(1, 100000) g")
        await conn.execute("ANALYZE accounts")
        for _ in range(10):
            async with conn.transaction():
                await ledger_repo.post(conn, postings.collection(
                    str(uuid.uuid4()), "L1", "sim", Decimal("10.00")))
        plans = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement = $1", ledger_repo._LOCK_SQL)
    finally:
        await conn.close()
    assert plans is not None
    # five custom plans to learn the statement's cost, then the generic one, kept
    assert plans["custom_plans"] <= 5 and plans["generic_plans"] >= 5, dict(plans)
