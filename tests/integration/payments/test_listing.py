"""GET /v1/payments: the day's payments, partner-scoped, paged by keyset, with totals."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

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


async def day_of(rig: Rig, payment_id: str) -> str:
    resp = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    return str(resp.json()["received_at"])[:10]


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
        assert page["timezone"] == "UTC" and page["date"] == day
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
    day = item["at"][:10]
    failed = await rig.api.get("/v1/payments", headers=headers,
                               params={"date": day, "kind": "payout", "status": "failed"})
    assert failed.json()["items"] == []
    assert failed.json()["totals"]["payout"] == {"count": 0, "amount": "0.00"}
    # the operator's view of the day includes it; a partner's collection view does not
    ops, _ = await all_pages(rig, rig.auth(), date=day, kind="payout", status="completed",
                             limit=500)
    assert cmd.saga_id in {i["saga_id"] for i in ops}
    assert Decimal(_[0]["totals"]["payout"]["amount"]) >= Decimal("1234.56")


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
