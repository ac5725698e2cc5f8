"""``/v1/partners``: partners and wallet integrations and their credentials.

An operator (``partners:write``) onboards one and gets its client secret once; rotates
it; disables or enables it. A partner app then asks the identity provider for tokens
with the OAuth2 client-credentials grant (see the README).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.clients.api.deps import runtime, settings
from services.clients.handlers import partners as handlers
from services.clients.identity_provider import IdentityProviderError, KeycloakAdmin
from services.clients.repository import partners as repo
from services.clients.repository.partners import Partner
from shared import idempotency
from shared.app import Runtime
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/partners", tags=["partners"])

Reader = Annotated[Principal, require("tenant:all", "partners:read")]
Writer = Annotated[Principal, require("tenant:all", "partners:write")]


class PartnerIn(BaseModel):
    partner_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$",
                            description="the partner's id in every token and row")
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="partner", pattern="^(partner|wallet)$")
    scopes: list[str] | None = Field(
        default=None, max_length=30,
        description="a subset of the kind's scopes (default: all of them)")


class PartnerOut(BaseModel):
    partner_id: str
    kind: str
    name: str
    client_id: str
    scopes: list[str]
    status: str
    created_by: str
    created_at: datetime
    secret_rotated_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, p: Partner) -> PartnerOut:
        return cls(partner_id=p.partner_id, kind=p.kind, name=p.name, client_id=p.client_id,
                   scopes=p.scopes, status=p.status, created_by=p.created_by,
                   created_at=p.created_at, secret_rotated_at=p.secret_rotated_at,
                   disabled_at=p.disabled_at)


class CredentialsOut(PartnerOut):
    client_secret: str | None
    """Shown once. Null when an Idempotency-Key replays the creation: rotate to get one."""
    token_url: str


class PartnerPage(BaseModel):
    items: list[PartnerOut]
    next_cursor: str | None


IDP_STATE = "identity_provider"


def identity_provider(request: Request) -> KeycloakAdmin:
    """The admin client of Keycloak, made on the first partner request and kept in the
    runtime's state; :func:`close_identity_provider_at_stop` closes it at shutdown."""
    rt = runtime(request)
    idp: KeycloakAdmin | None = rt.state.get(IDP_STATE)
    if idp is None:
        s = settings(request)
        if s.identity_admin_client_secret is None:
            raise HTTPException(503, "partner credentials are not configured on this "
                                "service (NORIA_CLIENTS_IDENTITY_ADMIN_CLIENT_SECRET)")
        idp = KeycloakAdmin(s.identity_admin_url, s.identity_realm, s.identity_admin_client_id,
                            s.identity_admin_client_secret.get_secret_value())
        rt.state[IDP_STATE] = idp
    return idp


async def close_identity_provider_at_stop(rt: Runtime) -> None:
    """A background job that only waits: the service's shutdown cancels it, and it then
    closes the admin client's connections (if a partner request ever made it)."""
    try:
        await asyncio.Event().wait()
    finally:
        idp: KeycloakAdmin | None = rt.state.pop(IDP_STATE, None)
        if idp is not None:
            await idp.close()


def _unavailable(exc: IdentityProviderError) -> HTTPException:
    return HTTPException(503, f"nothing was changed: {exc}", headers={"Retry-After": "5"})


def _credentials(request: Request, c: handlers.Credentials) -> dict[str, Any]:
    s = settings(request)
    token_url = (f"{s.identity_admin_url.rstrip('/')}/realms/{s.identity_realm}"
                 "/protocol/openid-connect/token")
    return CredentialsOut(**PartnerOut.of(c.partner).model_dump(),
                          client_secret=c.client_secret,
                          token_url=token_url).model_dump(mode="json")


@router.post("", status_code=201, response_model=CredentialsOut)
async def onboard(
    body: PartnerIn, request: Request, principal: Writer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Create the partner's confidential client; its secret is in this answer only."""
    idp = identity_provider(request)
    scope = f"clients.partners:{principal.sub}"
    async with runtime(request).uow() as uow:
        key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
        if key is not None:
            replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
            if replay is not None:
                return JSONResponse(replay.body, status_code=replay.status)
        try:
            created = await handlers.onboard(
                uow, idp, principal, partner_id=body.partner_id, kind=body.kind,
                name=body.name, scopes=body.scopes, audience=settings(request).partner_audience)
        except IdentityProviderError as exc:
            raise _unavailable(exc) from None
        out = _credentials(request, created)
        if key is not None:  # the secret is never stored: a replay answers without it
            await idempotency.complete(uow, scope, key, 201, {**out, "client_secret": None})
        await uow.commit()
    return JSONResponse(out, status_code=201)


@router.post("/{partner_id}/secret", response_model=CredentialsOut)
async def rotate_secret(partner_id: str, request: Request, principal: Writer) -> Any:
    """A new secret (shown once); the previous one stops working at once."""
    idp = identity_provider(request)
    async with runtime(request).uow() as uow:
        try:
            rotated = await handlers.rotate_secret(uow, idp, partner_id)
        except IdentityProviderError as exc:
            raise _unavailable(exc) from None
        out = _credentials(request, rotated)
        await uow.commit()
    return JSONResponse(out)


async def _set_status(partner_id: str, request: Request, principal: Principal,
                      enabled: bool) -> PartnerOut:
    idp = identity_provider(request)
    async with runtime(request).uow() as uow:
        try:
            partner = await handlers.set_status(uow, idp, principal, partner_id,
                                                enabled=enabled)
        except IdentityProviderError as exc:
            raise _unavailable(exc) from None
        await uow.commit()
    return PartnerOut.of(partner)


@router.post("/{partner_id}/disable", response_model=PartnerOut)
async def disable(partner_id: str, request: Request, principal: Writer) -> PartnerOut:
    """Its token requests are refused at once; tokens it holds expire within minutes."""
    return await _set_status(partner_id, request, principal, enabled=False)


@router.post("/{partner_id}/enable", response_model=PartnerOut)
async def enable(partner_id: str, request: Request, principal: Writer) -> PartnerOut:
    return await _set_status(partner_id, request, principal, enabled=True)


@router.get("", response_model=PartnerPage)
async def list_partners(
    request: Request, principal: Reader,
    kind: Annotated[str | None, Query(pattern="^(partner|wallet)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=40,
                                        description="the last partner id of the page")] = None,
) -> PartnerPage:
    async with runtime(request).uow() as uow:
        found = await repo.page(uow.conn, kind=kind, limit=limit + 1, after=cursor)
    items = found[:limit]
    return PartnerPage(items=[PartnerOut.of(p) for p in items],
                       next_cursor=items[-1].partner_id if len(found) > limit else None)


@router.get("/{partner_id}", response_model=PartnerOut)
async def get_partner(partner_id: str, request: Request, principal: Reader) -> PartnerOut:
    async with runtime(request).uow() as uow:
        return PartnerOut.of(await handlers.get(uow, partner_id))
