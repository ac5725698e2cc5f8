"""Loans' saga and repayment handlers: round trips and time per handler run.

Runs the handlers themselves (no Kafka, no HTTP) against a fresh loans schema, one
unit of work per handler run as the consumer would, and counts the statements each
sends to PostgreSQL (asyncpg's query logger: one entry per round trip) between the
transaction's BEGIN and the unit of work's commit. For each handler it prints the
statements (deterministic), the median wall time and the median CPU time of this
process per run (the Python side of the handler; PostgreSQL's own work is not in it).

The handlers, in the order a saga meets them:

- ``approve``: the operator's approval, starting the saga (ReserveCredit);
- ``CreditReserved``: the credit is reserved, the payout is asked for (DisburseLoan);
- ``DisbursementCompleted``: the loan is activated (LoanDisbursed);
- ``DisbursementFailed`` then ``CreditReleased``: the compensation path;
- ``RepaymentReceived``: a repayment allocated to an active loan.

    NORIA_ADMIN_DATABASE_URL=postgresql://noria_admin:noria_admin@127.0.0.1:55432/noria \\
    .venv/bin/python -m bench.loans_handlers --loans 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from bench.cob import create_schema, drop_schema
from services.loans.domain import saga as sg
from services.loans.domain.products import (
    Amortization,
    Frequency,
    InterestMethod,
    ProductTerms,
)
from services.loans.handlers import applications
from services.loans.handlers.events import Handler, saga_handlers
from services.loans.handlers.repayments import on_repayment_received
from services.loans.repository import clients as clients_repo
from shared.auth import ROLE_SCOPES, Principal
from shared.contracts.clients import CreditReleased, CreditReserved
from shared.contracts.payments import (
    DisbursementCompleted,
    DisbursementFailed,
    RepaymentReceived,
)
from shared.db import create_pool
from shared.envelope import Envelope
from shared.uow import UnitOfWork

HANDLERS = ("approve", "CreditReserved", "DisbursementCompleted", "DisbursementFailed",
            "CreditReleased", "RepaymentReceived")
MSISDN = "+212612345678"


class Counter:
    """Counts the statements a connection sends (asyncpg calls the logger once each)."""

    def __init__(self) -> None:
        self.n = 0
        self.queries: list[str] = []
        self.keep = False

    def __call__(self, record: Any) -> None:
        self.n += 1
        if self.keep:
            self.queries.append(" ".join(str(record.query).split())[:110])


def told(handler: Handler, msg: Any) -> Callable[[UnitOfWork], Awaitable[Any]]:
    """A consumer's call of ``handler`` for ``msg`` (the handlers here do not read the
    envelope)."""
    async def call(uow: UnitOfWork) -> None:
        await handler(uow, msg, cast(Envelope, None))
    return call


async def _logged() -> None:
    """Let asyncpg deliver the query log entries it has scheduled (``call_soon``)."""
    for _ in range(3):
        await asyncio.sleep(0)


def _terms() -> ProductTerms:
    return ProductTerms(
        interest_method=InterestMethod.FLAT, amortization=Amortization.EQUAL_INSTALLMENTS,
        frequency=Frequency.MONTHLY, annual_rate=Decimal("0.12"), min_principal=Decimal(100),
        max_principal=Decimal(1_000_000), min_term=1, max_term=120)


async def run(url: str, schema: str, loans: int, show: bool) -> dict[str, dict[str, float]]:
    pool = await create_pool(url, schema=schema, min_size=1, max_size=1)
    counter = Counter()
    async with pool.acquire() as raw:
        raw.add_query_logger(counter)
    policy = sg.SagaPolicy()
    on = saga_handlers(policy)
    scopes = frozenset(ROLE_SCOPES["operator"])
    maker = Principal(sub="op-maker", partner_id=None, scopes=scopes)
    checker = Principal(sub="op-checker", partner_id=None, scopes=scopes)
    partner = f"p-{uuid.uuid4().hex[:6]}"
    samples: dict[str, list[tuple[int, float, float]]] = {h: [] for h in HANDLERS}

    async def step(name: str, fn: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        uow = UnitOfWork(pool)
        async with uow:
            await _logged()
            counter.keep = show and len(samples[name]) == 1
            before = counter.n
            w0, c0 = time.perf_counter(), time.process_time()
            out = await fn(uow)
            w1, c1 = time.perf_counter(), time.process_time()
            await _logged()
            samples[name].append((counter.n - before, (w1 - w0) * 1e6, (c1 - c0) * 1e6))
            if counter.keep:
                print(f"-- {name}: {counter.n - before} statements")
                for q in counter.queries:
                    print(f"   {q}")
                counter.queries.clear()
                counter.keep = False
            await uow.commit()
        return out

    uow = UnitOfWork(pool)
    async with uow:
        product = await applications.create_product(uow, "op-maker", "bench", _terms())
        await uow.commit()
    today = date(2026, 1, 15)
    for i in range(loans):
        client_id = f"c-{uuid.uuid4().hex[:12]}"
        uow = UnitOfWork(pool)
        async with uow:
            await clients_repo.register(uow.conn, client_id, partner)
            loan = await applications.submit(
                uow, maker, client_id=client_id, product_id=product.id,
                principal=Decimal("1200.00"), term=4, today=today)
            await uow.commit()
        loan_id = loan["id"]

        async def approve(u: UnitOfWork, lid: str = loan_id) -> dict[str, Any]:
            return await applications.approve(u, checker, lid, policy)

        body = await step("approve", approve)
        saga_id = body["saga_id"]
        await step("CreditReserved", told(on["CreditReserved"], CreditReserved(
            client_id=client_id, reservation_id=saga_id, saga_id=saga_id, loan_id=loan_id,
            amount=Decimal("1200.00"), credit_limit=Decimal("50000.00"),
            exposure=Decimal("1200.00"), msisdn=MSISDN, language="fr")))
        if i % 2 == 0:   # the happy path, then a repayment
            await step("DisbursementCompleted", told(on["DisbursementCompleted"],
                                                     DisbursementCompleted(
                loan_id=loan_id, saga_id=saga_id, client_id=client_id,
                amount=Decimal("1200.00"), msisdn=MSISDN, provider="simulator",
                provider_reference=f"r-{saga_id}", completed_at=datetime.now(UTC))))
            pid = f"pay-{uuid.uuid4().hex[:12]}"
            await step("RepaymentReceived", told(on_repayment_received, RepaymentReceived(
                loan_id=loan_id, payment_id=pid, amount=Decimal("312.00"),
                payer_msisdn=MSISDN, provider="simulator", external_ref=pid,
                received_at=datetime.now(UTC))))
        else:            # the payout fails: the credit is released
            await step("DisbursementFailed", told(on["DisbursementFailed"], DisbursementFailed(
                loan_id=loan_id, saga_id=saga_id, client_id=client_id,
                amount=Decimal("1200.00"), reason="wallet_closed")))
            await step("CreditReleased", told(on["CreditReleased"], CreditReleased(
                client_id=client_id, reservation_id=saga_id, saga_id=saga_id,
                loan_id=loan_id, amount=Decimal("1200.00"))))
    await pool.close()
    out: dict[str, dict[str, float]] = {}
    for name, rows in samples.items():
        if not rows:
            continue
        out[name] = {
            # the steady state: a statement's first use on a connection may add asyncpg's
            # type introspection (three more round trips, once per connection)
            "statements": float(statistics.mode(r[0] for r in rows)),
            "wall_us": statistics.median(r[1] for r in rows),
            "cpu_us": statistics.median(r[2] for r in rows),
            "runs": float(len(rows)),
        }
    return out


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loans_handlers",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=200,
                        help="loans taken through the saga (half paid out, half failed)")
    parser.add_argument("--show", action="store_true",
                        help="print each handler's statements (its second run)")
    args = parser.parse_args(argv)
    admin = os.environ.get("NORIA_ADMIN_DATABASE_URL",
                           "postgresql://noria_admin:noria_admin@127.0.0.1:55432/noria")
    schema, url = await create_schema(admin)
    try:
        result = await run(url, schema, args.loans, args.show)
    finally:
        await drop_schema(admin, schema)
    print(f"{'handler':<24}{'statements':>11}{'wall µs':>10}{'CPU µs':>9}{'runs':>6}")
    for name, r in result.items():
        print(f"{name:<24}{r['statements']:>11.0f}{r['wall_us']:>10.0f}{r['cpu_us']:>9.0f}"
              f"{r['runs']:>6.0f}")


if __name__ == "__main__":
    asyncio.run(main())
