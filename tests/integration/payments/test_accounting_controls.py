"""Provisions follow the arrears buckets through delinquency and cure, and a write-off
consumes the allowance; a manual journal needs a second operator; a closed period takes
no posting (409, nothing written, PostgreSQL refusing too); the year-end close moves the
result to retained earnings; loans' InterestAccrued posts the day once; a run dated
after today is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.payments.repository import gl as gl_repo
from shared.clock import today
from shared.contracts.loans import AccruedLoan, InterestAccrued
from shared.envelope import envelope_for
from shared.kafka import make_producer
from tests.infra import Infra
from tests.integration.payments.accounting_rig import APPROVE, READ, Books, books
from tests.integration.payments.facts import consumed_all
from tests.kafka_facts import until

D = Decimal


@pytest.fixture(scope="module")
async def b(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Books]:
    async with books(infra, isolated_schema) as rig:
        yield rig


async def allowance(b: Books, loan: str) -> D:
    async with b.pool.acquire() as conn:
        return (await gl_repo.balances(conn, [f"allowance:{loan}"])).get(f"allowance:{loan}",
                                                                        D("0.00"))


async def test_provision_moves_with_the_arrears_buckets_and_a_write_off_consumes_it(
        b: Books) -> None:
    await b.loan("P1", "b-rabat")
    await b.fund("50000.00", dt.date(2025, 6, 1))
    await b.disburse("P1", "10000.00", dt.date(2025, 6, 1))
    # days in arrears -> bucket rate (default rates) -> required on 10000.00
    script = [(2, 0, "0.00"), (3, 12, "500.00"), (4, 45, "2500.00"), (5, 75, "5000.00"),
              (6, 20, "500.00"),   # cured back into 1-30
              (7, 0, "0.00"),      # fully cured: everything written back
              (8, 100, "7500.00"), (9, 200, "10000.00")]
    expense = D("0.00")
    previous = D("0.00")
    for n, days, required in script:
        d = dt.date(2025, 6, n)
        run = await b.call("POST", f"/v1/provisions/{d}",
                           json={"loans": [{"loan_id": "P1", "days_in_arrears": days}]})
        assert D(run["required"]) == D(required)
        assert await allowance(b, "P1") == D(required)
        expense += D(required) - previous
        previous = D(required)
        # running it again for the date changes nothing
        again = await b.call("POST", f"/v1/provisions/{d}",
                             json={"loans": [{"loan_id": "P1", "days_in_arrears": days}]})
        assert again["created"] is False and await allowance(b, "P1") == D(required)
    income = await b.statement("income", office_id="b-rabat",
                               **{"from": "2025-06-01", "to": "2025-06-30"})
    assert sum(D(r["balance"]) for r in income["expenses"] if r["code"] == "6700") == expense
    # restructured loans take the restructured rate when it is higher
    await b.loan("P2", "b-rabat")
    await b.disburse("P2", "1000.00", dt.date(2025, 6, 1))
    run = await b.call("POST", "/v1/provisions/2025-06-10", json={"loans": [
        {"loan_id": "P2", "days_in_arrears": 0, "restructured": True}]})
    assert await allowance(b, "P2") == D("250.00")
    # an earlier date than the last run is refused
    await b.call("POST", "/v1/provisions/2025-06-01", expect=409, json={"loans": []})
    # the write-off consumes the whole allowance: no write-off expense beyond it
    await b.write_off("P1", "10000.00", dt.date(2025, 6, 11))
    assert await allowance(b, "P1") == D("0.00")
    lines = await b.call("GET", "/v1/gl-accounts/6750/lines", READ,
                         params={"office_id": "b-rabat", "to": "2025-06-30"})
    assert lines["lines"] == []
    assert run["created"] is True


async def test_a_manual_journal_needs_a_second_operator(b: Books) -> None:
    body = {"business_date": "2025-07-02", "reason": "office rent for July",
            "attachments": ["dms://invoices/2025-07-rent.pdf"],
            "lines": [{"gl_code": "6750", "side": "debit", "amount": "1200.00"},
                      {"gl_code": "1140", "side": "credit", "amount": "1200.00"}]}
    before = await b.counts()
    journal = await b.call("POST", "/v1/journals", json=body)
    assert journal["status"] == "proposed" and await b.counts() == before
    # the maker cannot approve it, even with the approve scope: refused, nothing written
    refused = await b.call("POST", f"/v1/journals/{journal['id']}/approve", APPROVE,
                           sub="op-maker", expect=403)
    assert refused["status"] == 403
    assert await b.counts() == before
    # unbalanced or on a header account: 422 naming the field
    bad = await b.call("POST", "/v1/journals", expect=422, json={
        **body, "lines": [{**body["lines"][0], "amount": "1000.00"}, body["lines"][1]]})
    assert "lines" in str(bad)
    bad = await b.call("POST", "/v1/journals", expect=422, json={
        **body, "lines": [{**body["lines"][0], "gl_code": "6"}, body["lines"][1]]})
    assert "lines[0].gl_code" in str(bad)
    approved = await b.call("POST", f"/v1/journals/{journal['id']}/approve", APPROVE,
                            sub="op-checker")
    assert approved["status"] == "approved" and approved["decided_by"] == "op-checker"
    assert (await b.counts())[0] == before[0] + 1
    await b.call("POST", f"/v1/journals/{journal['id']}/approve", APPROVE, sub="op-third",
                 expect=409)


async def test_a_closed_period_takes_no_posting(b: Books) -> None:
    await b.call("POST", "/v1/periods/2025-08/close", APPROVE, sub="op-checker")
    assert (await b.call("POST", "/v1/periods/2025-08/close", APPROVE,
                         sub="op-checker"))["created"] is False
    before = await b.counts()
    # a journal dated in it: 409, nothing written
    problem = await b.call("POST", "/v1/journals", expect=409, json={
        "business_date": "2025-08-20", "reason": "late correction",
        "lines": [{"gl_code": "6750", "side": "debit", "amount": "10.00"},
                  {"gl_code": "1140", "side": "credit", "amount": "10.00"}]})
    assert problem["status"] == 409
    # accruals or provisions dated in it: 409
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "accrual"})
    await b.loan("P3", "b-rabat")
    await b.disburse("P3", "500.00", dt.date(2025, 7, 1))
    before = await b.counts()
    await b.call("POST", "/v1/accruals/2025-08-21", expect=409, json={"loans": [
        {"loan_id": "P3", "interest": "1.00", "days_in_arrears": 0}]})
    assert await b.counts() == before
    # PostgreSQL refuses it too, whoever writes
    async with b.pool.acquire() as conn:
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError):
            await conn.execute(
                "INSERT INTO journal_entries (id, transfer_id, request_hash, kind, amount,"
                " business_date) VALUES (gen_random_uuid(), 'sneak', 'x', 'manual', 1,"
                " '2025-08-05')")
    assert await b.counts() == before
    # the correction goes into the open period
    await b.call("POST", "/v1/accruals/2025-09-01", json={"loans": [
        {"loan_id": "P3", "interest": "1.00", "days_in_arrears": 0}]})
    assert (await b.counts())[0] == before[0] + 1
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "cash"})


async def test_interest_accrued_from_loans_posts_the_day_once(b: Books) -> None:
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "accrual"})
    await b.loan("K1", "b-fes")
    await b.disburse("K1", "2000.00", dt.date(2025, 10, 1))
    msg = InterestAccrued(business_date=dt.date(2025, 10, 2), loans=[
        AccruedLoan(loan_id="K1", interest=D("0.55"), days_in_arrears=0, office_id="b-fes")])
    producer = make_producer(b.settings.kafka_bootstrap, client_id="acc-test")
    await producer.start()
    try:
        env = envelope_for(msg, aggregate_id="2025-10-02")
        for _ in range(2):  # delivered twice: posted once
            await producer.send_and_wait(b.settings.topic(msg.topic), env.to_bytes(),
                                         key=b"2025-10-02", headers=[("type", b"InterestAccrued")])
    finally:
        await producer.stop()
    await consumed_all(b.settings)  # both deliveries read
    await until(lambda: b.accruals_posted(dt.date(2025, 10, 2)), "the batch posted")
    async with b.pool.acquire() as conn:
        assert (await gl_repo.balances(conn, ["interest_receivable:K1"]))[
            "interest_receivable:K1"] == D("0.55")
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "cash"})


async def test_year_end_close_moves_the_result_to_retained_earnings(b: Books) -> None:
    before = await b.statement("balance-sheet", as_of="2025-12-31")
    result = D(before["unclosed_result"])
    out = await b.call("POST", "/v1/years/2025/close", APPROVE, sub="op-checker")
    assert D(out["net_income"]) == result
    after = await b.statement("balance-sheet", as_of="2025-12-31")
    assert D(after["unclosed_result"]) == D("0.00") and after["balanced"]
    retained = sum(D(r["balance"]) for r in after["equity"] if r["code"] == "5800")
    assert retained == result
    # the year's income statement still shows the year's result
    year = await b.statement("income", **{"from": "2025-01-01", "to": "2025-12-31"})
    assert D(year["net_income"]) == result
    # the year is closed
    await b.call("POST", "/v1/accruals/2025-12-15", expect=409, json={"loans": []})
    trial = await b.statement("trial-balance", as_of="2025-12-31")
    assert trial["balanced"]


async def test_a_run_dated_after_today_is_refused_and_the_nights_stay_free(b: Books) -> None:
    """A mistyped year (a run for a day that has not come) would otherwise hold every
    real night's provisions and accruals, which only go forward in time, until then."""
    ahead = today() + dt.timedelta(days=1)
    far = dt.date(3885, 12, 7)
    async with b.pool.acquire() as conn:
        provisions_before = await conn.fetchval("SELECT max(business_date) FROM provision_runs")
        accruals_before = await conn.fetchval("SELECT max(business_date) FROM accrual_runs")
    for kind, day in (("provisions", ahead), ("provisions", far), ("accruals", ahead),
                      ("accruals", far)):
        problem = await b.call("POST", f"/v1/{kind}/{day}", expect=422, json={"loans": []})
        assert [e["field"] for e in problem["errors"]] == ["day"], problem
        assert str(day) in problem["detail"], problem
    async with b.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT max(business_date) FROM provision_runs") == provisions_before
        assert await conn.fetchval(
            "SELECT max(business_date) FROM accrual_runs") == accruals_before
    # today's business day is still taken
    run = await b.call("POST", f"/v1/provisions/{today()}", json={"loans": []})
    assert run["business_date"] == str(today())
