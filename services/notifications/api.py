"""HTTP API: messages, resend, opt-outs, templates (list, preview, new version), stats."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.notifications import message_store as store
from services.notifications import repository as repo
from services.notifications.domain.messages import suppression_reason
from services.notifications.domain.templates import (
    LANGUAGES,
    Language,
    Template,
    pick,
    render,
    validate_new_version,
)
from services.notifications.domain.triggers import Trigger
from services.notifications.handlers import Deps, create_message, record_opt_out
from shared.auth import Principal, require
from shared.contracts.common import Msisdn
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


class AttemptOut(BaseModel):
    attempt: int
    provider: str
    outcome: str
    detail: str | None
    at: str


class MessageOut(BaseModel):
    id: str
    client_id: str | None
    loan_id: str | None
    phone: str | None
    language: str
    template: str
    template_version: int
    text: str
    encoding: str
    segments: int
    status: str
    permanent: bool | None
    reason: str | None
    provider: str | None
    attempts: int
    urgent: bool
    not_before: str
    created_at: str
    resend_of: str | None
    attempt_log: list[AttemptOut] | None = None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreviewIn(Body):
    language: Language
    variables: dict[str, Any] = Field(default_factory=dict)


class PreviewOut(BaseModel):
    name: str
    version: int
    language: str
    text: str
    encoding: str
    segments: int
    length: int
    transliterated: bool
    policy: str
    urgent: bool


class TemplateVersionIn(Body):
    language: Language
    body: str
    variables: dict[str, str] = Field(default_factory=dict)
    urgent: bool = False
    policy: str = "transliterate"


class TemplateOut(BaseModel):
    name: str
    language: str
    version: int
    body: str
    variables: dict[str, str]
    urgent: bool
    policy: str


class SendIn(Body):
    template: str
    client_id: str | None = None
    phone: Msisdn | None = None
    language: Language | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


class OptOutIn(Body):
    phone: Msisdn


def message_out(row: asyncpg.Record, attempts: list[asyncpg.Record] | None = None
                ) -> MessageOut:
    return MessageOut(
        id=str(row["id"]), client_id=row["client_id"], loan_id=row["loan_id"],
        phone=row["phone"], language=row["language"], template=row["template"],
        template_version=row["template_version"], text=row["text"],
        encoding=row["encoding"], segments=row["segments"], status=row["status"],
        permanent=row["permanent"], reason=row["reason"], provider=row["provider"],
        attempts=row["attempts"], urgent=row["urgent"],
        not_before=row["not_before"].isoformat(), created_at=row["created_at"].isoformat(),
        resend_of=str(row["resend_of"]) if row["resend_of"] else None,
        attempt_log=None if attempts is None else [
            AttemptOut(attempt=a["attempt"], provider=a["provider"], outcome=a["outcome"],
                       detail=a["detail"], at=a["finished_at"].isoformat()) for a in attempts])


def template_out(t: Template) -> TemplateOut:
    return TemplateOut(name=t.name, language=t.language, version=t.version, body=t.body,
                       variables=dict(t.variables), urgent=t.urgent, policy=t.policy)


def build_router(deps: Deps) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["notifications"])

    def pool(request: Request) -> asyncpg.Pool:
        p: asyncpg.Pool = request.app.state.runtime.pool
        return p

    async def visible_message(request: Request, principal: Principal,
                              message_id: str) -> asyncpg.Record:
        try:
            mid = uuid.UUID(message_id)
        except ValueError:
            raise NotFound(f"no message {message_id}", field="id") from None
        async with pool(request).acquire() as conn:
            row = await store.get_message(conn, mid)
        if row is None or not principal.can_see(row["partner_id"]):
            raise NotFound(f"no message {message_id}", field="id")
        return row

    @router.get("/messages", response_model=list[MessageOut])
    async def list_messages(
        request: Request, principal: Annotated[Principal, require("messages:read")],
        client_id: str | None = None, loan_id: str | None = None, phone: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[MessageOut]:
        partner = None if principal.sees_all_tenants else (principal.partner_id or "-")
        async with pool(request).acquire() as conn:
            rows = await store.list_messages(conn, client_id=client_id, loan_id=loan_id,
                                             phone=phone, partner_id=partner, limit=limit)
        return [message_out(r) for r in rows]

    @router.get("/messages/{message_id}", response_model=MessageOut)
    async def get_message(request: Request, message_id: str,
                          principal: Annotated[Principal, require("messages:read")]
                          ) -> MessageOut:
        row = await visible_message(request, principal, message_id)
        async with pool(request).acquire() as conn:
            attempts = await store.attempts_of(conn, row["id"])
        return message_out(row, attempts)

    @router.post("/messages/{message_id}/resend", response_model=MessageOut, status_code=201)
    async def resend(request: Request, message_id: str,
                     principal: Annotated[Principal, require("messages:resend")]
                     ) -> MessageOut:
        row = await visible_message(request, principal, message_id)
        uow = UnitOfWork(pool(request))
        async with uow:
            recipient = (await repo.get_recipient(uow.conn, row["client_id"])
                         if row["client_id"] else None)
            reason = suppression_reason(recipient) if recipient else None
            if reason:
                raise Conflict(f"the client cannot receive SMS now ({reason})",
                               field="client_id", reason=reason)
            phone = recipient.phone if recipient else row["phone"]
            if not phone:
                raise Conflict("the message has no phone to resend to", field="phone")
            new_id = uuid.uuid4()
            await store.insert_message(uow.conn, store.NewMessage(
                id=new_id, template=row["template"], template_version=row["template_version"],
                language=row["language"], text=row["text"], encoding=row["encoding"],
                segments=row["segments"], urgent=True, status="queued",
                not_before=deps.clock(), client_id=row["client_id"],
                partner_id=row["partner_id"], loan_id=row["loan_id"], phone=phone,
                resend_of=row["id"], requested_by=principal.sub))
            await uow.commit()
        async with pool(request).acquire() as conn:
            new = await store.get_message(conn, new_id)
        assert new is not None
        return message_out(new)

    @router.post("/messages", response_model=MessageOut, status_code=201)
    async def send(request: Request, body: SendIn,
                   principal: Annotated[Principal, require("messages:resend")]) -> MessageOut:
        """An operator sends a template to a client (or a phone) now."""
        if body.client_id is None and body.phone is None:
            raise InvalidInput("give a client_id or a phone", field="client_id")
        uow = UnitOfWork(pool(request))
        async with uow:
            if body.client_id and await repo.get_recipient(uow.conn, body.client_id) is None:
                raise NotFound(f"no client {body.client_id} is known", field="client_id")
            made = await create_message(
                uow, deps, Trigger(body.template, body.client_id, None, body.variables,
                                   phone=body.phone),
                language=body.language, urgent=True, requested_by=principal.sub)
            await uow.commit()
        assert made is not None
        async with pool(request).acquire() as conn:
            row = await store.get_message(conn, made.id)
        assert row is not None
        return message_out(row)

    @router.post("/opt-outs", status_code=201)
    async def opt_out(request: Request, body: OptOutIn,
                      principal: Annotated[Principal, require("clients:write")]
                      ) -> dict[str, Any]:
        uow = UnitOfWork(pool(request))
        async with uow:
            owners = await repo.recipients_by_phone(uow.conn, body.phone)
            if not any(principal.can_see(r.partner_id) for r in owners) and \
                    not principal.sees_all_tenants:
                raise NotFound(f"no client of yours has the phone {body.phone}", field="phone")
            ids = await record_opt_out(uow, body.phone, "api", principal.sub)
            await uow.commit()
        return {"phone": body.phone, "client_ids": ids}

    @router.get("/templates", response_model=list[TemplateOut])
    async def list_templates(
        request: Request, principal: Annotated[Principal, require("messages:read")],
        name: str | None = None, all_versions: bool = False,
    ) -> list[TemplateOut]:
        async with pool(request).acquire() as conn:
            if all_versions and name:
                found = await repo.template_versions(conn, name)
            else:
                found = [t for t in (await repo.current_templates(conn)).values()
                         if name is None or t.name == name]
        if name and not found:
            raise NotFound(f"no template named {name}", field="name")
        return [template_out(t) for t in sorted(found, key=lambda t: (t.name, t.language,
                                                                       t.version))]

    @router.post("/templates/{name}/preview", response_model=PreviewOut)
    async def preview(request: Request, name: str, body: PreviewIn,
                      principal: Annotated[Principal, require("messages:read")]) -> PreviewOut:
        async with pool(request).acquire() as conn:
            templates = await repo.current_templates(conn)
        template = pick(templates, name, body.language)
        r = render(template, body.variables)
        return PreviewOut(name=name, version=template.version, language=template.language,
                          text=r.text, encoding=r.encoded.encoding,
                          segments=r.encoded.segments, length=r.encoded.length,
                          transliterated=r.encoded.transliterated, policy=template.policy,
                          urgent=template.urgent)

    @router.post("/templates/{name}/versions", response_model=TemplateOut, status_code=201)
    async def add_version(request: Request, name: str, body: TemplateVersionIn,
                          principal: Annotated[Principal, require("templates:write")]
                          ) -> TemplateOut:
        validate_new_version(name, body.language, body.body, body.variables, body.policy)
        uow = UnitOfWork(pool(request))
        async with uow:
            made = await repo.add_template_version(
                uow.conn, name, body.language, body.body, body.variables, body.urgent,
                body.policy, principal.sub)
            await uow.commit()
        return template_out(made)

    @router.get("/sms/stats")
    async def sms_stats(request: Request,
                        principal: Annotated[Principal, require("messages:read")]
                        ) -> dict[str, Any]:
        partner = None if principal.sees_all_tenants else (principal.partner_id or "-")
        async with pool(request).acquire() as conn:
            data = await store.stats(conn, partner)
            held = await repo.held_count(conn, partner)
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for r in data["rows"]:
            entry = by_key.setdefault((r["provider"], r["language"]), {
                "provider": r["provider"], "language": r["language"], "sent": 0,
                "delivered": 0, "failed": 0, "expired": 0, "queued": 0, "suppressed": 0,
                "segments": 0, "encodings": {}})
            for k in ("sent", "delivered", "failed", "expired", "queued", "suppressed",
                      "segments"):
                entry[k] += int(r[k])
            entry["encodings"][r["encoding"]] = entry["encodings"].get(r["encoding"], 0) + (
                int(r["sent"]) + int(r["queued"]) + int(r["suppressed"]))
        return {"by_provider_language": list(by_key.values()),
                "opt_outs": data["opt_outs"], "languages": list(LANGUAGES),
                "held_triggers": held}

    return router
