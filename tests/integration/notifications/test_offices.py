"""Each client's office and officer, kept current from clients.events; messages and
stats filtered by office; office-scoped tokens see only their subtree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from shared.contracts.clients import (
    ClientKycVerified,
    ClientTransferred,
    LoanOfficerReassigned,
)
from tests.integration.notifications.conftest import Rig

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Tree:
    """A region with two branches and another region's branch, ids unique to the test."""

    region: str
    agadir: str
    tiznit: str
    tanger: str


def tree() -> Tree:
    tag = uuid.uuid4().hex[:6]
    region = f"ho/r-souss-{tag}"
    return Tree(region=region, agadir=f"{region}/b-agadir-{tag}",
                tiznit=f"{region}/b-tiznit-{tag}", tanger=f"ho/r-nord-{tag}/b-tanger-{tag}")


def office_id(path: str) -> str:
    return path.rsplit("/", 1)[-1]


async def _client_with_sms(rig: Rig, office_path: str) -> tuple[str, dict[str, Any]]:
    client_id, _ = await rig.register(office_path=office_path, officer_id="st-amina")
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)
    return client_id, await rig.wait_message({"delivered"}, client_id=client_id)


async def _listed(rig: Rig, headers: dict[str, str], **params: str) -> list[str]:
    resp = await rig.api.get("/v1/messages", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return [m["id"] for m in resp.json()]


async def _projected(rig: Rig, client_id: str) -> tuple[str | None, str | None, str | None]:
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT office_id, office_path, officer_id FROM recipients"
                                  " WHERE client_id = $1", client_id)
    assert row is not None
    return row["office_id"], row["office_path"], row["officer_id"]


async def test_an_office_token_sees_only_its_subtrees_messages(rig: Rig) -> None:
    t = tree()
    agadir_client, agadir_msg = await _client_with_sms(rig, t.agadir)
    tanger_client, tanger_msg = await _client_with_sms(rig, t.tanger)
    assert agadir_msg["office_id"] == office_id(t.agadir)

    branch = rig.token(office_path=t.agadir)
    region = rig.token(office_path=t.region)
    other = rig.token(office_path=t.tanger)
    both = {"client_id": agadir_client}
    assert await _listed(rig, branch, **both) == [agadir_msg["id"]]
    assert await _listed(rig, region, **both) == [agadir_msg["id"]]
    assert await _listed(rig, other, **both) == []
    assert await _listed(rig, branch, client_id=tanger_client) == []
    assert (await rig.api.get(f"/v1/messages/{agadir_msg['id']}",
                              headers=branch)).status_code == 200
    hidden = await rig.api.get(f"/v1/messages/{tanger_msg['id']}", headers=branch)
    assert hidden.status_code == 404 and hidden.json()["errors"][0]["field"] == "id"
    resend = await rig.api.post(f"/v1/messages/{tanger_msg['id']}/resend", headers=branch)
    assert resend.status_code == 404
    send = await rig.api.post("/v1/messages", headers=branch, json={
        "template": "kyc_verified", "client_id": tanger_client})
    assert send.status_code == 404 and send.json()["errors"][0]["field"] == "client_id"
    # the head office (no office in its token) sees both
    assert await _listed(rig, rig.operator, client_id=tanger_client) == [tanger_msg["id"]]


async def test_messages_and_stats_filtered_by_office_and_its_subtree(rig: Rig) -> None:
    t = tree()
    _, agadir_msg = await _client_with_sms(rig, t.agadir)
    _, tiznit_msg = await _client_with_sms(rig, t.tiznit)
    _, tanger_msg = await _client_with_sms(rig, t.tanger)

    assert await _listed(rig, rig.operator, office_id=office_id(t.agadir)) == [
        agadir_msg["id"]]
    assert set(await _listed(rig, rig.operator, office_id=office_id(t.region))) == {
        agadir_msg["id"], tiznit_msg["id"]}
    assert await _listed(rig, rig.operator, office_id=office_id(t.tanger)) == [
        tanger_msg["id"]]
    # a branch token asking for another region's office gets nothing
    assert await _listed(rig, rig.token(office_path=t.agadir),
                         office_id=office_id(t.tanger)) == []

    async def stats(headers: dict[str, str], **params: str) -> dict[tuple[str, str], int]:
        resp = await rig.api.get("/v1/sms/stats", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        return {(r["provider"], r["language"]): r["delivered"]
                for r in resp.json()["by_provider_language"]}

    assert await stats(rig.operator, office_id=office_id(t.region)) == {("smsc", "fr"): 2}
    assert await stats(rig.operator, office_id=office_id(t.tanger)) == {("smsc", "fr"): 1}
    assert await stats(rig.token(office_path=t.tiznit)) == {("smsc", "fr"): 1}
    assert await stats(rig.token(office_path=t.tiznit),
                       office_id=office_id(t.agadir)) == {}
    bad = await rig.api.get("/v1/sms/stats", params={"office_id": "a/b"},
                            headers=rig.operator)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("office_id")


async def test_a_transferred_client_and_its_messages_follow_the_new_office(rig: Rig) -> None:
    t = tree()
    client_id, msg = await _client_with_sms(rig, t.agadir)
    await rig.publish(ClientTransferred(
        client_id=client_id, request_id="tr-1", partner_id=rig.partner_id,
        from_office_id=office_id(t.agadir), from_office_path=t.agadir,
        to_office_id=office_id(t.tiznit), to_office_path=t.tiznit,
        from_officer_id="st-amina", to_officer_id="st-youssef",
        requested_by="op-1", approved_by="op-2"), key=client_id)

    async def moved() -> bool:
        return await _projected(rig, client_id) == (office_id(t.tiznit), t.tiznit,
                                                     "st-youssef")

    await rig.until(moved, "the client in Tiznit")
    old = await rig.api.get(f"/v1/messages/{msg['id']}", headers=rig.token(office_path=t.agadir))
    assert old.status_code == 404
    new = await rig.api.get(f"/v1/messages/{msg['id']}", headers=rig.token(office_path=t.tiznit))
    assert new.status_code == 200 and new.json()["office_id"] == office_id(t.tiznit)


async def test_a_reassigned_officer_is_projected_a_groups_reassignment_is_skipped(
        rig: Rig) -> None:
    t = tree()
    group = f"gr-{uuid.uuid4().hex[:8]}"
    client_id, _ = await rig.register(office_path=t.agadir, officer_id="st-amina")
    common = {"request_id": "ra-1", "office_id": office_id(t.agadir), "office_path": t.agadir,
              "from_officer_id": "st-amina", "requested_by": "op-1", "approved_by": "op-2"}
    await rig.publish(LoanOfficerReassigned(group_id=group, to_officer_id="st-other",
                                            **common), key=group)
    await rig.publish(LoanOfficerReassigned(client_id=client_id, to_officer_id="st-karim",
                                            **common), key=client_id)

    async def reassigned() -> bool:
        return (await _projected(rig, client_id))[2] == "st-karim"

    await rig.until(reassigned, "the new officer projected")
    assert await _projected(rig, client_id) == (office_id(t.agadir), t.agadir, "st-karim")
    await rig.consumed_all()  # the group's event was consumed, not dead-lettered
    letters = (await rig.api.get("/v1/dead-letters", headers=rig.operator)).json()
    assert [d for d in letters if d["key"] == group] == []


async def test_a_client_without_an_office_is_outside_every_office_token(rig: Rig) -> None:
    t = tree()
    client_id, _ = await rig.register()
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)
    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["office_id"] is None
    assert await _listed(rig, rig.token(office_path=t.region), client_id=client_id) == []
    assert await _listed(rig, rig.operator, client_id=client_id) == [msg["id"]]
