"""Who did what: every write records the token's subject and client id in the same
transaction as the write, and operators list them (``GET /v1/audit``) by subject or
client, newest first, keyset-paged."""

from __future__ import annotations

import uuid

from tests.identity import mint_token
from tests.integration.clients.conftest import Service, client_body, new_partner, token


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_every_write_is_recorded_with_subject_and_client(svc: Service) -> None:
    partner = new_partner()
    partner_client = f"partner-{partner}"
    created = await svc.register(token("partner", sub=f"svc-{partner}", partner=partner))
    officer = f"amina-{uuid.uuid4().hex[:6]}"
    officer_token = bearer(mint_token(sub=officer, scopes=["tenant:all", "clients:kyc"],
                                      client_id="noria-console"))
    resp = await svc.http.post(f"/v1/clients/{created['id']}/kyc",
                               json={"decision": "verified"}, headers=officer_token)
    assert resp.status_code == 200, resp.text
    # a refused write (a duplicate national id) leaves no row: it rolled back
    refused = await svc.http.post(
        "/v1/clients", json=client_body(national_id=created["national_id"]),
        headers=token("partner", sub=f"svc-{partner}", partner=partner))
    assert refused.status_code in (409, 422), refused.text

    auditor = token("operator")
    listed = await svc.http.get("/v1/audit", params={"client_id": partner_client},
                                headers=auditor)
    assert listed.status_code == 200, listed.text
    by_client = listed.json()
    assert [(e["method"], e["route"], e["subject"]) for e in by_client["items"]] == [
        ("POST", "/v1/clients", f"svc-{partner}")]
    assert by_client["items"][0]["partner_id"] == partner
    assert by_client["items"][0]["in_transaction"] is True
    by_subject = (await svc.http.get("/v1/audit", params={"subject": officer},
                                     headers=auditor)).json()
    (kyc,) = by_subject["items"]
    assert kyc["route"] == "/v1/clients/{client_id}/kyc"
    assert kyc["path"] == f"/v1/clients/{created['id']}/kyc"
    assert kyc["client_id"] == "noria-console"


async def test_audit_pages_newest_first_and_needs_the_scope(svc: Service) -> None:
    partner = new_partner()
    headers = token("partner", sub=f"svc-{partner}", partner=partner)
    ids = [(await svc.register(headers))["id"] for _ in range(3)]
    assert len(ids) == 3
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"client_id": f"partner-{partner}", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        page = (await svc.http.get("/v1/audit", params=params,
                                   headers=token("operator"))).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)

    refused = await svc.http.get("/v1/audit", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    bad = await svc.http.get("/v1/audit", params={"cursor": "nonsense"},
                             headers=token("operator"))
    assert bad.status_code == 422
