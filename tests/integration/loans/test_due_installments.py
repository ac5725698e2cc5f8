"""GET /v1/installments/due: what is due on a date, per partner, paginated."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from shared.clock import today as business_today
from tests.infra import Infra
from tests.integration.loans.harness import Loans, running_loans, token

pytestmark = pytest.mark.integration

D0 = date(2026, 1, 5)   # disbursed: 312.00 due 5 Feb, 5 Mar, 5 Apr, 5 May (flat 12 %)


async def active_loan_of(svc: Loans, product_id: str, partner_id: str,
                         disbursed_on: date) -> dict[str, Any]:
    """A loan of another partner taken through the saga (the harness uses its own partner)."""
    client_id = await svc.register_client(partner_id=partner_id)
    resp = await svc.client.post("/v1/loans", headers=token("partner", "agent-9", partner_id),
                                 json={"client_id": client_id, "product_id": product_id,
                                       "principal": "1200.00", "term": 4})
    assert resp.status_code == 201, resp.text
    loan_id = resp.json()["id"]
    saga_id = await svc.approve(loan_id)
    await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
    await svc.reserve(saga_id, loan_id, client_id)
    await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)
    await svc.complete(saga_id, loan_id, client_id, "1200.00", disbursed_on)
    return await svc.wait_status(loan_id, "active")


async def due(svc: Loans, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    """The installments due on the date itself (``scope=on_date``, paid or not)."""
    params.setdefault("scope", "on_date")
    resp = await svc.client.get("/v1/installments/due", headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_due_on_a_date_with_partial_payment_and_partner_scoping(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        unpaid = await svc.active_loan(product, disbursed_on=D0)
        partly = await svc.active_loan(product, disbursed_on=D0)
        settled = await svc.active_loan(product, disbursed_on=D0)
        later = await svc.active_loan(product, disbursed_on=date(2026, 1, 10))  # due 10 Feb
        other_partner = f"partner_{uuid.uuid4().hex[:6]}"
        foreign = await active_loan_of(svc, product, other_partner, D0)
        for loan, amount in ((partly, "100.00"), (settled, "312.00")):
            pid = await svc.pay(loan["id"], amount, on=date(2026, 2, 1))
            await svc.bus.wait_for("RepaymentApplied", payment_id=pid)

        mine = await due(svc, svc.partner, date="2026-02-05")
        assert mine["date"] == "2026-02-05"
        rows = {r["loan_id"]: r for r in mine["items"]}
        assert set(rows) == {unpaid["id"], partly["id"], settled["id"]}   # not foreign, not later
        assert {k: (v["status"], v["total"], v["paid"], v["amount_due"]) for k, v in rows.items()
                } == {unpaid["id"]: ("due", "312.00", "0.00", "312.00"),
                      partly["id"]: ("partly_paid", "312.00", "100.00", "212.00"),
                      settled["id"]: ("paid", "312.00", "312.00", "0.00")}
        first = rows[partly["id"]]
        assert (first["client_id"], first["partner_id"], first["installment"],
                first["due_date"]) == (partly["client_id"], svc.partner_id, 1, "2026-02-05")
        assert mine["totals"] == {
            "count": 3, "amount_due": "524.00", "paid": "412.00", "total": "936.00",
            "by_status": {"due": 1, "partly_paid": 1, "paid": 1}}
        assert mine["next_cursor"] is None

        # the other partner sees only its own loan; operators see every partner's
        theirs = await due(svc, token("partner", "agent-9", other_partner), date="2026-02-05")
        assert [r["loan_id"] for r in theirs["items"]] == [foreign["id"]]
        everyone = await due(svc, svc.operator, date="2026-02-05")
        assert {r["loan_id"] for r in everyone["items"]} == set(rows) | {foreign["id"]}
        assert everyone["totals"]["amount_due"] == "836.00"
        assert [r["loan_id"] for r in (await due(svc, svc.operator, date="2026-02-10"))["items"]
                ] == [later["id"]]

        # a loan that is no longer active is not due (its installments were written off)
        async with svc.pool.acquire() as conn:
            await conn.execute("UPDATE loans SET status = 'written_off' WHERE id = $1",
                               unpaid["id"])
        assert {r["loan_id"] for r in (await due(svc, svc.partner, date="2026-02-05"))["items"]
                } == {partly["id"], settled["id"]}

        # money is decimal strings everywhere
        assert all(isinstance(r[k], str) for r in everyone["items"]
                   for k in ("total", "paid", "amount_due"))


async def test_pages_return_every_row_once_and_today_is_the_default(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=D0)
        day = date(2026, 2, 5)
        # 22 more active loans due that day, seeded in SQL (the saga is tested elsewhere)
        async with svc.pool.acquire() as conn:
            seeded = [f"loan_seed_{n:02d}_{uuid.uuid4().hex[:6]}" for n in range(22)]
            for n, lid in enumerate(seeded):
                await conn.execute(
                    "INSERT INTO loans (id, client_id, partner_id, product_id, product_version,"
                    " principal, term, status, submitted_by) VALUES ($1, $2, $3, $4, 1,"
                    " 1000.00, 1, 'active', 'seed')", lid, f"cli_seed_{n}", svc.partner_id,
                    product)
                await conn.execute(
                    "INSERT INTO installments (loan_id, number, due_date, principal_due,"
                    " interest_due, fees_due, principal_paid) VALUES ($1, 1, $2, 1000.00,"
                    " 10.00, 0, $3)", lid, day, n * 10)

        seen: list[tuple[str, int]] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"date": day.isoformat(), "limit": 5}
            if cursor is not None:
                params["cursor"] = cursor
            page = await due(svc, svc.partner, **params)
            pages += 1
            assert len(page["items"]) <= 5
            assert page["totals"]["count"] == 23   # totals cover every page
            seen += [(r["loan_id"], r["installment"]) for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 5
        assert len(seen) == len(set(seen)) == 23
        assert {lid for lid, _ in seen} == set(seeded) | {loan["id"]}
        everything = await due(svc, svc.partner, date=day.isoformat(), limit=500)
        assert [(r["loan_id"], r["installment"]) for r in everything["items"]] == seen

        # no date: the business date today (Africa/Casablanca, not UTC)
        today = business_today()
        async with svc.pool.acquire() as conn:
            await conn.execute("UPDATE installments SET due_date = $2 WHERE loan_id = $1"
                               " AND number = 2", loan["id"], today)
        now = await due(svc, svc.partner)
        assert now["date"] == today.isoformat()
        assert [(r["loan_id"], r["installment"]) for r in now["items"]] == [(loan["id"], 2)]


@pytest.mark.parametrize(("params", "field"), [
    ({"date": "2026-02-30"}, "date"), ({"date": "tomorrow"}, "date"),
    ({"date": "20260205"}, "date"), ({"date": "2026-02-05", "cursor": "not-a-cursor"}, "cursor"),
    ({"date": "2026-02-05", "limit": "501"}, "limit"),
    ({"date": "2026-02-05", "limit": "0"}, "limit"),
])
async def test_bad_parameters_are_a_problem_naming_the_field(
        infra: Infra, isolated_schema, params: dict[str, str], field: str) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        resp = await svc.client.get("/v1/installments/due", headers=svc.operator, params=params)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in resp.json()["errors"]] == [field]


async def test_a_token_is_needed(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        resp = await svc.client.get("/v1/installments/due", params={"date": "2026-02-05"})
        assert resp.status_code == 401
        wallet = token("wallet", "w-1", svc.partner_id)
        resp = await svc.client.get("/v1/installments/due", headers=wallet,
                                    params={"date": "2026-02-05"})
        assert resp.status_code == 403
