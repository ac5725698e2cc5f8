"""Search with cursor pagination, and partner tenancy on every route."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.clients.conftest import Service, client_body, new_partner, token

pytestmark = pytest.mark.integration


async def test_search_by_phone_national_id_and_name_with_cursor_pages(svc: Service) -> None:
    partner = new_partner()
    headers = token("partner", partner=partner)
    tag = uuid.uuid4().hex[:8]
    made = [await svc.register(headers, full_name=f"Zineb {tag} Number {i}") for i in range(5)]
    # Another partner's namesake never shows up.
    await svc.register(token("partner", partner=new_partner()), full_name=f"Zineb {tag} Other")

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"q": tag.upper(), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        resp = await svc.http.get("/v1/clients", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        pages.append([c["id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == [c["id"] for c in reversed(made)]  # newest first

    target = made[2]
    local = "0" + target["phone"][4:]
    by_phone = await svc.http.get("/v1/clients", params={"phone": local}, headers=headers)
    assert [c["id"] for c in by_phone.json()["items"]] == [target["id"]]
    by_cin = await svc.http.get("/v1/clients",
                                params={"national_id": target["national_id"].lower()},
                                headers=headers)
    assert [c["id"] for c in by_cin.json()["items"]] == [target["id"]]

    bad = await svc.http.get("/v1/clients", params={"phone": "12"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "phone"
    bad_cursor = await svc.http.get("/v1/clients", params={"cursor": "garbage"}, headers=headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"


async def test_operators_search_every_partner(svc: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    a = await svc.register(token("partner", partner=new_partner()), full_name=f"Hassan {tag}")
    b = await svc.register(token("partner", partner=new_partner()), full_name=f"Hassan {tag}")
    resp = await svc.http.get("/v1/clients", params={"q": tag}, headers=token("operator"))
    assert {c["id"] for c in resp.json()["items"]} == {a["id"], b["id"]}
    only_a = await svc.http.get("/v1/clients", params={"q": tag, "partner_id": a["partner_id"]},
                                headers=token("operator"))
    assert [c["id"] for c in only_a.json()["items"]] == [a["id"]]
    spying = await svc.http.get("/v1/clients", params={"partner_id": a["partner_id"]},
                                headers=token("partner", partner=b["partner_id"]))
    assert spying.status_code == 404


async def test_a_partner_cannot_touch_another_partners_client_on_any_route(svc: Service) -> None:
    owner, intruder = new_partner(), new_partner()
    mine = await svc.verified_client(owner)
    cid = mine["id"]
    spy = token("partner", "spy", intruder)

    reads = [
        await svc.http.get(f"/v1/clients/{cid}", headers=spy),
        await svc.http.get(f"/v1/clients/{cid}/credit", headers=spy),
    ]
    writes = [
        await svc.http.patch(f"/v1/clients/{cid}", json={"language": "ar"}, headers=spy),
        await svc.http.post(f"/v1/clients/{cid}/block", json={"reason": "x"}, headers=spy),
        await svc.http.post(f"/v1/clients/{cid}/unblock", json={"reason": "x"}, headers=spy),
    ]
    for resp in reads + writes:
        assert resp.status_code == 404, (resp.request.url, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert mine["full_name"] not in resp.text

    # KYC is an operator's scope: a partner is refused before anything is looked up.
    kyc = await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "rejected",
                                                              "reason": "x"}, headers=spy)
    assert kyc.status_code == 403

    # Listing and searching never show it, by name, phone or CIN.
    for params in ({}, {"q": mine["full_name"]}, {"phone": mine["phone"]},
                   {"national_id": mine["national_id"]}):
        listed = await svc.http.get("/v1/clients", params=params, headers=spy)
        assert listed.status_code == 200
        assert cid not in {c["id"] for c in listed.json()["items"]}

    # Nor can it enrol the client into its own group.
    own = [await svc.verified_client(intruder) for _ in range(2)]
    group = await svc.http.post("/v1/groups", headers=spy, json={
        "name": "intruders", "leader_id": own[0]["id"],
        "member_ids": [own[0]["id"], own[1]["id"], cid]})
    assert group.status_code == 422
    assert group.json()["errors"][0]["field"] == "member_ids.2"
    assert cid not in group.text.replace(f"no such client: {cid}", "")

    # Nothing changed.
    now = (await svc.http.get(f"/v1/clients/{cid}", headers=token("operator"))).json()
    assert (now["language"], now["blocked"], now["kyc_status"]) == ("fr", False, "verified")


async def test_another_partners_group_is_404(svc: Service) -> None:
    owner = new_partner()
    members = [await svc.verified_client(owner) for _ in range(3)]
    resp = await svc.http.post("/v1/groups", headers=token("partner", partner=owner), json={
        "name": "Souk el Had", "leader_id": members[0]["id"],
        "member_ids": [m["id"] for m in members]})
    assert resp.status_code == 201, resp.text
    gid = resp.json()["id"]
    spy = token("partner", partner=new_partner())
    assert (await svc.http.get(f"/v1/groups/{gid}", headers=spy)).status_code == 404
    dissolve = await svc.http.post(f"/v1/groups/{gid}/dissolve", json={"reason": "x"},
                                   headers=spy)
    assert dissolve.status_code == 404
    assert (await svc.http.get(f"/v1/groups/{gid}", headers=token("operator"))
            ).json()["status"] == "active"


async def test_client_body_helper_makes_distinct_people() -> None:
    a, b = client_body(), client_body()
    assert a["national_id"] != b["national_id"] and a["phone"] != b["phone"]
