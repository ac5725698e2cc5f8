"""Issue 15 end to end: a group with a live group loan keeps its members.

A group of four is disbursed through the public APIs (one saga); once clients has heard
from loans that the group loan is live (``live_group_loan_ids`` on the group), removing a
member or dissolving the group answers 409 problem+json naming the live group loan, and
nothing changes.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.bank import Bank, eventually
from tests.e2e.test_groups_and_offices import disbursed_group, form_group, weekly_product

pytestmark = pytest.mark.e2e


async def test_a_member_of_a_group_with_a_live_loan_cannot_be_removed(bank: Bank) -> None:
    partner = f"partner-{uuid.uuid4().hex[:8]}"
    members = [await bank.onboard(partner=partner) for _ in range(4)]
    group = await form_group(bank, members)
    product = await weekly_product(bank)
    active = await disbursed_group(bank, group["id"], product,
                                   [(who, "1000.00") for who in members])

    async def live() -> dict[str, Any] | None:
        now: dict[str, Any] = await bank.call("GET", "clients", f"/v1/groups/{group['id']}",
                                              headers=bank.maker)
        return now if now["live_group_loan_ids"] == [active["id"]] else None

    await eventually(live, what="clients knows the group loan is live")

    leaver = members[2].client_id
    resp = await bank.request("POST", "clients",
                              f"/v1/groups/{group['id']}/members/{leaver}/remove",
                              json={"reason": "moving to Casablanca"}, headers=bank.maker)
    assert resp.status_code == 409, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert (problem["reason"], problem["group_loan_id"]) == ("live_group_loan", active["id"])
    assert problem["errors"][0]["field"] == "status"

    dissolve = await bank.request("POST", "clients", f"/v1/groups/{group['id']}/dissolve",
                                  json={"reason": "members moved away"}, headers=bank.maker)
    assert dissolve.status_code == 409, dissolve.text
    assert dissolve.json()["reason"] == "live_group_loan"

    after: dict[str, Any] = await bank.call("GET", "clients", f"/v1/groups/{group['id']}",
                                            headers=bank.maker)
    assert after["status"] == "active"
    assert sorted(after["member_ids"]) == sorted(m.client_id for m in members)
