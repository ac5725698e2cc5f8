"""Client commands from the API: onboard, decide KYC, block/unblock, change contact."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, replace

import asyncpg

from services.clients.domain import client as model
from services.clients.domain.client import Client
from services.clients.domain.credit import LimitPolicy
from services.clients.domain.identity import (
    check_adult,
    check_language,
    normalise_cin,
    normalise_name,
    normalise_phone,
)
from services.clients.domain.office import HEAD_OFFICE_ID, Office, check_officer_for
from services.clients.handlers import offices
from services.clients.repository import clients as repo
from services.clients.repository import credit as credit_repo
from shared.auth import Principal
from shared.clock import today as clock_today
from shared.contracts.clients import (
    ClientBlocked,
    ClientConsentChanged,
    ClientKycRejected,
    ClientKycVerified,
    ClientLanguageChanged,
    ClientPhoneChanged,
    ClientRegistered,
    ClientUnblocked,
)
from shared.contracts.notifications import SmsOptedOut
from shared.envelope import Envelope
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork

log = logging.getLogger("noria.clients")


@dataclass(frozen=True)
class NewClient:
    full_name: str
    national_id: str
    phone: str
    date_of_birth: dt.date
    language: str
    sms_consent: bool
    region: str | None = None
    address: str | None = None
    partner_id: str | None = None
    office_id: str | None = None
    officer_id: str | None = None


def _owner_partner(principal: Principal, requested: str | None) -> str:
    if principal.sees_all_tenants and principal.partner_id is None:
        if not requested:
            raise InvalidInput("an operator onboarding a client names its partner",
                               field="partner_id")
        return requested
    if principal.partner_id is None:
        raise InvalidInput("the token names no partner", field="partner_id")
    if requested and requested != principal.partner_id:
        raise InvalidInput("a partner onboards clients for itself only", field="partner_id")
    return principal.partner_id


async def _refuse_duplicate(uow: UnitOfWork, principal: Principal, *, national_id: str | None,
                            phone: str | None, exclude_id: str | None = None) -> None:
    dup = await repo.find_duplicate(uow.conn, national_id=national_id, phone=phone,
                                    exclude_id=exclude_id)
    if dup is None:
        return
    field, existing_id, partner_id, office_path = dup
    what = "national ID" if field == "national_id" else "phone number"
    if principal.can_see(partner_id) and principal.can_see_office(office_path):
        raise Conflict(f"a client with this {what} is already registered", field=field,
                       existing_client_id=existing_id,
                       existing_client=f"/v1/clients/{existing_id}")
    raise Conflict(f"a client with this {what} is already registered", field=field)


def sees(principal: Principal, client: Client) -> bool:
    """The token's partner and office subtree both hold the client."""
    return principal.can_see(client.partner_id) and principal.can_see_office(client.office_path)


def load_visible(client: Client | None, principal: Principal) -> Client:
    """The client, or 404 if it does not exist, belongs to another partner or lies outside
    the token's office subtree."""
    if client is None or not sees(principal, client):
        raise NotFound("no such client", field="id")
    return client


async def _placement(uow: UnitOfWork, principal: Principal, new: NewClient
                     ) -> tuple[Office, str | None]:
    """The client's office (the token's own by default, else the head office) and loan
    officer (who works in that office or below it)."""
    office_id = new.office_id or principal.office_id or HEAD_OFFICE_ID
    office = await offices.referenced_office(uow, principal, office_id, field="office_id")
    if office.status != "open":
        raise InvalidInput("the office is closed", field="office_id")
    if new.officer_id is None:
        return office, None
    officer = await offices.referenced_officer(uow, principal, new.officer_id)
    return office, check_officer_for(office, officer).id


async def register(uow: UnitOfWork, principal: Principal, new: NewClient,
                   policy: LimitPolicy, *, today: dt.date | None = None) -> Client:
    office, officer_id = await _placement(uow, principal, new)
    c = Client(
        id=str(uuid.uuid4()),
        partner_id=_owner_partner(principal, new.partner_id),
        full_name=normalise_name(new.full_name),
        national_id=normalise_cin(new.national_id),
        phone=normalise_phone(new.phone),
        date_of_birth=check_adult(new.date_of_birth, today or clock_today()),
        language=check_language(new.language),
        sms_consent=new.sms_consent,
        region=(new.region or "").strip() or None,
        address=(new.address or "").strip() or None,
        onboarded_by=principal.sub,
        office_id=office.id,
        office_path=office.path,
        officer_id=officer_id,
    )
    await _refuse_duplicate(uow, principal, national_id=c.national_id, phone=c.phone)
    try:
        async with uow.conn.transaction():  # a savepoint: a racing twin fails cleanly
            saved = await repo.insert(uow.conn, c)
    except asyncpg.UniqueViolationError:
        await _refuse_duplicate(uow, principal, national_id=c.national_id, phone=c.phone)
        raise Conflict("a client with this national ID or phone is already registered"
                       ) from None
    await credit_repo.open_account(uow.conn, saved.id, policy.limit_for_cycle(1))
    uow.emit(ClientRegistered(
        client_id=saved.id, partner_id=saved.partner_id, full_name=saved.full_name,
        phone=saved.phone, language=saved.language,
        sms_consent=saved.sms_consent, region=saved.region, office_id=saved.office_id,
        office_path=saved.office_path, officer_id=saved.officer_id), key=saved.id)
    return saved


async def get(uow: UnitOfWork, principal: Principal, client_id: str, *,
              for_update: bool = False) -> Client:
    return load_visible(await repo.get(uow.conn, client_id, for_update=for_update), principal)


async def decide_kyc(uow: UnitOfWork, principal: Principal, client_id: str, *, decision: str,
                     reason: str | None) -> Client:
    c = await get(uow, principal, client_id, for_update=True)
    decided = model.decide_kyc(c, decision=decision, reason=reason, decided_by=principal.sub,
                               now=dt.datetime.now(dt.UTC))
    saved = await repo.update(uow.conn, decided)
    contact = _contact(saved)
    if saved.kyc_status == "verified":
        uow.emit(ClientKycVerified(client_id=saved.id, verified_by=principal.sub, **contact),
                 key=saved.id)
    else:
        uow.emit(ClientKycRejected(client_id=saved.id, rejected_by=principal.sub,
                                   reason=saved.kyc_reason or "", **contact), key=saved.id)
    return saved


async def block(uow: UnitOfWork, principal: Principal, client_id: str, reason: str) -> Client:
    c = await get(uow, principal, client_id, for_update=True)
    saved = await repo.update(uow.conn, model.block(
        c, reason=reason, by=principal.sub, by_operator=principal.sees_all_tenants))
    uow.emit(ClientBlocked(client_id=saved.id, reason=saved.block_reason or "",
                           blocked_by=principal.sub, **_contact(saved)), key=saved.id)
    return saved


async def unblock(uow: UnitOfWork, principal: Principal, client_id: str, reason: str) -> Client:
    c = await get(uow, principal, client_id, for_update=True)
    saved = await repo.update(uow.conn, model.unblock(
        c, reason=reason, by_operator=principal.sees_all_tenants))
    uow.emit(ClientUnblocked(client_id=saved.id, reason=reason.strip(),
                             unblocked_by=principal.sub, **_contact(saved)), key=saved.id)
    return saved


async def change_contact(uow: UnitOfWork, principal: Principal, client_id: str, *,
                         phone: str | None, language: str | None, sms_consent: bool | None
                         ) -> Client:
    if phone is None and language is None and sms_consent is None:
        raise InvalidInput("nothing to change: send phone, language or sms_consent",
                           field="body")
    new_phone = normalise_phone(phone) if phone is not None else None
    new_lang = check_language(language) if language is not None else None
    c = await get(uow, principal, client_id, for_update=True)
    changed = c
    if new_phone is not None and new_phone != c.phone:
        await _refuse_duplicate(uow, principal, national_id=None, phone=new_phone,
                                exclude_id=c.id)
        changed = replace(changed, phone=new_phone)
    if new_lang is not None:
        changed = replace(changed, language=new_lang)
    if sms_consent is not None:
        changed = replace(changed, sms_consent=sms_consent)
    if changed == c:
        return c
    try:
        async with uow.conn.transaction():
            saved = await repo.update(uow.conn, changed)
    except asyncpg.UniqueViolationError:
        raise Conflict("a client with this phone number is already registered",
                       field="phone") from None
    if saved.phone != c.phone:
        uow.emit(ClientPhoneChanged(client_id=saved.id, phone=saved.phone,
                                    previous_phone=c.phone,
                                    language=saved.language,
                                    sms_consent=saved.sms_consent), key=saved.id)
    if saved.language != c.language:
        uow.emit(ClientLanguageChanged(client_id=saved.id,
                                       language=saved.language,
                                       phone=saved.phone, sms_consent=saved.sms_consent),
                 key=saved.id)
    if saved.sms_consent != c.sms_consent:
        uow.emit(ClientConsentChanged(
            client_id=saved.id, sms_consent=saved.sms_consent,
            source="operator" if principal.sees_all_tenants else "api",
            phone=saved.phone, language=saved.language),
            key=saved.id)
    return saved


def _contact(c: Client) -> dict[str, object]:
    return {"phone": c.phone, "language": c.language, "sms_consent": c.sms_consent}


async def on_sms_opted_out(uow: UnitOfWork, event: SmsOptedOut, env: Envelope) -> None:
    """A STOP reply reached notifications: record the client's withdrawn consent."""
    if event.client_id is None:
        return
    c = await repo.get(uow.conn, event.client_id, for_update=True)
    if c is None:
        log.info("SmsOptedOut for unknown client %s; ignored", event.client_id)
        return
    if not c.sms_consent:
        return
    saved = await repo.update(uow.conn, replace(c, sms_consent=False))
    uow.emit(ClientConsentChanged(client_id=saved.id, sms_consent=False, source=event.source,
                                  phone=saved.phone, language=saved.language), key=saved.id)
