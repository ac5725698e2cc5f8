"""``/v1/templates``: list (current or every version), preview, a new version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.notifications.api.deps import pool, runtime
from services.notifications.api.schemas import (
    PreviewIn,
    PreviewOut,
    TemplateOut,
    TemplateVersionIn,
)
from services.notifications.domain.templates import pick, render, validate_new_version
from services.notifications.repository import templates as repo
from shared.auth import Principal, require
from shared.errors import NotFound

router = APIRouter(prefix="/v1", tags=["notifications"])

Reader = Annotated[Principal, require("messages:read")]


@router.get("/templates", response_model=list[TemplateOut])
async def list_templates(request: Request, principal: Reader, name: str | None = None,
                         all_versions: bool = False) -> list[TemplateOut]:
    async with pool(request).acquire() as conn:
        if all_versions and name:
            found = await repo.template_versions(conn, name)
        else:
            found = [t for t in (await repo.current_templates(conn)).values()
                     if name is None or t.name == name]
    if name and not found:
        raise NotFound(f"no template named {name}", field="name")
    return [TemplateOut.of(t) for t in sorted(found, key=lambda t: (t.name, t.language,
                                                                     t.version))]


@router.post("/templates/{name}/preview", response_model=PreviewOut)
async def preview(request: Request, name: str, body: PreviewIn,
                  principal: Reader) -> PreviewOut:
    async with pool(request).acquire() as conn:
        templates = await repo.current_templates(conn)
    template = pick(templates, name, body.language)
    r = render(template, body.variables)
    return PreviewOut(name=name, version=template.version, language=template.language,
                      text=r.text, encoding=r.encoded.encoding, segments=r.encoded.segments,
                      length=r.encoded.length, transliterated=r.encoded.transliterated,
                      policy=template.policy, urgent=template.urgent)


@router.post("/templates/{name}/versions", response_model=TemplateOut, status_code=201)
async def add_version(request: Request, name: str, body: TemplateVersionIn,
                      principal: Annotated[Principal, require("templates:write")]
                      ) -> TemplateOut:
    validate_new_version(name, body.language, body.body, body.variables, body.policy)
    async with runtime(request).uow() as uow:
        made = await repo.add_template_version(
            uow.conn, name, body.language, body.body, body.variables, body.urgent,
            body.policy, principal.sub)
        await uow.commit()
    return TemplateOut.of(made)
