"""``GET /v1/payments?date=&kind=&status=`` — the day's payments (collections, loan
payouts, refunds and savings withdrawals), page by page.

A day is the institution's business day, a local day in ``Africa/Casablanca`` (as
for reconciliation and the ledger's business dates): a payment made at 00:30 local
time belongs to that local day, whatever the UTC date. A collection belongs to the
day it was received, a payout (disbursement, refund or withdrawal) to the day it was
recorded. Pages are cut with a
keyset on (time, id), so paging through a day lists every row once even while
new payments arrive; the totals cover the whole filtered day, not the page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.payments import state
from services.payments.api.deps import runtime
from services.payments.api.paging import decode_cursor, encode_cursor
from services.payments.api.schemas import PaymentDay, PaymentItem
from services.payments.repository import payments as repo
from shared.auth import Principal, require
from shared.clock import BUSINESS_TZ, Clock, today
from shared.errors import InvalidInput
from shared.money import format_amount

MAX_LIMIT = 500

STATUSES = {
    # a wallet's report waiting for the provider, and one it never confirmed, too
    "collection": ("unconfirmed", "rejected_unconfirmed", "received", "posted",
                   "refund_pending", "refunded", "refund_failed", "held"),
    "payout": ("pending", "submitted", "in_doubt", "completed", "failed"),
    "refund": ("pending", "submitted", "in_doubt", "completed", "failed"),
    "withdrawal": ("pending", "submitted", "in_doubt", "completed", "failed"),
}


def parse_day(value: str | None, clock: Clock) -> dt.date:
    """The local day asked for; today's business day (by the service's clock) if none."""
    if value is None or value == "":
        return today(clock)
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"date must be a calendar day YYYY-MM-DD, not {value[:40]!r}",
                           field="date") from None


def parse_kinds(value: str | None) -> list[str]:
    if not value:
        return list(repo.LISTING_KINDS)
    if value not in repo.LISTING_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(repo.LISTING_KINDS)}, "
                           f"not {value[:40]!r}", field="kind")
    return [value]


def parse_status(value: str | None, kinds: list[str]) -> str | None:
    if not value:
        return None
    allowed = sorted({s for k in kinds for s in STATUSES[k]})
    if value not in allowed:
        raise InvalidInput(f"status must be one of {', '.join(allowed)} for this kind, "
                           f"not {value[:40]!r}", field="status")
    return value


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of the local day ``day`` in Africa/Casablanca, as UTC instants: from
    local midnight to the next local midnight (23, 24 or 25 hours when the offset changes,
    e.g. around Ramadan, when Morocco moves between UTC+1 and UTC+0)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=BUSINESS_TZ)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=BUSINESS_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _item(row: Any) -> PaymentItem:
    return PaymentItem.model_validate({
        "id": str(row["id"]), "kind": row["kind"], "status": row["status"],
        "amount": format_amount(row["amount"]), "currency": row["currency"],
        "loan_id": row["loan_id"], "partner_id": row["partner_id"] or None,
        "msisdn": row["msisdn"], "provider": row["provider"],
        "provider_reference": row["provider_reference"],
        "payment_id": str(row["payment_id"]) if row["payment_id"] else None,
        "saga_id": row["saga_id"], "reason": row["reason"], "source": row["source"],
        "at": row["at"].isoformat(),
        "completed_at": row["completed_at"].isoformat() if row["completed_at"] else None,
    })


router = APIRouter(tags=["payments"])


@router.get("/v1/payments", response_model=PaymentDay,
            summary="The day's collections, payouts, refunds and withdrawals "
                    "(a local day in Africa/Casablanca)")
async def list_payments(
    request: Request, principal: Annotated[Principal, require("payments:read")],
    date: str | None = None, kind: str | None = None, status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> PaymentDay:
    day = parse_day(date, state.clock(runtime(request).state))
    kinds = parse_kinds(kind)
    wanted_status = parse_status(status, kinds)
    after = decode_cursor(cursor)
    start, end = local_day_bounds(day)
    partner = None if principal.sees_all_tenants else principal.partner_id
    filters: dict[str, Any] = {"start": start, "end": end, "kinds": kinds,
                               "status": wanted_status, "partner_id": partner}
    rows: list[Any] = []
    totals: dict[str, tuple[int, Decimal]] = {}
    # a token with neither tenant:all nor a partner sees nobody's payments
    if principal.sees_all_tenants or partner is not None:
        async with runtime(request).pool.acquire() as conn:
            rows = await repo.list_day_payments(conn, after=after, limit=limit + 1,
                                                **filters)
            totals = await repo.day_payment_totals(conn, **filters)
    more = len(rows) > limit
    rows = rows[:limit]
    return PaymentDay.model_validate({
        "date": day.isoformat(), "timezone": str(BUSINESS_TZ), "kind": kind or None,
        "status": wanted_status,
        "items": [_item(r) for r in rows],
        "totals": {k: {"count": totals.get(k, (0, Decimal(0)))[0],
                       "amount": format_amount(totals.get(k, (0, Decimal(0)))[1])}
                   for k in kinds},
        "next_cursor": encode_cursor(rows[-1]["at"], rows[-1]["id"]) if more else None,
    })
