"""The set-based close of business agrees with the domain's own arrears maths.

A seeded random portfolio (varied schedules, partial payments, flat and percentage
penalties with tolerances) is closed in SQL; every loan's days in arrears and
bucket, every penalty and the PAR figures are then recomputed one by one with
``services.loans.domain.delinquency`` and must match exactly.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.loans.bootstrap import MIGRATIONS
from services.loans.domain.allocation import InstallmentDue
from services.loans.domain.delinquency import (
    arrears_bucket,
    days_in_arrears,
    par_ratio,
    penalty_for,
)
from services.loans.domain.products import Penalty, PenaltyKind
from services.loans.handlers.close_of_business import run_close_of_business
from shared.db import create_pool

pytestmark = pytest.mark.integration

BUSINESS_DATE = date(2026, 6, 15)
CENT = Decimal("0.01")


def money(rng: random.Random, low: int, high: int) -> Decimal:
    return (Decimal(rng.randint(low * 100, high * 100)) * CENT).quantize(CENT)


async def test_sql_close_of_business_matches_the_domain_functions(isolated_schema) -> None:
    iso = await isolated_schema("loans_cobdiff", MIGRATIONS)
    rng = random.Random(20260615)
    loans = []
    for n in range(300):
        penalty = None
        if rng.random() < 0.8:
            kind = rng.choice([PenaltyKind.FLAT, PenaltyKind.PERCENT_OF_OVERDUE])
            value = (money(rng, 5, 80) if kind is PenaltyKind.FLAT
                     else Decimal(rng.choice(["0.01", "0.015", "0.02", "0.05"])))
            penalty = Penalty(kind, value, rng.choice([0, 3, 5, 10]))
        start = BUSINESS_DATE - timedelta(days=rng.randint(1, 400))
        step = rng.choice([7, 14, 30])
        items = []
        for k in range(1, rng.randint(2, 12) + 1):
            p, i, f = money(rng, 50, 500), money(rng, 0, 60), money(rng, 0, 10)
            paid = rng.choice(["all", "none", "some"])
            pp, ip, fp = (p, i, f) if paid == "all" else (Decimal("0.00"),) * 3
            if paid == "some":
                ip, fp = i, f
                pp = (p * Decimal(rng.randint(0, 99)) / 100).quantize(CENT)
            items.append((k, start + timedelta(days=step * k), p, i, f, pp, ip, fp))
        loans.append((f"L{n:03d}", penalty, items))

    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO products (id, version, name, terms, created_by)"
                               " VALUES ('p', 1, 'p', '{}', 'test')")
            for loan_id, penalty, items in loans:
                outstanding = sum((p - pp for _, _, p, _, _, pp, _, _ in items), Decimal(0))
                await conn.execute(
                    "INSERT INTO loans (id, client_id, partner_id, product_id, product_version,"
                    " principal, term, status, submitted_by, principal_outstanding,"
                    " penalty_kind, penalty_value, penalty_tolerance_days)"
                    " VALUES ($1, 'c', 'p', 'p', 1, 1000, $2, 'active', 't', $3, $4, $5, $6)",
                    loan_id, len(items), outstanding, penalty.kind.value if penalty else None,
                    penalty.value if penalty else None,
                    penalty.tolerance_days if penalty else None)
                await conn.executemany(
                    "INSERT INTO installments (loan_id, number, due_date, principal_due,"
                    " interest_due, fees_due, principal_paid, interest_paid, fees_paid, status)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    [(loan_id, *item, "paid" if item[2:5] == item[5:8] else "pending")
                     for item in items])

        await run_close_of_business(pool, BUSINESS_DATE, due_days_before=3, requested_by="t")

        expected_par_input = []
        async with pool.acquire() as conn:
            for loan_id, penalty, items in loans:
                owed = [InstallmentDue(k, d, p - pp, i - ip, f - fp, Decimal("0.00"))
                        for k, d, p, i, f, pp, ip, fp in items]
                days = days_in_arrears(owed, BUSINESS_DATE)
                row = await conn.fetchrow(
                    "SELECT days_in_arrears, arrears_bucket, principal_outstanding FROM loans"
                    " WHERE id = $1", loan_id)
                assert (row["days_in_arrears"], row["arrears_bucket"]) == (
                    days, arrears_bucket(days)), loan_id
                expected_par_input.append((row["principal_outstanding"], days))
                charged = {r["number"]: r["penalties_due"] for r in await conn.fetch(
                    "SELECT number, penalties_due FROM installments WHERE loan_id = $1",
                    loan_id)}
                for item in owed:
                    late = (BUSINESS_DATE - item.due_date).days
                    want = (penalty_for(penalty, item.total, late)
                            if penalty and late > 0 else Decimal("0.00"))
                    assert charged[item.number] == want, (loan_id, item.number)
            snap = await conn.fetchrow("SELECT * FROM portfolio_snapshots")
        total = snap["outstanding_principal"]
        for n in (1, 30, 90):
            ratio = (snap[f"par{n}_principal"] / total).quantize(Decimal("0.0001"),
                                                                  rounding="ROUND_HALF_UP")
            assert ratio == par_ratio(expected_par_input, n), n
        in_arrears = sum(1 for _, days in expected_par_input if days > 0)
        assert 50 < in_arrears < 300  # the portfolio really is mixed
    finally:
        await pool.close()
