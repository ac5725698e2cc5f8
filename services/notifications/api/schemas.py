"""Request and response bodies."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.notifications.domain.templates import Language, Template
from shared.identifiers import InvalidIdentifier, canonical_phone


def _phone(value: str) -> str:
    try:
        return canonical_phone(value)
    except InvalidIdentifier as exc:
        raise ValueError(exc.detail) from None


Phone = Annotated[str, Field(max_length=64), AfterValidator(_phone)]
"""A phone in any spelling ``shared.identifiers`` accepts, as its canonical E.164."""


OfficeQuery = Annotated[str | None, Query(
    min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$",
    description="only the messages of clients of this office or of an office below it")]
"""``?office_id=``: an office id (one segment of an office path)."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- messages ------------------------------------------------------------------------------

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
    office_id: str | None = Field(None, description="the client's current office")
    attempt_log: list[AttemptOut] | None = None

    @classmethod
    def of(cls, row: asyncpg.Record, attempts: list[asyncpg.Record] | None = None
           ) -> MessageOut:
        return cls(
            id=str(row["id"]), client_id=row["client_id"], loan_id=row["loan_id"],
            phone=row["phone"], language=row["language"], template=row["template"],
            template_version=row["template_version"], text=row["text"],
            encoding=row["encoding"], segments=row["segments"], status=row["status"],
            permanent=row["permanent"], reason=row["reason"], provider=row["provider"],
            attempts=row["attempts"], urgent=row["urgent"],
            not_before=row["not_before"].isoformat(),
            created_at=row["created_at"].isoformat(),
            resend_of=str(row["resend_of"]) if row["resend_of"] else None,
            office_id=row.get("office_id"),
            attempt_log=None if attempts is None else [
                AttemptOut(attempt=a["attempt"], provider=a["provider"], outcome=a["outcome"],
                           detail=a["detail"], at=a["finished_at"].isoformat())
                for a in attempts])


class SendIn(Body):
    template: str
    client_id: str | None = None
    phone: Phone | None = None
    language: Language | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


# -- opt-outs ------------------------------------------------------------------------------

class OptOutIn(Body):
    phone: Phone


class OptOutOut(BaseModel):
    phone: str
    client_ids: list[str] = Field(description="the clients with this phone, now opted out")


# -- templates -----------------------------------------------------------------------------

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

    @classmethod
    def of(cls, t: Template) -> TemplateOut:
        return cls(name=t.name, language=t.language, version=t.version, body=t.body,
                   variables=dict(t.variables), urgent=t.urgent, policy=t.policy)


# -- stats ---------------------------------------------------------------------------------

class ProviderLanguageStats(BaseModel):
    provider: str = Field(description="'-' for messages no provider took")
    language: str
    sent: int
    delivered: int
    failed: int
    expired: int
    queued: int
    suppressed: int
    segments: int = Field(description="parts submitted (what is paid for)")
    encodings: dict[str, int] = Field(
        description="messages sent, queued or suppressed, by encoding (GSM-7, UCS-2)")


class SmsStats(BaseModel):
    by_provider_language: list[ProviderLanguageStats]
    opt_outs: dict[str, int] = Field(description="opt-outs by source (api, sms_stop)")
    languages: list[str]
    held_triggers: int = Field(description="trigger events waiting for their client")
