"""GET /v1/payments: the day's payments, partner-scoped, paged by keyset, with totals; a day
is a local day in Africa/Casablanca."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from shared.clock import business_date
from tests.integration.payments.conftest import (
    Rig,
    disburse,
    new_id,
    new_msisdn,
    paid_at_provider,
)

pytestmark = pytest.mark.integration


async def repay(rig: Rig, partner: str, amount: str) -> str:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, amount)
    resp = await rig.api.post(
        "/v1/repayments", headers={**rig.auth("wallet", partner),
                                   "Idempotency-Key": str(uuid.uuid4())},
        json={"loan_id": loan, "amount": amount, "currency": "MAD",
              "payer_msisdn": msisdn, "external_ref": new_id("tx"),
              "provider_reference": reference})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["payment_id"])


def local_day(instant: str) -> str:
    """The local day (Africa/Casablanca) an ISO instant belongs to."""
    return business_date(dt.datetime.fromisoformat(instant)).isoformat()


async def day_of(rig: Rig, payment_id: str) -> str:
    resp = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    return local_day(str(resp.json()["received_at"]))


async def all_pages(rig: Rig, headers: dict[str, str], **params: Any
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await rig.api.get("/v1/payments", headers=headers, params=query)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        pages.append(page)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


async def test_a_partner_pages_through_its_own_collections_once_each(rig: Rig) -> None:
    mine, theirs = new_id("wallet"), new_id("wallet")
    amounts = ["10.00", "20.50", "30.00", "40.25", "50.00", "60.00", "70.10"]
    ids = [await repay(rig, mine, a) for a in amounts]
    other = await repay(rig, theirs, "99.00")
    day = await day_of(rig, ids[0])

    items, pages = await all_pages(rig, rig.auth("wallet", mine), date=day, limit=3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [i["id"] for i in items] == ids  # every row once, oldest first
    assert all(i["kind"] == "collection" and i["partner_id"] == mine for i in items)
    assert [i["amount"] for i in items] == amounts
    for page in pages:  # the totals cover the whole day, not the page
        assert page["timezone"] == "Africa/Casablanca" and page["date"] == day
        assert page["totals"]["collection"] == {
            "count": 7, "amount": str(sum(map(Decimal, amounts)))}
        assert page["totals"]["payout"] == {"count": 0, "amount": "0.00"}

    # another partner's payments are not listed to this one; the operator sees both
    assert other not in {i["id"] for i in items}
    seen, _ = await all_pages(rig, rig.auth(), date=day, kind="collection", limit=500)
    seen_ids = [i["id"] for i in seen]
    assert len(seen_ids) == len(set(seen_ids))
    assert set(ids) | {other} <= set(seen_ids)
    resp = await rig.api.get("/v1/payments", headers=rig.auth("partner", mine),
                             params={"date": "2001-01-01"})
    assert resp.json()["items"] == [] and resp.json()["totals"]["collection"]["count"] == 0


async def test_payouts_are_listed_by_kind_and_status_with_their_totals(rig: Rig) -> None:
    partner = new_id("partner")
    loan = new_id("loan")
    cmd = disburse(loan, new_msisdn(), "1234.56")
    cmd = cmd.model_copy(update={"partner_id": partner})
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    headers = rig.auth("partner", partner)
    resp = await rig.api.get("/v1/payments", headers=headers, params={"kind": "payout"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    [item] = body["items"]
    assert item["saga_id"] == cmd.saga_id and item["loan_id"] == loan
    assert item["status"] == "completed" and item["amount"] == "1234.56"
    assert body["totals"] == {"payout": {"count": 1, "amount": "1234.56"}}
    day = local_day(item["at"])
    failed = await rig.api.get("/v1/payments", headers=headers,
                               params={"date": day, "kind": "payout", "status": "failed"})
    assert failed.json()["items"] == []
    assert failed.json()["totals"]["payout"] == {"count": 0, "amount": "0.00"}
    # the operator's view of the day includes it; a partner's collection view does not
    ops, _ = await all_pages(rig, rig.auth(), date=day, kind="payout", status="completed",
                             limit=500)
    assert cmd.saga_id in {i["saga_id"] for i in ops}
    assert Decimal(_[0]["totals"]["payout"]["amount"]) >= Decimal("1234.56")


async def listed_days(rig: Rig, partner: str, *days: str, kind: str) -> dict[str, list[str]]:
    """The ids the partner sees listed on each of ``days``."""
    out: dict[str, list[str]] = {}
    for day in days:
        items, pages = await all_pages(rig, rig.auth("wallet", partner), date=day, kind=kind)
        assert all(p["timezone"] == "Africa/Casablanca" and p["date"] == day for p in pages)
        out[day] = [i["id"] for i in items]
    return out


async def move(rig: Rig, table: str, column: str, row_id: str, at: dt.datetime) -> None:
    """Date a row as if it had been made at ``at`` (the database stamps ``now()``)."""
    async with rig.pool.acquire() as conn:
        await conn.execute(f"UPDATE {table} SET {column} = $2 WHERE id = $1",
                           uuid.UUID(row_id), at)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


async def test_a_day_is_the_local_day_in_casablanca_not_the_utc_day(rig: Rig) -> None:
    """Issue 14: a payment made at 00:30 local time belongs to that local day. Morocco is at
    UTC+1 (tzdata: Africa/Casablanca, since 2018) except during Ramadan, when it is at
    UTC+0 (in 2025: from 03:00 local on 23 February to 02:00 local on 6 April). Dates in
    2025 keep these rows away from every other test's day; the partner is this test's."""
    partner = new_id("wallet")
    # winter, UTC+1:
    #   14 Jan 23:30 UTC = 15 Jan 00:30 local -> 15 Jan (the UTC day, 14 Jan, would be wrong)
    #   15 Jan 22:59 UTC = 15 Jan 23:59 local -> 15 Jan
    #   15 Jan 23:00 UTC = 16 Jan 00:00 local -> 16 Jan
    # Ramadan, UTC+0:
    #   10 Mar 23:30 UTC = 10 Mar 23:30 local -> 10 Mar (the local day is the UTC day)
    at = {"after_midnight": utc("2025-01-14T23:30:00"),
          "before_midnight": utc("2025-01-15T22:59:00"),
          "midnight": utc("2025-01-15T23:00:00"),
          "ramadan": utc("2025-03-10T23:30:00")}
    ids = {name: await repay(rig, partner, "12.00") for name in at}
    for name, instant in at.items():
        await move(rig, "payments", "received_at", ids[name], instant)
    listed = await listed_days(rig, partner, "2025-01-14", "2025-01-15", "2025-01-16",
                               "2025-03-10", "2025-03-11", kind="collection")
    assert listed == {
        "2025-01-14": [],
        "2025-01-15": [ids["after_midnight"], ids["before_midnight"]],
        "2025-01-16": [ids["midnight"]],
        "2025-03-10": [ids["ramadan"]],
        "2025-03-11": [],
    }, listed
    day = (await rig.api.get("/v1/payments", headers=rig.auth("wallet", partner),
                             params={"date": "2025-01-15", "kind": "collection"})).json()
    assert day["totals"]["collection"] == {"count": 2, "amount": "24.00"}

    # a payout belongs to the local day it was recorded, the same way
    loan = new_id("loan")
    cmd = disburse(loan, new_msisdn(), "55.00").model_copy(update={"partner_id": partner})
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    async with rig.pool.acquire() as conn:
        payout_id = str(await conn.fetchval("SELECT id FROM payouts WHERE saga_id = $1",
                                            cmd.saga_id))
    await move(rig, "payouts", "created_at", payout_id, at["after_midnight"])
    listed = await listed_days(rig, partner, "2025-01-14", "2025-01-15", kind="payout")
    assert listed == {"2025-01-14": [], "2025-01-15": [payout_id]}, listed


@pytest.mark.parametrize(("params", "field"), [
    ({"date": "2026-13-01"}, "date"),
    ({"date": "01/02/2026"}, "date"),
    ({"date": "2026-1-1"}, "date"),
    ({"kind": "repayment"}, "kind"),
    ({"kind": "payout", "status": "posted"}, "status"),
    ({"status": "lost"}, "status"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"limit": "501"}, "limit"),
    ({"limit": "0"}, "limit"),
])
async def test_bad_listing_input_is_a_problem_naming_the_field(
        rig: Rig, params: dict[str, str], field: str) -> None:
    resp = await rig.api.get("/v1/payments", headers=rig.auth(), params=params)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert field in {e.get("field") for e in resp.json()["errors"]}, resp.json()


async def test_listing_needs_a_token_with_payments_read(rig: Rig) -> None:
    assert (await rig.api.get("/v1/payments")).status_code == 401
