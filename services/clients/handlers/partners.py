"""Partners and wallet integrations get credentials: an operator onboards one, rotates its
secret, disables it. Each is a confidential client in the identity provider whose tokens
carry its ``partner_id`` and allowed scopes (``services.clients.identity_provider``).

The provider is called inside the request's transaction, after the partner's row is
claimed: a provider failure rolls the row back, and a commit that fails after the
provider succeeded is repaired by the next attempt (creation takes over the client the
failed attempt left, with a fresh secret).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.clients.identity_provider import IdentityProviderError, KeycloakAdmin
from services.clients.repository import partners as repo
from services.clients.repository.partners import Partner
from shared.auth import ROLE_SCOPES, Principal
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork

KINDS = ("partner", "wallet")


def allowed_scopes(kind: str) -> tuple[str, ...]:
    return ROLE_SCOPES[kind]


def client_id_for(kind: str, partner_id: str) -> str:
    return f"{kind}-{partner_id}"


@dataclass(frozen=True)
class Credentials:
    partner: Partner
    client_secret: str


def _scopes(kind: str, wanted: list[str] | None) -> list[str]:
    allowed = allowed_scopes(kind)
    if wanted is None:
        return sorted(allowed)
    extra = sorted(set(wanted) - set(allowed))
    if extra:
        raise InvalidInput(f"a {kind} may not hold {', '.join(extra)}; allowed: "
                           f"{', '.join(allowed)}", field="scopes")
    if not wanted:
        raise InvalidInput("at least one scope", field="scopes")
    return sorted(set(wanted))


async def onboard(uow: UnitOfWork, idp: KeycloakAdmin, principal: Principal, *,
                  partner_id: str, kind: str, name: str, scopes: list[str] | None,
                  audience: str) -> Credentials:
    granted = _scopes(kind, scopes)
    client_id = client_id_for(kind, partner_id)
    partner = await repo.insert(uow.conn, partner_id=partner_id, kind=kind, name=name,
                                client_id=client_id, scopes=granted, created_by=principal.sub)
    if partner is None:
        raise Conflict(f"partner {partner_id} exists", field="partner_id")
    created = await idp.create_partner_client(client_id, partner_id=partner_id, kind=kind,
                                              name=name, scopes=granted, audience=audience)
    partner = await repo.set_keycloak_id(uow.conn, partner_id, created.id)
    return Credentials(partner, created.secret)


async def _existing(uow: UnitOfWork, partner_id: str) -> Partner:
    partner = await repo.get(uow.conn, partner_id, for_update=True)
    if partner is None:
        raise NotFound("no such partner", field="partner_id")
    if partner.keycloak_id is None:
        raise IdentityProviderError(f"partner {partner_id} has no client yet")
    return partner


async def rotate_secret(uow: UnitOfWork, idp: KeycloakAdmin, partner_id: str) -> Credentials:
    partner = await _existing(uow, partner_id)
    if partner.status != "active":
        raise Conflict("a disabled partner's secret is not rotated; enable it first",
                       field="partner_id")
    assert partner.keycloak_id is not None
    secret = await idp.rotate_secret(partner.keycloak_id)
    return Credentials(await repo.secret_rotated(uow.conn, partner_id), secret)


async def set_status(uow: UnitOfWork, idp: KeycloakAdmin, principal: Principal,
                     partner_id: str, *, enabled: bool) -> Partner:
    partner = await _existing(uow, partner_id)
    status = "active" if enabled else "disabled"
    if partner.status == status:
        return partner
    assert partner.keycloak_id is not None
    await idp.set_enabled(partner.keycloak_id, partner.client_id, enabled)
    return await repo.set_status(uow.conn, partner_id, status, principal.sub)


async def get(uow: UnitOfWork, partner_id: str) -> Partner:
    partner = await repo.get(uow.conn, partner_id)
    if partner is None:
        raise NotFound("no such partner", field="partner_id")
    return partner
