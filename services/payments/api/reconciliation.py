"""Reconciliation on demand and its alerts (operators).

- ``POST /v1/reconciliation/{provider}/{date}`` (or ``POST /v1/reconciliation/runs``
  with ``{provider, date}``): run it now — settle from the statement, raise alerts;
- ``GET /v1/reconciliation/alerts?provider=&date=&status=&limit=&cursor=``: oldest
  first, keyset-paged;
- ``POST /v1/reconciliation/alerts/{id}/resolve`` ``{note}``: who, when and why are kept.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.payments.api.deps import providers, runtime, settings
from services.payments.api.schemas import (
    AlertResolveRequest,
    ReconciliationAlertOut,
    ReconciliationAlerts,
    ReconciliationRun,
    ReconciliationRunRequest,
    money_strings,
)
from services.payments.handlers.reconciliation import run_day
from services.payments.repository import reconciliation as repo
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import Conflict, InvalidInput, NotFound
from shared.money import format_amount

Operator = Annotated[Principal, require("ledger:read", "tenant:all")]
# Closing an alert is an operator's decision of its own, not a read.
Resolver = Annotated[Principal, require("reconciliation:resolve", "tenant:all")]

router = APIRouter(tags=["reconciliation"])


def _alert(row: Any) -> ReconciliationAlertOut:
    def money(v: Any) -> str | None:
        return None if v is None else format_amount(v)

    def instant(v: Any) -> str | None:
        return None if v is None else str(v.isoformat())

    return ReconciliationAlertOut(
        id=str(row["id"]), provider=row["provider"],
        business_date=row["business_date"].isoformat(), mismatch=row["mismatch"],
        reference=row["reference"], kind=row["kind"], loan_id=row["loan_id"],
        ours_amount=money(row["ours_amount"]), theirs_amount=money(row["theirs_amount"]),
        status=row["status"], raised_at=row["raised_at"].isoformat(),
        resolved_at=instant(row["resolved_at"]), resolved_by=row["resolved_by"],
        resolution_note=row["resolution_note"])


async def _run(request: Request, provider: str, day: dt.date | None) -> ReconciliationRun:
    client = providers(request).get(provider)
    if client is None:
        raise NotFound(f"no mobile-money provider named {provider!r}", field="provider")
    day = day or today()
    result = await run_day(runtime(request).pool, settings(request), client, day)
    return ReconciliationRun.model_validate(
        money_strings({"provider": provider, "date": day, **result}))


@router.post("/v1/reconciliation/runs", response_model=ReconciliationRun,
             summary="Reconcile a provider's business day now (idempotent)")
async def run(body: ReconciliationRunRequest, request: Request, principal: Operator
              ) -> ReconciliationRun:
    return await _run(request, body.provider, body.date)


@router.post("/v1/reconciliation/{provider}/{day}", response_model=ReconciliationRun,
             summary="Reconcile a provider's business day now (idempotent)")
async def run_for(provider: str, day: dt.date, request: Request, principal: Operator
                  ) -> ReconciliationRun:
    return await _run(request, provider, day)


def _cursor(value: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if value is None:
        return None
    try:
        at, _, ident = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        return dt.datetime.fromisoformat(at), uuid.UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this API gave", field="cursor") from None


@router.get("/v1/reconciliation/alerts", response_model=ReconciliationAlerts,
            summary="Reconciliation mismatches, oldest first")
async def list_alerts(
    request: Request, principal: Operator,
    provider: Annotated[str | None, Query(max_length=100)] = None,
    date: dt.date | None = None,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ReconciliationAlerts:
    after = _cursor(cursor)
    async with runtime(request).pool.acquire() as conn:
        rows = await repo.alerts_page(conn, provider=provider, day=date, status=status,
                                      after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(
            f"{last['raised_at'].isoformat()}|{last['id']}".encode()).decode()
    return ReconciliationAlerts(items=[_alert(r) for r in rows], next_cursor=next_cursor)


@router.post("/v1/reconciliation/alerts/{alert_id}/resolve",
             response_model=ReconciliationAlertOut,
             summary="Resolve a reconciliation alert, with a note (audited)")
async def resolve_alert(alert_id: str, body: AlertResolveRequest, request: Request,
                        principal: Resolver) -> ReconciliationAlertOut:
    try:
        aid = uuid.UUID(alert_id)
    except ValueError:
        raise NotFound(f"no reconciliation alert {alert_id}", field="alert_id") from None
    async with runtime(request).uow() as uow:
        row = await repo.alert(uow.conn, aid, lock=True)
        if row is None:
            raise NotFound(f"no reconciliation alert {alert_id}", field="alert_id")
        if row["status"] != "open":
            raise Conflict(f"alert {alert_id} was already resolved by {row['resolved_by']}",
                           field="alert_id")
        done = await repo.resolve_alert(uow.conn, aid, principal.sub, body.note)
        await uow.commit()
    assert done is not None
    return _alert(done)
