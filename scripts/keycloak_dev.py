"""Development conveniences on the local Keycloak (never used in production).

- ``demo-passwords``: give each demo operator of the ``noria`` realm (amina, youssef, …)
  a random password, kept in ``.noria/keycloak/demo-passwords.json`` (mode 0600) and
  printed by ``make up``; set once, kept across restarts.
- ``token``: what ``make token ROLE=… SUB=… PARTNER=…`` prints, a real access token: an
  operator's by the password grant of the development client ``noria-cli``, a partner's or
  wallet's by client credentials of a development client ``dev-<role>-<partner>`` made on
  first use (its ``partner_id`` and scopes as hard-coded claims, like a partner onboarded
  through ``POST /v1/partners``).

The admin calls use the bootstrap admin of the master realm (``NORIA_KEYCLOAK_ADMIN_PASSWORD``,
development default).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("NORIA_STATE_DIR", ROOT / ".noria")) / "keycloak"
PASSWORDS = STATE / "demo-passwords.json"
DEV_SECRETS = STATE / "dev-clients.json"
REALM = "noria"
DEMO_USERS = ("amina", "youssef", "salma", "karim", "nadia", "omar")
PERSONAS = {"amina": "loan officer, Agadir", "youssef": "branch manager, Agadir",
            "salma": "credit committee", "karim": "accountant", "nadia": "head office",
            "omar": "auditor (read-only)"}


def base_url() -> str:
    return (os.environ.get("NORIA_KEYCLOAK_URL") or "http://127.0.0.1:8180").rstrip("/")


def issuer() -> str:
    return f"{base_url()}/realms/{REALM}"


def admin_client() -> httpx.Client:
    password = os.environ.get("NORIA_KEYCLOAK_ADMIN_PASSWORD", "noria-admin")
    resp = httpx.post(f"{base_url()}/realms/master/protocol/openid-connect/token", timeout=10,
                      data={"grant_type": "password", "client_id": "admin-cli",
                            "username": "admin", "password": password})
    resp.raise_for_status()
    return httpx.Client(base_url=f"{base_url()}/admin/realms/{REALM}", timeout=10,
                        headers={"Authorization": f"Bearer {resp.json()['access_token']}"})


def _write_private(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.chmod(0o600)
    tmp.replace(path)


def _read(path: Path) -> dict[str, str]:
    try:
        data: dict[str, str] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _accepted(username: str, password: str) -> bool:
    """Keycloak takes this password (the development client's password grant)."""
    try:
        resp = httpx.post(f"{issuer()}/protocol/openid-connect/token", timeout=10, data={
            "grant_type": "password", "client_id": "noria-cli", "username": username,
            "password": password})
    except httpx.HTTPError:
        return True  # unreachable: nothing to repair now, the caller's request will say so
    return resp.status_code == 200


def ensure_demo_passwords() -> dict[str, str]:
    """Each demo operator's password (set in Keycloak the first time).

    A password kept here that Keycloak no longer takes (the realm is shared: another
    checkout's ``.noria`` may have set its own) is set again, so the file and the
    server agree whenever this returns."""
    known = _read(PASSWORDS)
    with ThreadPoolExecutor(len(DEMO_USERS)) as pool:  # each check hashes a password
        accepted = dict(zip(DEMO_USERS, pool.map(
            lambda u: u in known and _accepted(u, known[u]), DEMO_USERS), strict=True))
    missing = [u for u in DEMO_USERS if not accepted[u]]
    if missing:
        with admin_client() as kc:
            for username in missing:
                users = kc.get("/users", params={"username": username, "exact": "true"}).json()
                if not users:
                    continue
                password = secrets.token_urlsafe(9)
                kc.put(f"/users/{users[0]['id']}/reset-password", json={
                    "type": "password", "value": password, "temporary": False,
                }).raise_for_status()
                known[username] = password
        _write_private(PASSWORDS, known)
    return known


def partner_client(client_id: str, partner_id: str, role: str, name: str) -> dict[str, Any]:
    """A confidential client for the client-credentials grant whose tokens carry
    ``partner_id``, the role's scopes and audience ``noria``."""
    return {
        "clientId": client_id, "name": name, "enabled": True, "publicClient": False,
        "clientAuthenticatorType": "client-secret", "serviceAccountsEnabled": True,
        "standardFlowEnabled": False, "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False, "fullScopeAllowed": True, "protocol": "openid-connect",
        "attributes": {"noria.partner_id": partner_id, "noria.role": role},
        "protocolMappers": [
            {"name": "partner_id", "protocol": "openid-connect",
             "protocolMapper": "oidc-hardcoded-claim-mapper",
             "config": {"claim.name": "partner_id", "claim.value": partner_id,
                        "jsonType.label": "String", "access.token.claim": "true",
                        "id.token.claim": "false", "introspection.token.claim": "true"}},
            {"name": "scopes", "protocol": "openid-connect",
             "protocolMapper": "oidc-usermodel-realm-role-mapper",
             "config": {"claim.name": "scopes", "multivalued": "true",
                        "jsonType.label": "String", "access.token.claim": "true",
                        "id.token.claim": "false", "introspection.token.claim": "true"}},
            {"name": "audience noria", "protocol": "openid-connect",
             "protocolMapper": "oidc-audience-mapper",
             "config": {"included.custom.audience": "noria", "access.token.claim": "true",
                        "id.token.claim": "false", "introspection.token.claim": "true"}},
        ],
    }


def ensure_dev_client(role: str, partner_id: str) -> tuple[str, str]:
    """The development client ``dev-<role>-<partner>`` and its secret."""
    client_id = f"dev-{role}-{partner_id}"
    known = _read(DEV_SECRETS)
    with admin_client() as kc:
        found = kc.get("/clients", params={"clientId": client_id}).json()
        if not found:
            kc.post("/clients", json=partner_client(
                client_id, partner_id, role, f"development {role} {partner_id}"),
            ).raise_for_status()
            found = kc.get("/clients", params={"clientId": client_id}).json()
            uuid_ = found[0]["id"]
            account = kc.get(f"/clients/{uuid_}/service-account-user").json()
            realm_role = kc.get(f"/roles/{role}").json()
            kc.post(f"/users/{account['id']}/role-mappings/realm",
                    json=[realm_role]).raise_for_status()
        uuid_ = found[0]["id"]
        if client_id not in known:
            secret = kc.get(f"/clients/{uuid_}/client-secret").json()["value"]
            known[client_id] = secret
            _write_private(DEV_SECRETS, known)
    return client_id, known[client_id]


def token(role: str, sub: str, partner: str | None, password: str | None) -> dict[str, Any]:
    token_url = f"{issuer()}/protocol/openid-connect/token"
    if role in ("partner", "wallet"):
        if not partner:
            raise SystemExit(f"a {role} token needs PARTNER=<id>")
        client_id, secret = ensure_dev_client(role, partner)
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": secret}
    else:
        if sub not in DEMO_USERS and not password:
            raise SystemExit(f"SUB must be a demo operator ({', '.join(DEMO_USERS)})")
        password = password or ensure_demo_passwords().get(sub, "")
        form = {"grant_type": "password", "client_id": "noria-cli", "username": sub,
                "password": password, "scope": "openid"}
    try:
        resp = httpx.post(token_url, data=form, timeout=10)
    except httpx.HTTPError as exc:
        raise SystemExit(f"Keycloak at {base_url()} cannot be reached ({exc}); make up?"
                         ) from None
    if resp.status_code != 200:
        raise SystemExit(f"Keycloak refused: {resp.status_code} {resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    return body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo-passwords")
    tok = sub.add_parser("token")
    tok.add_argument("--role", default="operator",
                     help="operator, partner or wallet (an operator's persona comes from SUB)")
    tok.add_argument("--sub", default="nadia")
    tok.add_argument("--partner", default=None)
    tok.add_argument("--password", default=None)
    args = parser.parse_args(argv)
    if args.command == "demo-passwords":
        for username, password in ensure_demo_passwords().items():
            print(f"  {username:<8} {password:<14} {PERSONAS.get(username, '')}")
        return
    body = token(args.role, args.sub, args.partner, args.password)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    scopes = " ".join(s for s in claims.get("scopes", []) if ":" in s)
    print(f"role={args.role} sub={claims.get('preferred_username') or claims.get('sub')} "
          f"partner={claims.get('partner_id')} client={claims.get('azp')} scopes={scopes} "
          f"expires_in={body.get('expires_in')}s")
    print(body["access_token"])


if __name__ == "__main__":
    main()
