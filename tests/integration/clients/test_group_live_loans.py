"""A group with a live group loan keeps its members: clients learns which group loans are
live from loans' events (``GroupLoanActive`` … ``GroupLoanClosed`` or
``GroupLoanDisbursementFailed``, consumed through the inbox) and refuses, with 409, to
dissolve the group or remove a member while one is; once the loans have ended it allows
both. Redelivered and replayed facts take effect once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.contracts.loans import (
    GroupArrearsCured,
    GroupLoanActive,
    GroupLoanClosed,
    GroupLoanDisbursementFailed,
)
from shared.envelope import Envelope
from tests.integration.clients.conftest import PREFIX, Service, new_partner, token
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


async def formed(svc: Service, members: int = 4) -> tuple[dict[str, Any], dict[str, str]]:
    partner = new_partner()
    headers = token("partner", partner=partner)
    ids = [(await svc.verified_client(partner))["id"] for _ in range(members)]
    resp = await svc.http.post("/v1/groups", headers=headers, json={
        "name": "Tifawin", "leader_id": ids[0], "member_ids": ids})
    assert resp.status_code == 201, resp.text
    group: dict[str, Any] = resp.json()
    return group, headers


def not_leading(group: dict[str, Any]) -> list[str]:
    """The members other than the leader."""
    return [m for m in group["member_ids"] if m != group["leader_id"]]


def active(group: dict[str, Any], group_loan_id: str) -> GroupLoanActive:
    members = group["member_ids"]
    return GroupLoanActive(
        group_id=group["id"], group_loan_id=group_loan_id, member_ids=members,
        loan_ids=[f"{group_loan_id}-{i}" for i in range(len(members))],
        saga_id=f"saga-{group_loan_id}", total_principal=Decimal("8000.00"))


def closed(group: dict[str, Any], group_loan_id: str) -> GroupLoanClosed:
    return GroupLoanClosed(group_id=group["id"], group_loan_id=group_loan_id,
                           member_ids=group["member_ids"], within_tolerance=True,
                           max_days_in_arrears=0, next_cycle=2)


async def handled(svc: Service, *envs: Envelope) -> None:
    """Barrier: every one of these messages went through the inbox."""
    ids = [e.event_id for e in envs]

    async def done() -> bool:
        rows = await svc.rows("SELECT event_id FROM inbox WHERE event_id = ANY($1)", ids)
        return len(rows) == len(ids)
    await until(done, f"{len(ids)} group loan event(s) handled", timeout_s=60)


async def remove(svc: Service, headers: dict[str, str], group: dict[str, Any],
                 client_id: str) -> httpx.Response:
    return await svc.http.post(f"/v1/groups/{group['id']}/members/{client_id}/remove",
                               json={"reason": "moved to Agadir"}, headers=headers)


async def dissolve(svc: Service, headers: dict[str, str], group: dict[str, Any]
                   ) -> httpx.Response:
    return await svc.http.post(f"/v1/groups/{group['id']}/dissolve",
                               json={"reason": "the cooperative closed"}, headers=headers)


def refused_as_live(resp: httpx.Response, group_loan_id: str) -> None:
    assert resp.status_code == 409, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["reason"] == "live_group_loan"
    assert body["group_loan_id"] == group_loan_id
    assert body["errors"][0]["field"] == "status"
    assert group_loan_id in body["detail"]


async def test_a_live_group_loan_keeps_the_members_until_it_closes(svc: Service) -> None:
    group, headers = await formed(svc)
    leaver = not_leading(group)[1]
    glid = f"gl-{uuid.uuid4().hex[:8]}"
    await handled(svc, await svc.send(active(group, glid), key=group["id"]))

    refused_as_live(await remove(svc, headers, group, leaver), glid)
    refused_as_live(await dissolve(svc, headers, group), glid)
    # nothing changed: the same members, still active, nothing published
    now = (await svc.http.get(f"/v1/groups/{group['id']}", headers=headers)).json()
    assert (now["status"], sorted(now["member_ids"])) == ("active", sorted(group["member_ids"]))
    assert now["live_group_loan_ids"] == [glid]
    assert svc.events.now(group["id"], "GroupMemberRemoved") == []
    assert svc.events.now(group["id"], "GroupDissolved") == []

    await handled(svc, await svc.send(closed(group, glid), key=group["id"]))
    resp = await remove(svc, headers, group, leaver)
    assert resp.status_code == 200, resp.text
    assert resp.json()["live_group_loan_ids"] == []
    assert sorted(resp.json()["member_ids"]) == sorted(
        m for m in group["member_ids"] if m != leaver)
    [env] = await svc.events.of(group["id"], "GroupMemberRemoved")
    assert env.payload["client_id"] == leaver
    assert leaver not in env.payload["member_ids"]
    # the member is free to join another group
    again = await svc.http.post("/v1/groups", headers=headers, json={
        "name": "Amal", "leader_id": leaver, "member_ids": [
            leaver, *[(await svc.verified_client(resp.json()["partner_id"]))["id"]
                      for _ in range(2)]]})
    assert again.status_code == 201, again.text
    gone = await dissolve(svc, headers, group)
    assert gone.status_code == 200 and gone.json()["status"] == "dissolved"


async def test_a_redelivered_or_replayed_start_does_not_make_an_ended_loan_live_again(
        svc: Service) -> None:
    group, headers = await formed(svc)
    glid = f"gl-{uuid.uuid4().hex[:8]}"
    start = await svc.send(active(group, glid), key=group["id"])
    again = await svc.send(active(group, glid), key=group["id"])   # a second copy, live
    end = await svc.send(closed(group, glid), key=group["id"])
    await handled(svc, start, again, end)

    # the start redelivered (same message: the inbox drops it), then replayed from the
    # dead letters (a new message), after the end; a later fact of the group as barrier
    await svc.producer.send_and_wait(
        f"{PREFIX}loans.events", value=start.to_bytes(), key=group["id"].encode(),
        headers=[("type", b"GroupLoanActive")])
    replayed = await svc.send(active(group, glid), key=group["id"])
    barrier = await svc.send(GroupArrearsCured(
        group_id=group["id"], group_loan_id=glid, member_ids=group["member_ids"],
        business_date=dt.date(2026, 3, 10)), key=group["id"])
    await handled(svc, replayed, barrier)

    rows = await svc.rows("SELECT live, ended_by FROM group_loans_live WHERE group_id = $1",
                          group["id"])
    assert [(r["live"], r["ended_by"]) for r in rows] == [(False, "GroupLoanClosed")]
    assert len(await svc.rows("SELECT 1 FROM inbox WHERE event_id = $1", start.event_id)) == 1
    resp = await remove(svc, headers, group, not_leading(group)[2])
    assert resp.status_code == 200, resp.text


async def test_a_failed_group_disbursement_leaves_the_group_free(svc: Service) -> None:
    group, headers = await formed(svc)
    glid = f"gl-{uuid.uuid4().hex[:8]}"
    await handled(svc, await svc.send(GroupLoanDisbursementFailed(
        group_id=group["id"], group_loan_id=glid, member_ids=group["member_ids"],
        saga_id=f"saga-{glid}", reason="payout failed for a member"), key=group["id"]))
    resp = await remove(svc, headers, group, not_leading(group)[0])
    assert resp.status_code == 200, resp.text


async def test_removing_a_member_is_refused_naming_the_field(svc: Service) -> None:
    group, headers = await formed(svc, members=3)
    leader, member = group["leader_id"], not_leading(group)[0]
    cases = [
        (remove(svc, headers, group, leader), 409, "client_id"),         # the leader
        (remove(svc, headers, group, member), 409, "client_id"),         # below 3 members
        (remove(svc, headers, group, "no-such-client"), 404, "client_id"),
    ]
    for call, status, field in cases:
        resp = await call
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["errors"][0]["field"] == field
    blank = await svc.http.post(f"/v1/groups/{group['id']}/members/{member}/remove",
                                json={"reason": "  "}, headers=headers)
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "reason"
    # another partner's token does not see the group at all
    other = token("partner", partner=new_partner())
    assert (await remove(svc, other, group, member)).status_code == 404
    now = (await svc.http.get(f"/v1/groups/{group['id']}", headers=headers)).json()
    assert sorted(now["member_ids"]) == sorted(group["member_ids"])
