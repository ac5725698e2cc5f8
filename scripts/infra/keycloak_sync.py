"""Bring a running local Keycloak's ``noria`` realm up to date with the realm file.

Keycloak imports ``deploy/keycloak/noria-realm.json`` only on its first start; a realm
that already exists is left alone. This adds what a newer realm file declares and the
server lacks, without removing anything (users, partners' clients and their role
mappings stay): missing realm roles, missing composites of the persona roles, the
access-token lifespan, and the built-in clients' redirect and logout URIs.

Standard library only (``scripts/infra`` runs it with the system ``python3``).

    python3 scripts/infra/keycloak_sync.py <base-url> <admin-password> <realm-file>
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import urllib.request
from typing import Any


def call(method: str, url: str, token: str | None = None, body: Any = None,
         form: dict[str, str] | None = None) -> Any:
    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"not an HTTP URL: {url}")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else None


def main(base: str, password: str, realm_file: str) -> int:
    base = base.rstrip("/")
    wanted = json.load(open(realm_file, encoding="utf-8"))
    realm = wanted["realm"]
    token = call("POST", f"{base}/realms/master/protocol/openid-connect/token", form={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin",
        "password": password})["access_token"]
    admin = f"{base}/admin/realms/{realm}"
    changes: list[str] = []

    have = {r["name"]: r for r in call("GET", f"{admin}/roles?briefRepresentation=false",
                                       token)}
    for role in wanted["roles"]["realm"]:
        if role["name"] not in have:
            call("POST", f"{admin}/roles", token, {
                "name": role["name"], "description": role.get("description", "")})
            changes.append(f"role {role['name']}")
    have = {r["name"]: r for r in call("GET", f"{admin}/roles", token)}
    for role in wanted["roles"]["realm"]:
        composites = role.get("composites", {}).get("realm", [])
        if not composites:
            continue
        name = urllib.parse.quote(role["name"], safe="")
        current = {r["name"] for r in call("GET", f"{admin}/roles/{name}/composites/realm",
                                           token)}
        missing = [have[c] for c in composites if c not in current and c in have]
        if missing:
            call("POST", f"{admin}/roles/{name}/composites", token, missing)
            changes.append(f"{role['name']} += {', '.join(r['name'] for r in missing)}")

    settings = call("GET", admin, token)
    lifespan = wanted.get("accessTokenLifespan")
    if lifespan and settings.get("accessTokenLifespan") != lifespan:
        call("PUT", admin, token, {"accessTokenLifespan": lifespan})
        changes.append(f"accessTokenLifespan {lifespan}s")

    for client in wanted.get("clients", []):
        found = call("GET", f"{admin}/clients?clientId="
                     f"{urllib.parse.quote(client['clientId'], safe='')}", token)
        if not found:
            continue
        current = found[0]
        update: dict[str, Any] = {}
        if "publicClient" in client and client["publicClient"] != current.get("publicClient"):
            update["publicClient"] = client["publicClient"]
        if "redirectUris" in client and set(client["redirectUris"]) - set(
                current.get("redirectUris", [])):
            update["redirectUris"] = sorted(set(client["redirectUris"]) | set(
                current.get("redirectUris", [])))
        attributes = {k: v for k, v in client.get("attributes", {}).items()
                      if current.get("attributes", {}).get(k) != v}
        if attributes:
            update["attributes"] = {**current.get("attributes", {}), **attributes}
        if update:
            # a partial representation: Keycloak updates the fields given and keeps the rest
            call("PUT", f"{admin}/clients/{current['id']}", token,
                 {"clientId": current["clientId"], **update})
            changes.append(f"client {client['clientId']}: {', '.join(update)}")

    print("; ".join(changes) if changes else "up to date")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    raise SystemExit(main(*sys.argv[1:]))
