"""The organisation end to end through the API: offices and staff, clients and groups in
offices, office-scoped tokens (404 outside the subtree on every route), and the
maker-checker transfer and reassignment with their events.

Every test builds its own region(s) with fresh ids, so it passes on a database that
already holds other offices, clients and pending requests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.auth import ROLE_SCOPES
from tests.identity import mint_token
from tests.infra import Infra
from tests.integration.clients.conftest import EVENTS, Service, client_body, new_partner, token
from tests.kafka_facts import TopicReader

pytestmark = pytest.mark.integration


def op(sub: str | None = None, office: dict[str, Any] | None = None) -> dict[str, str]:
    """An operator's token; scoped to ``office`` and its subtree when given."""
    tok = mint_token(sub=sub or f"op-{uuid.uuid4().hex[:6]}",
                     scopes=ROLE_SCOPES["operator"],
                     office_id=office["id"] if office else None,
                     office_path=office["path"] if office else None)
    return {"Authorization": f"Bearer {tok}"}


HEAD = op("head-office-admin")


@dataclass
class Tree:
    """ho → region → (b1 → m1, b2); ho → region2 → b3; officers lo1, lo2 in b1, lo3 in b3."""

    tag: str
    region: dict[str, Any]
    b1: dict[str, Any]
    b2: dict[str, Any]
    m1: dict[str, Any]
    region2: dict[str, Any]
    b3: dict[str, Any]
    lo1: dict[str, Any]
    lo2: dict[str, Any]
    lo3: dict[str, Any]
    manager: dict[str, Any]


async def created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def open_office(svc: Service, oid: str, kind: str, parent: str) -> dict[str, Any]:
    return await created(await svc.http.post(
        "/v1/offices", json={"id": oid, "kind": kind, "name": f"Office {oid}",
                             "parent_id": parent}, headers=HEAD))


async def add_officer(svc: Service, sid: str, office: str, role: str = "loan_officer"
                      ) -> dict[str, Any]:
    return await created(await svc.http.post(
        "/v1/staff", json={"id": sid, "full_name": f"Staff {sid}", "role": role,
                           "office_id": office}, headers=HEAD))


@pytest.fixture
async def tree(svc: Service) -> AsyncIterator[Tree]:
    t = uuid.uuid4().hex[:8]
    region = await open_office(svc, f"r-{t}", "region", "ho")
    b1 = await open_office(svc, f"b1-{t}", "branch", region["id"])
    b2 = await open_office(svc, f"b2-{t}", "branch", region["id"])
    m1 = await open_office(svc, f"m1-{t}", "mobile_unit", b1["id"])
    region2 = await open_office(svc, f"r2-{t}", "region", "ho")
    b3 = await open_office(svc, f"b3-{t}", "branch", region2["id"])
    yield Tree(t, region, b1, b2, m1, region2, b3,
               await add_officer(svc, f"lo1-{t}", b1["id"]),
               await add_officer(svc, f"lo2-{t}", b1["id"]),
               await add_officer(svc, f"lo3-{t}", b3["id"]),
               await add_officer(svc, f"bm-{t}", b1["id"], "branch_manager"))


async def onboard(svc: Service, partner: str, office: dict[str, Any],
                  officer: dict[str, Any] | None, *, verified: bool = True, **extra: Any
                  ) -> dict[str, Any]:
    body = client_body(partner_id=partner, office_id=office["id"],
                       officer_id=officer["id"] if officer else None, **extra)
    client = await created(await svc.http.post("/v1/clients", json=body, headers=op("maker")))
    assert (client["office_id"], client["office_path"]) == (office["id"], office["path"])
    if verified:
        resp = await svc.http.post(f"/v1/clients/{client['id']}/kyc",
                                   json={"decision": "verified"}, headers=op("checker"))
        assert resp.status_code == 200, resp.text
    return client


async def group_of(svc: Service, partner: str, office: dict[str, Any],
                   officer: dict[str, Any] | None, tag: str) -> dict[str, Any]:
    members = [await onboard(svc, partner, office, officer, full_name=f"Member {tag} {i}")
               for i in range(3)]
    return await created(await svc.http.post("/v1/groups", json={
        "name": f"Tafoukt {tag}", "leader_id": members[0]["id"],
        "member_ids": [m["id"] for m in members],
        "officer_id": officer["id"] if officer else None}, headers=op("maker")))


def problem_field(resp: httpx.Response) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    field: str = resp.json()["errors"][0]["field"]
    return field


async def ids_of_search(svc: Service, headers: dict[str, str], **params: str) -> set[str]:
    resp = await svc.http.get("/v1/clients", params={**params, "limit": 200}, headers=headers)
    assert resp.status_code == 200, resp.text
    return {c["id"] for c in resp.json()["items"]}


async def test_office_tokens_see_their_subtree_only_on_every_route(svc: Service, tree: Tree
                                                                   ) -> None:
    partner = new_partner()
    tag = tree.tag
    mine = await onboard(svc, partner, tree.b1, tree.lo1, full_name=f"Amina {tag} B1")
    unit = await onboard(svc, partner, tree.m1, None, full_name=f"Amina {tag} M1")
    sister = await onboard(svc, partner, tree.b2, None, full_name=f"Amina {tag} B2")
    far = await onboard(svc, partner, tree.b3, tree.lo3, full_name=f"Amina {tag} B3")
    mine_group = await group_of(svc, partner, tree.b1, tree.lo1, f"{tag}g1")
    far_group = await group_of(svc, partner, tree.b3, tree.lo3, f"{tag}g3")
    assert (far_group["office_id"], far_group["officer_id"]) == (tree.b3["id"],
                                                                 tree.lo3["id"])

    officer = op(f"officer-{tag}", tree.b1)
    regional = op(f"regional-{tag}", tree.region)

    # Searching: each token finds only its subtree's clients; head office finds all.
    assert await ids_of_search(svc, officer, q=f"Amina {tag}") == {mine["id"], unit["id"]}
    assert await ids_of_search(svc, regional, q=f"Amina {tag}") == {
        mine["id"], unit["id"], sister["id"]}
    assert await ids_of_search(svc, HEAD, q=f"Amina {tag}") == {
        mine["id"], unit["id"], sister["id"], far["id"]}
    assert await ids_of_search(svc, HEAD, officer_id=tree.lo1["id"], q=f"Amina {tag}") == {
        mine["id"]}

    # Inside the subtree every route answers; outside, 404 as for another partner's data.
    assert (await svc.http.get(f"/v1/clients/{mine['id']}", headers=officer)).status_code == 200
    assert (await svc.http.get(f"/v1/groups/{mine_group['id']}",
                               headers=officer)).status_code == 200
    cid, gid = far["id"], far_group["id"]
    outside = [
        await svc.http.get(f"/v1/clients/{cid}", headers=officer),
        await svc.http.get(f"/v1/clients/{cid}/credit", headers=officer),
        await svc.http.patch(f"/v1/clients/{cid}", json={"language": "ar"}, headers=officer),
        await svc.http.post(f"/v1/clients/{cid}/block", json={"reason": "x"}, headers=officer),
        await svc.http.post(f"/v1/clients/{cid}/unblock", json={"reason": "x"},
                            headers=officer),
        await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "verified"},
                            headers=officer),
        await svc.http.get(f"/v1/groups/{gid}", headers=officer),
        await svc.http.post(f"/v1/groups/{gid}/dissolve", json={"reason": "x"},
                            headers=officer),
        await svc.http.get(f"/v1/offices/{tree.b3['id']}", headers=officer),
        await svc.http.get(f"/v1/offices/{tree.b2['id']}", headers=officer),
        await svc.http.patch(f"/v1/offices/{tree.b3['id']}", json={"name": "Mine now"},
                             headers=officer),
        await svc.http.get(f"/v1/staff/{tree.lo3['id']}", headers=officer),
        await svc.http.patch(f"/v1/staff/{tree.lo3['id']}", json={"full_name": "Renamed"},
                             headers=officer),
        await svc.http.get(f"/v1/clients/{cid}", headers=regional),
        await svc.http.get(f"/v1/groups/{gid}", headers=regional),
    ]
    assert [r.status_code for r in outside] == [404] * len(outside), [r.text for r in outside]
    assert all(r.headers["content-type"].startswith("application/problem+json")
               for r in outside)
    for path in (f"/v1/clients/{cid}", f"/v1/groups/{gid}", f"/v1/offices/{tree.b3['id']}",
                 f"/v1/staff/{tree.lo3['id']}"):
        assert (await svc.http.get(path, headers=HEAD)).status_code == 200, path
    assert (await svc.http.get(f"/v1/clients/{sister['id']}",
                               headers=regional)).status_code == 200

    # Nothing of the far branch changed through the refused writes.
    still = (await svc.http.get(f"/v1/clients/{cid}", headers=HEAD)).json()
    assert (still["language"], still["blocked"]) == ("fr", False)

    # Offices and staff listings are the subtree too.
    offices = await svc.http.get("/v1/offices", headers=officer)
    assert [o["id"] for o in offices.json()["items"]] == [tree.b1["id"], tree.m1["id"]]
    in_region = await svc.http.get("/v1/offices", headers=regional)
    assert [o["path"] for o in in_region.json()["items"]] == sorted(
        o["path"] for o in (tree.region, tree.b1, tree.b2, tree.m1))
    staff = await svc.http.get("/v1/staff", headers=officer)
    assert {s["id"] for s in staff.json()["items"]} == {
        tree.lo1["id"], tree.lo2["id"], tree.manager["id"]}

    # A scoped token onboards into its own office by default, never into another.
    placed = await created(await svc.http.post(
        "/v1/clients", json=client_body(partner_id=partner), headers=officer))
    assert placed["office_id"] == tree.b1["id"]
    elsewhere = await svc.http.post("/v1/clients", json=client_body(
        partner_id=partner, office_id=tree.b3["id"]), headers=officer)
    assert elsewhere.status_code == 422 and problem_field(elsewhere) == "office_id"

    # Nor can it propose moving a client it cannot see.
    hidden = await svc.http.post("/v1/transfers", json={
        "client_id": far["id"], "to_office_id": tree.b1["id"], "reason": "x"}, headers=officer)
    assert hidden.status_code == 422 and problem_field(hidden) == "client_id"


async def test_a_transfer_takes_two_operators_and_publishes_client_transferred(
        svc: Service, tree: Tree, infra: Infra) -> None:
    partner = new_partner()
    client = await onboard(svc, partner, tree.b1, tree.lo1, verified=False)
    other = await onboard(svc, partner, tree.b1, None, verified=False)
    regional = op(f"regional-{tree.tag}", tree.region)
    maker, checker = op("maker-ops", tree.region), op("checker-ops")

    async with TopicReader(infra.kafka_bootstrap, [EVENTS]) as reader:
        first = await created(await svc.http.post("/v1/transfers", json={
            "client_id": client["id"], "to_office_id": tree.b2["id"],
            "reason": "the family moved to Inezgane"}, headers=maker))
        assert (first["status"], first["from_office_id"], first["to_office_id"],
                first["from_officer_id"]) == ("pending", tree.b1["id"], tree.b2["id"],
                                              tree.lo1["id"])
        second = await created(await svc.http.post("/v1/transfers", json={
            "client_id": other["id"], "to_officer_id": tree.lo2["id"],
            "reason": "assign an officer"}, headers=maker))
        twice = await svc.http.post("/v1/transfers", json={
            "client_id": client["id"], "to_office_id": tree.b3["id"], "reason": "again"},
            headers=HEAD)
        assert twice.status_code == 409 and problem_field(twice) == "client_id"

        # The approvals queue, oldest first, one request per page; the region sees both.
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
            page = (await svc.http.get("/v1/transfers", params=params, headers=regional)).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [first["id"], second["id"]]
        b3_only = await svc.http.get("/v1/transfers", headers=op("b3", tree.b3))
        assert b3_only.json()["items"] == []
        assert (await svc.http.get(f"/v1/transfers/{first['id']}",
                                   headers=op("b3", tree.b3))).status_code == 404

        # The maker cannot approve its own request; nothing moved.
        own = await svc.http.post(f"/v1/transfers/{first['id']}/approve", headers=maker)
        assert own.status_code == 403 and problem_field(own) == "requested_by"
        unmoved = (await svc.http.get(f"/v1/clients/{client['id']}", headers=HEAD)).json()
        assert unmoved["office_id"] == tree.b1["id"]

        approved = await svc.http.post(f"/v1/transfers/{first['id']}/approve", headers=checker)
        assert approved.status_code == 200, approved.text
        assert (approved.json()["status"], approved.json()["decided_by"]) == (
            "approved", "checker-ops")
        again = await svc.http.post(f"/v1/transfers/{first['id']}/approve",
                                    headers=op("third"))
        assert again.status_code == 409

        rejected = await svc.http.post(f"/v1/transfers/{second['id']}/reject",
                                       json={"reason": "wrong officer"}, headers=checker)
        assert rejected.json()["status"] == "rejected"

        [record] = await reader.wait_for("ClientTransferred", key=client["id"])
        p = record.payload
        assert (p["request_id"], p["from_office_id"], p["from_office_path"], p["to_office_id"],
                p["to_office_path"], p["from_officer_id"], p["to_officer_id"],
                p["requested_by"], p["approved_by"]) == (
            first["id"], tree.b1["id"], tree.b1["path"], tree.b2["id"], tree.b2["path"],
            tree.lo1["id"], None, "maker-ops", "checker-ops")
    assert reader.matching("ClientTransferred", key=other["id"]) == []

    moved = (await svc.http.get(f"/v1/clients/{client['id']}", headers=HEAD)).json()
    assert (moved["office_id"], moved["office_path"], moved["officer_id"]) == (
        tree.b2["id"], tree.b2["path"], None)
    b1_officer = op("officer", tree.b1)
    assert (await svc.http.get(f"/v1/clients/{client['id']}",
                               headers=b1_officer)).status_code == 404
    assert (await svc.http.get(f"/v1/clients/{client['id']}",
                               headers=op("b2", tree.b2))).status_code == 200
    assert [r["id"] for r in (await svc.http.get(
        "/v1/transfers", params={"status": "approved"}, headers=regional)).json()["items"]] == [
        first["id"]]


async def test_a_bulk_reassignment_moves_the_officers_whole_portfolio(
        svc: Service, tree: Tree, infra: Infra) -> None:
    partner = new_partner()
    clients = [await onboard(svc, partner, tree.b1, tree.lo1, verified=False)
               for _ in range(3)]
    group = await group_of(svc, partner, tree.b1, tree.lo1, f"{tree.tag}r")
    portfolio = {c["id"] for c in clients} | set(group["member_ids"])
    keep = await onboard(svc, partner, tree.b1, tree.lo2, verified=False)
    assert await ids_of_search(svc, HEAD, officer_id=tree.lo1["id"]) == portfolio

    # The successor must be able to look after the portfolio's offices.
    far = await svc.http.post("/v1/officer-reassignments", json={
        "from_officer_id": tree.lo1["id"], "to_officer_id": tree.lo3["id"], "reason": "leave"},
        headers=op("maker"))
    assert far.status_code == 422 and problem_field(far) == "to_officer_id"

    async with TopicReader(infra.kafka_bootstrap, [EVENTS]) as reader:
        proposal = await created(await svc.http.post("/v1/officer-reassignments", json={
            "from_officer_id": tree.lo1["id"], "to_officer_id": tree.lo2["id"],
            "reason": "maternity leave"}, headers=op("maker")))
        queue = await svc.http.get("/v1/officer-reassignments", headers=op("x", tree.b1))
        assert [r["id"] for r in queue.json()["items"]] == [proposal["id"]]
        own = await svc.http.post(f"/v1/officer-reassignments/{proposal['id']}/approve",
                                  headers=op("maker"))
        assert own.status_code == 403
        done = await svc.http.post(f"/v1/officer-reassignments/{proposal['id']}/approve",
                                   headers=op("checker"))
        assert done.status_code == 200, done.text
        assert (done.json()["moved_clients"], done.json()["moved_groups"]) == (
            len(portfolio), 1)
        records = await reader.wait_for("LoanOfficerReassigned", request_id=proposal["id"],
                                        count=len(portfolio) + 1)
    by_key = {r.key: r.payload for r in records}
    assert set(by_key) == portfolio | {group["id"]}
    assert {(p["from_officer_id"], p["to_officer_id"], p["office_id"])
            for p in by_key.values()} == {(tree.lo1["id"], tree.lo2["id"], tree.b1["id"])}
    assert by_key[group["id"]]["group_id"] == group["id"]

    assert await ids_of_search(svc, HEAD, officer_id=tree.lo1["id"]) == set()
    assert await ids_of_search(svc, HEAD, officer_id=tree.lo2["id"]) == portfolio | {keep["id"]}
    moved_group = (await svc.http.get(f"/v1/groups/{group['id']}", headers=HEAD)).json()
    assert moved_group["officer_id"] == tree.lo2["id"]
    # With an empty portfolio the officer may now leave.
    left = await svc.http.patch(f"/v1/staff/{tree.lo1['id']}", json={"active": False},
                                headers=HEAD)
    assert left.status_code == 200 and left.json()["active"] is False
    busy = await svc.http.patch(f"/v1/staff/{tree.lo2['id']}", json={"active": False},
                                headers=HEAD)
    assert busy.status_code == 409 and problem_field(busy) == "active"


async def test_bad_input_is_refused_naming_the_field(svc: Service, tree: Tree) -> None:
    partner = new_partner()
    t = tree.tag
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("post", "/v1/offices", {"id": f"b9-{t}", "kind": "branch", "name": "Wrong",
                                 "parent_id": "ho"}, "parent_id"),
        ("post", "/v1/offices", {"id": f"m9-{t}", "kind": "mobile_unit", "name": "Wrong",
                                 "parent_id": tree.region["id"]}, "parent_id"),
        ("post", "/v1/offices", {"id": f"r9-{t}", "kind": "district", "name": "Wrong",
                                 "parent_id": "ho"}, "kind"),
        ("post", "/v1/offices", {"id": "Not a slug!", "kind": "region", "name": "Wrong",
                                 "parent_id": "ho"}, "id"),
        ("post", "/v1/offices", {"id": tree.b1["id"], "kind": "branch", "name": "Twin",
                                 "parent_id": tree.region["id"]}, "id"),
        ("post", "/v1/offices", {"kind": "region", "name": "x", "parent_id": "ho"}, "name"),
        ("post", "/v1/staff", {"full_name": "Said", "role": "loan_officer",
                               "office_id": tree.region["id"]}, "office_id"),
        ("post", "/v1/staff", {"full_name": "Said", "role": "branch_manager",
                               "office_id": tree.m1["id"]}, "office_id"),
        ("post", "/v1/staff", {"full_name": "Said", "role": "teller",
                               "office_id": tree.b1["id"]}, "role"),
        ("post", "/v1/staff", {"full_name": "Said", "role": "loan_officer",
                               "office_id": "no-such-office"}, "office_id"),
        ("post", "/v1/clients", client_body(partner_id=partner, office_id=tree.b1["id"],
                                            officer_id=tree.lo3["id"]), "officer_id"),
        ("post", "/v1/clients", client_body(partner_id=partner, office_id=tree.b1["id"],
                                            officer_id=tree.manager["id"]), "officer_id"),
        ("post", "/v1/clients", client_body(partner_id=partner, office_id="nowhere"),
         "office_id"),
        ("post", "/v1/transfers", {"client_id": "no-such-client", "reason": "x"}, "client_id"),
        ("post", "/v1/transfers", {"client_id": "c", "reason": "x", "extra": 1}, "extra"),
        ("post", "/v1/officer-reassignments", {"from_officer_id": tree.lo2["id"],
                                               "to_officer_id": tree.lo1["id"],
                                               "reason": " "}, "reason"),
        ("post", "/v1/officer-reassignments", {"from_officer_id": tree.lo2["id"],
                                               "to_officer_id": tree.manager["id"],
                                               "reason": "x"}, "to_officer_id"),
        ("patch", f"/v1/offices/{tree.b1['id']}", {"status": "closed"}, "status"),
        ("patch", f"/v1/offices/{tree.b1['id']}", {"status": "gone"}, "status"),
    ]
    for method, path, body, field in cases:
        resp = await svc.http.request(method, path, json=body, headers=HEAD)
        assert resp.status_code in (409, 422), (path, body, resp.text)
        assert problem_field(resp) == field, (path, body, resp.text)

    client = await onboard(svc, partner, tree.b1, tree.lo1, verified=False)
    noop = await svc.http.post("/v1/transfers", json={
        "client_id": client["id"], "to_officer_id": tree.lo1["id"], "reason": "same"},
        headers=HEAD)
    assert noop.status_code == 422 and problem_field(noop) == "to_office_id"
    bad_officer = await svc.http.post("/v1/transfers", json={
        "client_id": client["id"], "to_office_id": tree.b2["id"],
        "to_officer_id": tree.lo1["id"], "reason": "x"}, headers=HEAD)
    assert bad_officer.status_code == 422 and problem_field(bad_officer) == "to_officer_id"
    partner_token = token("partner", partner=partner)
    refused = await svc.http.post("/v1/transfers", json={
        "client_id": client["id"], "to_office_id": tree.b2["id"], "reason": "x"},
        headers=partner_token)
    assert refused.status_code == 403
    cursor = await svc.http.get("/v1/transfers", params={"cursor": "garbage"}, headers=HEAD)
    assert cursor.status_code == 422 and problem_field(cursor) == "cursor"
    # Nothing was half-written: no office, staff or client from the refused requests.
    rows = await svc.rows("SELECT id FROM offices WHERE id LIKE $1", f"%9-{t}")
    assert rows == []
