"""Partners get credentials from the real Keycloak: onboarded through ``POST /v1/partners``,
a partner app obtains tokens with the client-credentials grant and onboards a client;
its secret rotates; disabled, its token requests are refused at once. Wallets the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from services.clients.identity_provider import KeycloakAdmin
from shared.auth import ROLE_SCOPES
from tests.infra import Infra
from tests.integration.clients.conftest import (
    KEYCLOAK_ADMIN_SECRET,
    Service,
    client_body,
    token,
)


@pytest.fixture
async def created_clients(infra: Infra) -> AsyncIterator[list[str]]:
    """The Keycloak clients a test made, deleted afterwards."""
    made: list[str] = []
    yield made
    admin = KeycloakAdmin(infra.keycloak_url, "noria", "noria-admin", KEYCLOAK_ADMIN_SECRET)
    try:
        for client_id in made:
            found = await admin.find_client(client_id)
            if found:
                await admin._send("DELETE", f"{admin.admin}/clients/{found['id']}")
    finally:
        await admin.close()


async def grant(token_url: str, client_id: str, secret: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(token_url, data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": secret})


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def onboard(svc: Service, kind: str, created: list[str], **extra: Any
                  ) -> dict[str, Any]:
    partner_id = f"t-{uuid.uuid4().hex[:10]}"
    created.append(f"{kind}-{partner_id}")
    resp = await svc.http.post("/v1/partners", json={
        "partner_id": partner_id, "name": f"Test {kind} {partner_id}", "kind": kind, **extra,
    }, headers={**token("operator", sub="nadia"), "Idempotency-Key": f"onboard-{partner_id}"})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_a_partner_onboarded_through_the_api_gets_tokens_and_onboards_a_client(
        svc: Service, created_clients: list[str]) -> None:
    partner = await onboard(svc, "partner", created_clients)
    assert partner["client_secret"] and partner["status"] == "active"
    assert partner["client_id"] == f"partner-{partner['partner_id']}"

    resp = await grant(partner["token_url"], partner["client_id"], partner["client_secret"])
    assert resp.status_code == 200, resp.text
    access = resp.json()["access_token"]
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["partner_id"] == partner["partner_id"]
    assert sorted(claims["scopes"]) == sorted(ROLE_SCOPES["partner"])
    assert "noria" in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert claims["exp"] - claims["iat"] <= 300  # short-lived: a disabled partner's end

    made = await svc.http.post("/v1/clients", json=client_body(), headers=bearer(access))
    assert made.status_code == 201, made.text
    assert made.json()["partner_id"] == partner["partner_id"]
    # another partner's data stays out of reach, and operator routes are refused
    refused = await svc.http.post("/v1/partners", json={
        "partner_id": "x-never", "name": "x"}, headers=bearer(access))
    assert refused.status_code == 403
    audit = await svc.http.get("/v1/audit", params={"client_id": partner["client_id"]},
                               headers=token("operator"))
    assert [e["route"] for e in audit.json()["items"]] == ["/v1/clients"]

    # the same Idempotency-Key answers the same partner, without the secret again
    replay = await svc.http.post("/v1/partners", json={
        "partner_id": partner["partner_id"], "name": f"Test partner {partner['partner_id']}",
        "kind": "partner"}, headers={**token("operator", sub="nadia"),
                                     "Idempotency-Key": f"onboard-{partner['partner_id']}"})
    assert replay.status_code == 201 and replay.json()["client_secret"] is None
    again = await svc.http.post("/v1/partners", json={
        "partner_id": partner["partner_id"], "name": "again"}, headers=token("operator"))
    assert again.status_code == 409


async def test_a_rotated_secret_replaces_the_old_and_a_disabled_partner_is_refused(
        svc: Service, created_clients: list[str]) -> None:
    partner = await onboard(svc, "partner", created_clients)
    old = partner["client_secret"]
    rotated = await svc.http.post(f"/v1/partners/{partner['partner_id']}/secret",
                                  headers=token("operator"))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["client_secret"]
    assert new and new != old
    assert (await grant(partner["token_url"], partner["client_id"], old)).status_code == 401
    ok = await grant(partner["token_url"], partner["client_id"], new)
    assert ok.status_code == 200, ok.text

    disabled = await svc.http.post(f"/v1/partners/{partner['partner_id']}/disable",
                                   headers=token("operator"))
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["status"] == "disabled"
    refused = await grant(partner["token_url"], partner["client_id"], new)
    assert refused.status_code in (400, 401), refused.text
    assert refused.json()["error"] in ("unauthorized_client", "invalid_client")
    listed = await svc.http.get(f"/v1/partners/{partner['partner_id']}",
                                headers=token("operator"))
    assert listed.json()["status"] == "disabled"
    # who disabled it is in the audit trail
    audit = await svc.http.get("/v1/audit", params={"subject": listed.json()["created_by"]},
                               headers=token("operator"))
    assert audit.status_code == 200

    enabled = await svc.http.post(f"/v1/partners/{partner['partner_id']}/enable",
                                  headers=token("operator"))
    assert enabled.status_code == 200
    assert (await grant(partner["token_url"], partner["client_id"], new)).status_code == 200


async def test_a_wallet_gets_only_wallet_scopes_and_a_partner_may_not_manage_partners(
        svc: Service, created_clients: list[str]) -> None:
    wallet = await onboard(svc, "wallet", created_clients)
    resp = await grant(wallet["token_url"], wallet["client_id"], wallet["client_secret"])
    assert resp.status_code == 200, resp.text
    claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
    assert sorted(claims["scopes"]) == sorted(ROLE_SCOPES["wallet"])
    assert claims["partner_id"] == wallet["partner_id"]
    beyond = await svc.http.post("/v1/partners", json={
        "partner_id": f"t-{uuid.uuid4().hex[:8]}", "name": "x", "kind": "wallet",
        "scopes": ["clients:write"]}, headers=token("operator"))
    assert beyond.status_code == 422
    partner_token = token("partner", partner="p-someone")
    assert (await svc.http.get("/v1/partners", headers=partner_token)).status_code == 403
