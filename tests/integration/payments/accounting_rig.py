"""A payments service of its own for the accounting tests: a fresh schema (so a scripted
month's statements hold only its own postings, and closing a period touches no other
test), its own topic prefix and consumer group, no opening float, no simulator."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.payments.bootstrap import build_spec
from services.payments.domain import postings
from services.payments.domain.ledger import Entry
from services.payments.handlers import accounting
from services.payments.repository import gl as gl_repo
from services.payments.repository import ledger as ledger_repo
from services.payments.settings import PaymentsSettings, ProviderConfig
from shared.app import create_app
from shared.contracts import clients, loans, payments
from shared.kafka import ensure_topics
from tests.identity import mint_token
from tests.infra import Infra, delete_topics
from tests.integration.payments.conftest import MIGRATIONS, PARTITIONS, free_port, serve

READ = ["ledger:read", "tenant:all"]
WRITE = ["ledger:read", "ledger:write", "tenant:all"]
APPROVE = ["ledger:read", "ledger:approve", "tenant:all"]
D = Decimal


@dataclasses.dataclass
class Books:
    api: httpx.AsyncClient
    pool: asyncpg.Pool
    settings: PaymentsSettings

    def auth(self, scopes: list[str], sub: str = "op-maker") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(sub=sub, scopes=scopes)}"}

    async def post(self, entry: Entry, day: dt.date) -> None:
        """Post an entry the way the handlers do, dated ``day``."""
        async with self.pool.acquire() as conn, conn.transaction():
            await ledger_repo.post(conn, dataclasses.replace(entry, business_date=day))

    async def loan(self, loan_id: str, office_id: str, product_id: str = "p-micro") -> None:
        async with self.pool.acquire() as conn:
            await gl_repo.remember_loans(conn, [loan_id], [product_id], [office_id])

    async def fund(self, amount: str, day: dt.date) -> None:
        await self.post(postings.funding("sim", D(amount), f"funding:sim:{day}"), day)

    async def disburse(self, loan_id: str, amount: str, day: dt.date) -> None:
        await self.post(postings.disbursement(f"saga-{loan_id}", loan_id, "sim", D(amount)),
                        day)

    async def repay(self, loan_id: str, day: dt.date, **parts: str) -> str:
        """The money arrives (Dr settlement / Cr suspense), then loans' allocation is
        posted as payments' RepaymentApplied handler does."""
        payment_id = str(uuid.uuid4())
        amounts = {k: D(v) for k, v in parts.items()}
        total = sum(amounts.values(), D("0.00"))
        await self.post(postings.collection(payment_id, loan_id, "sim", total), day)
        async with self.pool.acquire() as conn, conn.transaction():
            entry = await accounting.repayment_entry(conn, payment_id, loan_id, total, amounts)
            await ledger_repo.post(conn, dataclasses.replace(entry, business_date=day))
        return payment_id

    async def write_off(self, loan_id: str, principal: str, day: dt.date) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            entry = await accounting.write_off_entry(conn, loan_id, D(principal))
            await ledger_repo.post(conn, dataclasses.replace(entry, business_date=day))

    async def call(self, method: str, path: str, scopes: list[str] | None = None,
                   sub: str = "op-maker", expect: int | tuple[int, ...] = (200, 201),
                   **kw: Any) -> Any:
        headers = self.auth(scopes or WRITE, sub)
        if method in ("POST", "PUT"):  # every accounting write takes an Idempotency-Key
            headers["Idempotency-Key"] = kw.pop("key", None) or str(uuid.uuid4())
        resp = await self.api.request(method, path, headers=headers, **kw)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in wanted, (resp.status_code, resp.text)
        return resp.json() if resp.headers.get("content-type", "").startswith(
            ("application/json", "application/problem+json")) else resp.text

    async def statement(self, kind: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", f"/v1/statements/{kind}", READ, params={k: str(v) for k, v in
                                                           params.items() if v is not None})
        return result

    async def accruals_posted(self, day: dt.date) -> bool:
        """Every staged accrual batch up to ``day`` posted (accrued and provisioned),
        as the statements tell it."""
        head = await self.statement("trial-balance", as_of=day)
        return head["accruals_pending"] == []

    async def counts(self) -> tuple[int, int]:
        async with self.pool.acquire() as conn:
            entries = await conn.fetchval("SELECT count(*) FROM journal_entries")
            lines = await conn.fetchval("SELECT count(*) FROM journal_lines")
        return int(entries), int(lines)


@contextlib.asynccontextmanager
async def books(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Books]:
    iso = await isolated_schema("payments_acc", MIGRATIONS)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    port = free_port()
    settings = PaymentsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        providers={"sim": ProviderConfig(base_url="http://127.0.0.1:9",
                                         opening_float=D("0"))},
        callback_base_url=f"http://127.0.0.1:{port}", topic_prefix=prefix,
        reconciliation_enabled=False, consumer_retry_backoff_s=0.05)
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, loans.EVENTS, clients.EVENTS)],
        partitions=PARTITIONS)
    pool = await asyncpg.create_pool(iso.dsn, server_settings={"search_path": iso.schema})
    assert pool is not None
    try:
        async with serve(create_app(build_spec(settings)), port), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            yield Books(api, pool, settings)
    finally:
        await pool.close()
        await delete_topics(infra.kafka_bootstrap, prefix)
