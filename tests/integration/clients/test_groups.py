"""Solidarity groups: 3 to 10 verified members, a leader, one active group each."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.clients.conftest import Service, new_partner, token

pytestmark = pytest.mark.integration


async def test_form_read_and_dissolve_a_group(svc: Service) -> None:
    partner = new_partner()
    headers = token("partner", partner=partner)
    members = [await svc.verified_client(partner) for _ in range(4)]
    ids = [m["id"] for m in members]
    resp = await svc.http.post("/v1/groups", headers=headers, json={
        "name": "Cooperative Argan Tamri", "leader_id": ids[1], "member_ids": ids})
    assert resp.status_code == 201, resp.text
    group = resp.json()
    assert (group["leader_id"], group["status"], sorted(group["member_ids"])) == (
        ids[1], "active", sorted(ids))
    [env] = await svc.events.of(group["id"], "GroupFormed")
    assert env.payload["leader_id"] == ids[1]
    assert sorted(env.payload["member_ids"]) == sorted(ids)
    assert env.payload["partner_id"] == partner

    got = await svc.http.get(f"/v1/groups/{group['id']}", headers=headers)
    assert got.status_code == 200 and got.json()["name"] == "Cooperative Argan Tamri"

    # A member of an active group cannot join another one.
    extra = [await svc.verified_client(partner) for _ in range(2)]
    clash = await svc.http.post("/v1/groups", headers=headers, json={
        "name": "second", "leader_id": extra[0]["id"],
        "member_ids": [extra[0]["id"], extra[1]["id"], ids[0]]})
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "member_ids.2"
    assert clash.json()["existing_group_id"] == group["id"]

    dissolved = await svc.http.post(f"/v1/groups/{group['id']}/dissolve",
                                    json={"reason": "members moved away"}, headers=headers)
    assert dissolved.status_code == 200 and dissolved.json()["status"] == "dissolved"
    await svc.events.of(group["id"], "GroupDissolved")
    # Once the group is dissolved, its members are free again.
    again = await svc.http.post("/v1/groups", headers=headers, json={
        "name": "second", "leader_id": extra[0]["id"],
        "member_ids": [extra[0]["id"], extra[1]["id"], ids[0]]})
    assert again.status_code == 201, again.text


async def test_bad_groups_are_refused_naming_the_field_and_write_nothing(svc: Service) -> None:
    partner = new_partner()
    headers = token("partner", partner=partner)
    verified = [await svc.verified_client(partner) for _ in range(3)]
    pending = await svc.register(headers)
    ids = [m["id"] for m in verified]
    cases = [
        ({"name": "g", "leader_id": ids[0], "member_ids": ids[:2]}, "member_ids"),
        ({"name": "g", "leader_id": ids[0], "member_ids": [*ids[:2], pending["id"]]},
         "member_ids.2"),
        ({"name": "g", "leader_id": pending["id"], "member_ids": ids}, "leader_id"),
        ({"name": "g", "leader_id": ids[0], "member_ids": [*ids, "no-such-client"]},
         "member_ids.3"),
        ({"name": "  ", "leader_id": ids[0], "member_ids": ids}, "name"),
    ]
    for body, field in cases:
        resp = await svc.http.post("/v1/groups", headers=headers, json=body)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["errors"][0]["field"] == field
    too_many = [*ids, *[(await svc.verified_client(partner))["id"] for _ in range(8)]]
    resp = await svc.http.post("/v1/groups", headers=headers, json={
        "name": "g", "leader_id": ids[0], "member_ids": too_many})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "member_ids"
    rows = await svc.rows("SELECT group_id FROM group_members WHERE client_id = ANY($1::text[])",
                          too_many)
    assert rows == []


async def test_two_groups_racing_for_one_client_form_only_one(svc: Service) -> None:
    partner = new_partner()
    headers = token("partner", partner=partner)
    shared_member = (await svc.verified_client(partner))["id"]
    others = [(await svc.verified_client(partner))["id"] for _ in range(4)]

    async def form(pair: list[str]) -> int:
        resp = await svc.http.post("/v1/groups", headers=headers, json={
            "name": "race", "leader_id": shared_member, "member_ids": [shared_member, *pair]})
        return resp.status_code

    codes = await asyncio.gather(form(others[:2]), form(others[2:]))
    assert sorted(codes) == [201, 409]
    rows = await svc.rows("SELECT group_id FROM group_members WHERE client_id = $1 AND active",
                          shared_member)
    assert len(rows) == 1
