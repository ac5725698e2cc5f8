"""Product terms read once per version and kept in process: never a stale version.

Activation takes its loan's product version's terms from an in-process cache; a
change of product is a new version, which the next application is priced with and
activated with, while a loan applied for under the old version keeps it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.loans.bootstrap import MIGRATIONS
from services.loans.domain.products import (
    Amortization,
    Frequency,
    InterestMethod,
    ProductTerms,
)
from services.loans.domain.terms_codec import terms_to_dict
from services.loans.repository import products as products_repo
from shared.db import create_pool
from tests.infra import Infra
from tests.integration.loans.harness import Loans, running_loans

pytestmark = pytest.mark.integration

D0 = date(2026, 1, 5)


async def disburse(svc: Loans, loan_id: str, client_id: str) -> dict[str, object]:
    """Take an applied loan through the saga; its LoanDisbursed payload."""
    saga_id = await svc.approve(loan_id)
    await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
    await svc.reserve(saga_id, loan_id, client_id)
    await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)
    await svc.complete(saga_id, loan_id, client_id, "1200.00", D0)
    return (await svc.bus.wait_for("LoanDisbursed", loan_id=loan_id))[0].payload


async def test_a_changed_product_is_not_served_stale_to_the_next_application(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()   # flat 12 %: 12.00 interest a month on 1200
        first_client = await svc.register_client()
        first = await svc.apply(first_client, product)
        first_out = await disburse(svc, first["id"], first_client)   # v1's terms now cached
        assert first_out["total_repayable"] == "1248.00"

        waiting_client = await svc.register_client()
        waiting = await svc.apply(waiting_client, product)   # applied for under v1

        resp = await svc.client.put(f"/v1/products/{product}", headers=svc.operator, json={
            "name": "Flat monthly", "interest_method": "flat", "frequency": "monthly",
            "annual_rate": "0.24", "min_principal": "500.00", "max_principal": "20000.00",
            "min_term": 2, "max_term": 24})
        assert resp.status_code == 200 and resp.json()["version"] == 2

        next_client = await svc.register_client()
        nxt = await svc.apply(next_client, product)
        assert nxt["product_version"] == 2
        assert [i["interest"] for i in nxt["schedule"]] == ["24.00"] * 4
        next_out = await disburse(svc, nxt["id"], next_client)
        assert next_out["total_repayable"] == "1296.00"
        await svc.wait_status(nxt["id"], "active")
        kept = (await svc.client.get(f"/v1/loans/{nxt['id']}/schedule",
                                     headers=svc.partner)).json()["installments"]
        assert [i["interest"] for i in kept] == ["24.00"] * 4

        # the loan applied for before the change keeps the version it was priced with
        waiting_out = await disburse(svc, waiting["id"], waiting_client)
        assert waiting_out["total_repayable"] == "1248.00"


def _terms(rate: str) -> ProductTerms:
    return ProductTerms(
        interest_method=InterestMethod.FLAT, amortization=Amortization.EQUAL_INSTALLMENTS,
        frequency=Frequency.MONTHLY, annual_rate=Decimal(rate), min_principal=Decimal(100),
        max_principal=Decimal(10_000), min_term=1, max_term=24)


async def test_cached_terms_are_told_apart_by_when_the_version_was_stored(
        infra: Infra, isolated_schema) -> None:
    """The same id and version stored again (another schema's product, or a product
    re-created) is read afresh, not taken from the cache."""
    schemas = [await isolated_schema("lt", MIGRATIONS), await isolated_schema("lt", MIGRATIONS)]
    product_id = "prd_shared_id"
    read = []
    for iso, rate in zip(schemas, ("0.12", "0.30"), strict=True):
        pool = await create_pool(iso.dsn, schema=iso.schema, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                stamp = await conn.fetchval(
                    "INSERT INTO products (id, version, name, currency, terms, created_by)"
                    " VALUES ($1, 1, 'p', 'MAD', $2, 'test') RETURNING created_at",
                    product_id, terms_to_dict(_terms(rate)))
                first = await products_repo.version_terms(conn, product_id, 1, stamp)
                again = await products_repo.version_terms(conn, product_id, 1, stamp)
                read.append((first, again))
        finally:
            await pool.close()
    (a1, a2), (b1, b2) = read
    assert a1 is not None and a1.annual_rate == Decimal("0.12") and a2 == a1
    assert b1 is not None and b1.annual_rate == Decimal("0.30") and b2 == b1
