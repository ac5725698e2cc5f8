"""Partners' OAuth2 clients in Keycloak, through its admin REST API.

The clients service calls as the realm's service account ``noria-admin`` (client
credentials; its ``realm-management`` roles allow managing clients and nothing else).
A partner's (or wallet's) client is confidential, for the client-credentials grant
only, and its access tokens carry:

- ``partner_id``: a hard-coded claim, so a partner can never speak for another;
- ``scopes``: a hard-coded JSON list, the scopes it was allowed when onboarded;
- audience ``noria``.

Disabling the client makes Keycloak refuse its next token request at once; tokens it
already holds expire within the realm's access-token lifespan (5 minutes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx


class IdentityProviderError(Exception):
    """Keycloak could not be reached, or refused the call: nothing was done there
    (or what was done is repeated safely by the next attempt)."""


@dataclass(frozen=True)
class PartnerClient:
    id: str
    """Keycloak's internal id of the client."""
    client_id: str
    secret: str


def partner_client_representation(client_id: str, *, partner_id: str, kind: str, name: str,
                                  scopes: Sequence[str], audience: str) -> dict[str, Any]:
    def hardcoded(claim: str, value: str, json_type: str) -> dict[str, Any]:
        return {"name": claim, "protocol": "openid-connect",
                "protocolMapper": "oidc-hardcoded-claim-mapper",
                "config": {"claim.name": claim, "claim.value": value,
                           "jsonType.label": json_type, "access.token.claim": "true",
                           "id.token.claim": "false", "userinfo.token.claim": "false",
                           "introspection.token.claim": "true"}}

    return {
        "clientId": client_id, "name": name, "enabled": True, "publicClient": False,
        "protocol": "openid-connect", "clientAuthenticatorType": "client-secret",
        "serviceAccountsEnabled": True, "standardFlowEnabled": False,
        "implicitFlowEnabled": False, "directAccessGrantsEnabled": False,
        "fullScopeAllowed": False,
        "attributes": {"noria.partner_id": partner_id, "noria.kind": kind},
        "protocolMappers": [
            hardcoded("partner_id", partner_id, "String"),
            hardcoded("scopes", json.dumps(sorted(scopes)), "JSON"),
            {"name": "audience", "protocol": "openid-connect",
             "protocolMapper": "oidc-audience-mapper",
             "config": {"included.custom.audience": audience, "access.token.claim": "true",
                        "id.token.claim": "false", "introspection.token.claim": "true"}},
        ],
    }


class KeycloakAdmin:
    """The admin API of one realm, called with the service account's token (cached until
    shortly before it expires)."""

    def __init__(self, base_url: str, realm: str, client_id: str, client_secret: str, *,
                 timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._token: str | None = None
        self._token_until = 0.0

    @property
    def admin(self) -> str:
        return f"{self.base_url}/admin/realms/{self.realm}"

    async def close(self) -> None:
        await self._http.aclose()

    async def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_until:
            return self._token
        resp = await self._send("POST", f"{self.base_url}/realms/{self.realm}/protocol/"
                                "openid-connect/token", auth=False, data={
                                    "grant_type": "client_credentials",
                                    "client_id": self._client_id,
                                    "client_secret": self._client_secret})
        body = resp.json()
        self._token = str(body["access_token"])
        self._token_until = time.monotonic() + max(5.0, float(body.get("expires_in", 60)) - 30)
        return self._token

    async def _send(self, method: str, url: str, *, auth: bool = True,
                    ok: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {await self._access_token()}"
        resp = await self._request(method, url, headers, **kwargs)
        if resp.status_code == 401 and auth:
            self._token = None  # revoked or expired early: one fresh token, once
            headers["Authorization"] = f"Bearer {await self._access_token()}"
            resp = await self._request(method, url, headers, **kwargs)
        if resp.status_code not in ok:
            raise IdentityProviderError(
                f"the identity provider answered {resp.status_code} to {method} "
                f"{url.removeprefix(self.base_url)}: {resp.text[:200]}")
        return resp

    async def _request(self, method: str, url: str, headers: dict[str, str],
                       **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise IdentityProviderError(
                f"the identity provider cannot be reached ({type(exc).__name__})") from None

    async def find_client(self, client_id: str) -> dict[str, Any] | None:
        resp = await self._send("GET", f"{self.admin}/clients",
                                params={"clientId": client_id, "search": "false"})
        found: list[dict[str, Any]] = resp.json()
        return next((c for c in found if c.get("clientId") == client_id), None)

    async def create_partner_client(self, client_id: str, *, partner_id: str, kind: str,
                                    name: str, scopes: Sequence[str], audience: str
                                    ) -> PartnerClient:
        """Create the client (or take over the one a failed earlier attempt left) and
        give it a fresh secret."""
        rep = partner_client_representation(client_id, partner_id=partner_id, kind=kind,
                                            name=name, scopes=scopes, audience=audience)
        resp = await self._send("POST", f"{self.admin}/clients", json=rep, ok=(201, 409))
        existing = await self.find_client(client_id)
        if existing is None:
            raise IdentityProviderError(f"the client {client_id} was not created")
        if resp.status_code == 409:
            attributes = existing.get("attributes") or {}
            if attributes.get("noria.partner_id") != partner_id:
                raise IdentityProviderError(
                    f"a client {client_id} exists that is not this partner's")
            await self._send("PUT", f"{self.admin}/clients/{existing['id']}",
                             json={"clientId": client_id, "enabled": True})
        secret = await self.rotate_secret(str(existing["id"]))
        return PartnerClient(id=str(existing["id"]), client_id=client_id, secret=secret)

    async def rotate_secret(self, keycloak_id: str) -> str:
        resp = await self._send("POST", f"{self.admin}/clients/{keycloak_id}/client-secret")
        return str(resp.json()["value"])

    async def set_enabled(self, keycloak_id: str, client_id: str, enabled: bool) -> None:
        await self._send("PUT", f"{self.admin}/clients/{keycloak_id}",
                         json={"clientId": client_id, "enabled": enabled})
