"""The Keycloak realms grant what the services check.

``shared.auth.ROLE_SCOPES`` is what ``make token`` mints and what each service's
``require(...)`` is written against; Keycloak puts a user's realm roles in the token's
``scopes`` claim. A scope missing from a realm is a route no real operator can call
(the production realm once lacked ``reconciliation:resolve``), so every scope must be a
realm role in the development realm, the production realm and the copies the Kubernetes
ConfigMaps are generated from (base: production, dev overlay: development) — and the
``operator``, ``partner`` and ``wallet`` composite roles must carry their ``ROLE_SCOPES``
entry.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from shared.auth import ROLE_SCOPES
from tests.deploy.common import K8S, ROOT

REALMS = {
    "dev": ROOT / "deploy/keycloak/noria-realm.json",
    "production": ROOT / "deploy/keycloak/noria-realm.production.json",
    "k8s-configmap": K8S / "base/keycloak/noria-realm.json",
    "k8s-dev-configmap": K8S / "overlays/dev/keycloak/noria-realm.json",
}
ALL_SCOPES = sorted({s for scopes in ROLE_SCOPES.values() for s in scopes})


@cache
def realm_roles(name: str) -> dict[str, dict[str, Any]]:
    realm = json.loads(REALMS[name].read_text(encoding="utf-8"))
    roles = realm.get("roles", {}).get("realm", [])
    return {r["name"]: r for r in roles}


@pytest.mark.parametrize("realm", sorted(REALMS))
def test_every_scope_the_services_check_is_a_realm_role(realm: str) -> None:
    missing = [s for s in ALL_SCOPES if s not in realm_roles(realm)]
    assert missing == [], f"{REALMS[realm].relative_to(ROOT)} lacks realm roles {missing}"


@pytest.mark.parametrize("realm", sorted(REALMS))
@pytest.mark.parametrize("role", sorted(ROLE_SCOPES))
def test_each_platform_role_grants_its_scopes(realm: str, role: str) -> None:
    found = realm_roles(realm).get(role)
    assert found is not None, f"{realm}: no realm role {role}"
    granted = set((found.get("composites") or {}).get("realm") or [])
    missing = sorted(set(ROLE_SCOPES[role]) - granted)
    assert missing == [], f"{realm}: role {role} does not grant {missing}"


def test_the_configmap_copy_is_the_production_realm() -> None:
    copy = REALMS["k8s-configmap"].read_text(encoding="utf-8")
    assert copy == REALMS["production"].read_text(encoding="utf-8")
