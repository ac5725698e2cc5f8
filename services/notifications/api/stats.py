"""``/v1/sms/stats``: what was sent, delivered and paid for, by provider and language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.notifications.api.deps import office_filter, partner_scope, pool
from services.notifications.api.schemas import OfficeQuery, ProviderLanguageStats, SmsStats
from services.notifications.domain.templates import LANGUAGES
from services.notifications.repository import contacts as contacts_repo
from services.notifications.repository import held as held_repo
from services.notifications.repository import messages as messages_repo
from shared.auth import Principal, require

router = APIRouter(prefix="/v1", tags=["notifications"])

COUNTS = ("sent", "delivered", "failed", "expired", "queued", "suppressed", "segments")


@router.get("/sms/stats", response_model=SmsStats)
async def sms_stats(request: Request,
                    principal: Annotated[Principal, require("messages:read")],
                    office_id: OfficeQuery = None) -> SmsStats:
    """Counts of the messages the principal sees; ``office_id`` narrows them to the
    clients of that office and its subtree (``held_triggers`` is then 0: a held
    trigger's client, unknown yet, has no office)."""
    partner = partner_scope(principal)
    offices = office_filter(principal, office_id)
    async with pool(request).acquire() as conn:
        rows = await messages_repo.stats(conn, partner, offices)
        opt_outs = await contacts_repo.opt_outs_by_source(conn, partner, offices)
        held = 0 if offices.active else await held_repo.held_count(conn, partner)
    by_key: dict[tuple[str, str], ProviderLanguageStats] = {}
    for r in rows:
        entry = by_key.get((r["provider"], r["language"]))
        if entry is None:
            entry = by_key[(r["provider"], r["language"])] = ProviderLanguageStats(
                provider=r["provider"], language=r["language"], sent=0, delivered=0,
                failed=0, expired=0, queued=0, suppressed=0, segments=0, encodings={})
        for k in COUNTS:
            setattr(entry, k, getattr(entry, k) + int(r[k]))
        entry.encodings[r["encoding"]] = entry.encodings.get(r["encoding"], 0) + (
            int(r["sent"]) + int(r["queued"]) + int(r["suppressed"]))
    return SmsStats(by_provider_language=list(by_key.values()), opt_outs=opt_outs,
                    languages=list(LANGUAGES), held_triggers=held)
