"""Close of business in the ledger: the runs per business date (their idempotency), the
provision rates, each loan's latest provisioning, and allowances left on repaid loans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain import provisioning
from services.payments.repository import Conn


async def accrual_run(conn: Conn, day: dt.date, batch: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM accrual_runs WHERE business_date = $1 AND batch = $2", day, batch)


async def record_accrual_run(conn: Conn, day: dt.date, batch: int, *, loans: int,
                             accrued: Decimal, reversed_: Decimal, non_accrual: int,
                             source: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO accrual_runs (business_date, batch, basis, loans, accrued, reversed,"
        " non_accrual, source) VALUES ($1, $2, 'accrual', $3, $4, $5, $6, $7) RETURNING *",
        day, batch, loans, accrued, reversed_, non_accrual, source)
    assert row is not None
    return row


async def provision_run(conn: Conn, day: dt.date, batch: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM provision_runs WHERE business_date = $1 AND batch = $2", day, batch)


async def last_provision_date(conn: Conn) -> dt.date | None:
    value: dt.date | None = await conn.fetchval("SELECT max(business_date) FROM provision_runs")
    return value


async def record_provision_run(conn: Conn, day: dt.date, batch: int, *, loans: int,
                               required: Decimal, charged: Decimal, released: Decimal,
                               source: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO provision_runs (business_date, batch, loans, required, charged, released,"
        " source) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        day, batch, loans, required, charged, released, source)
    assert row is not None
    return row


async def orphan_allowances(conn: Conn, except_loans: Sequence[str]) -> list[tuple[str, Decimal]]:
    """(loan id, allowance held) of loans whose principal is gone (repaid or written off
    elsewhere) but whose allowance still holds something, other than ``except_loans``."""
    rows = await conn.fetch(
        "SELECT a.id, a.credits - a.debits AS held FROM accounts a"
        " LEFT JOIN accounts p ON p.id = 'portfolio:' || substr(a.id, 11)"
        " WHERE a.kind = 'loan_loss_allowance' AND a.credits > a.debits"
        " AND coalesce(p.debits - p.credits, 0) = 0 AND NOT (substr(a.id, 11) = ANY($1))",
        list(except_loans))
    return [(r["id"][len("allowance:"):], r["held"]) for r in rows]


async def record_provisions(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Each loan's latest provisioning: (loan, date, days in arrears, restructured,
    bucket, rate, principal, required) — one statement, in loan id order (two batches
    sharing loans wait on each other's rows in the same order); a loan named twice
    keeps its last figures."""
    latest = {r[0]: r for r in rows}
    if not latest:
        return
    cols = list(zip(*(latest[k] for k in sorted(latest)), strict=True))
    await conn.execute(
        "INSERT INTO loan_provisions (loan_id, business_date, days_in_arrears,"
        " restructured, bucket, rate, principal, required)"
        " SELECT * FROM unnest($1::text[], $2::date[], $3::int[], $4::boolean[],"
        " $5::text[], $6::numeric[], $7::numeric[], $8::numeric[])"
        " ON CONFLICT (loan_id) DO UPDATE SET business_date = EXCLUDED.business_date,"
        " days_in_arrears = EXCLUDED.days_in_arrears, restructured = EXCLUDED.restructured,"
        " bucket = EXCLUDED.bucket, rate = EXCLUDED.rate, principal = EXCLUDED.principal,"
        " required = EXCLUDED.required", *(list(c) for c in cols))


async def rates(conn: Conn) -> list[provisioning.Rate]:
    rows = await conn.fetch(
        "SELECT bucket, min_days, max_days, rate, restructured FROM provision_rates"
        " ORDER BY restructured, min_days")
    return [provisioning.Rate(r["bucket"], r["min_days"], r["max_days"], r["rate"],
                              r["restructured"]) for r in rows]


async def replace_rates(conn: Conn, rates_: Sequence[provisioning.Rate]) -> None:
    await conn.execute("DELETE FROM provision_rates")
    await conn.executemany(
        "INSERT INTO provision_rates (bucket, min_days, max_days, rate, restructured)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(r.bucket, r.min_days, r.max_days, r.rate, r.restructured) for r in rates_])
