"""Operator views: portfolio at risk, the saga monitor; close of business and the
installments due on a date come from ``api/cob.py`` and ``api/installments.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.loans.api import (
    calendar,
    cob,
    collections,
    cursors,
    installments,
    portfolio_scope,
    servicing,
)
from services.loans.api.deps import operator_only, runtime
from services.loans.api.portfolio_scope import ScopedPortfolioOut, ScopedSnapshotPage
from services.loans.api.schemas import SagaDetailOut, SagaPage
from services.loans.api.views import BUCKETS, ratio, snapshot_json
from services.loans.domain.saga import SagaStatus
from services.loans.repository import cob_runs as runs
from services.loans.repository import portfolio as portfolio_repo
from services.loans.repository import sagas as sagas_repo
from shared.auth import Principal, require
from shared.errors import InvalidInput, NotFound
from shared.identifiers import InvalidIdentifier, canonical_reference

UNMATCHABLE = " "
"""Looked up in place of a reference with no canonical form: no id contains a space."""

router = APIRouter(tags=["operations"])
# mounted with this router (the composition root lists the routers it was given)
router.include_router(cob.router)
router.include_router(installments.router)
router.include_router(collections.router)
router.include_router(calendar.router)
router.include_router(servicing.router)


OfficeFilter = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get("/v1/portfolio", response_model=ScopedPortfolioOut)
async def portfolio(request: Request,
                    who: Annotated[Principal, require("loans:read")],
                    office_id: OfficeFilter = None, officer_id: OfficeFilter = None,
                    product_id: OfficeFilter = None) -> dict[str, Any]:
    """Outstanding principal, PAR1/30/90 and arrears buckets, as of the last close of
    business; ``office_id`` (its subtree), ``officer_id``, ``product_id`` narrow it (an
    office-scoped token sees its subtree only)."""
    operator_only(who)
    async with runtime(request).pool.acquire() as conn:
        if portfolio_scope.is_scoped(who, office_id, officer_id, product_id):
            return await portfolio_scope.portfolio(conn, who, office_id, officer_id,
                                                   product_id)
        live = await portfolio_repo.live(conn)
        buckets = await portfolio_repo.live_buckets(conn)
        statuses = await portfolio_repo.status_counts(conn)
        last = await runs.last_completed(conn)
        snapshot = await portfolio_repo.latest_snapshot(conn)
    total = live["outstanding"]
    return {
        "currency": "MAD",
        "as_of_business_date": last["business_date"].isoformat() if last else None,
        "loans_active": live["loans_active"],
        "outstanding_principal": str(total),
        "par": {f"par{n}": {"principal": str(live[f"par{n}"]),
                            "ratio": ratio(live[f"par{n}"], total)} for n in (1, 30, 90)},
        "arrears_buckets": {b: {"loans": buckets[b]["loans"] if b in buckets else 0,
                                "principal": str(buckets[b]["principal"]) if b in buckets
                                else "0.00"} for b in BUCKETS},
        "loans_by_status": statuses,
        "last_snapshot": None if snapshot is None else snapshot_json(snapshot),
    }


@router.get("/v1/portfolio/history", response_model=ScopedSnapshotPage)
async def portfolio_history(
    request: Request, who: Annotated[Principal, require("loans:read")],
    limit: Annotated[int, Query(ge=1, le=366)] = 60,
    office_id: OfficeFilter = None, officer_id: OfficeFilter = None,
    product_id: OfficeFilter = None,
) -> dict[str, Any]:
    """The close-of-business snapshots (PAR trend), newest first; by office subtree,
    officer and product when asked (or when the token is scoped to an office)."""
    operator_only(who)
    async with runtime(request).pool.acquire() as conn:
        if portfolio_scope.is_scoped(who, office_id, officer_id, product_id):
            return await portfolio_scope.history(conn, who, office_id, officer_id,
                                                 product_id, limit)
        rows = await portfolio_repo.snapshots(conn, limit)
    return {"items": [snapshot_json(r) for r in rows]}


@router.get("/v1/sagas", response_model=SagaPage)
async def list_sagas(
    request: Request, who: Annotated[Principal, require("loans:read")],
    state: str | None = None, loan_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    order: sagas_repo.SagaOrder = sagas_repo.SagaOrder.RECENT,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> dict[str, Any]:
    """The saga monitor: filter by state (e.g. ``failed``, ``in_doubt``), most recently
    changed first or ``order=oldest`` (oldest started first), with counts. Pass
    ``next_cursor`` back as ``cursor`` for the next page (``null`` on the last one).
    An office-scoped token sees the sagas of its subtree's loans only."""
    operator_only(who)
    if state is not None and state not in {s.value for s in SagaStatus}:
        raise InvalidInput(f"unknown saga state {state!r}", field="state")
    after = None
    if cursor is not None:
        at, last_id = cursors.decode(cursor, order.value)
        after = sagas_repo.SagaCursor(order, at, last_id)
    loan_ref = _reference_or_none(loan_id, "loan_id")
    async with runtime(request).pool.acquire() as conn:
        page = await sagas_repo.list_sagas(conn, state, loan_ref, limit, order=order,
                                           after=after, office_path=who.office_path)
        counts = await sagas_repo.counts_by_state(conn, office_path=who.office_path)
    nxt = page.next
    return {"items": page.items, "counts": counts,
            "next_cursor": None if nxt is None else cursors.encode(nxt.order.value, nxt.at,
                                                                   nxt.id)}


def _reference_or_none(raw: str | None, field: str) -> str | None:
    """A reference in its canonical form; one that has none matches nothing."""
    if raw is None:
        return None
    try:
        return canonical_reference(raw, field=field)
    except InvalidIdentifier:
        return UNMATCHABLE


@router.get("/v1/sagas/{saga_id}", response_model=SagaDetailOut)
async def get_saga(saga_id: str, request: Request,
                   who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    operator_only(who)
    ref = _reference_or_none(saga_id, "saga_id")
    async with runtime(request).pool.acquire() as conn:
        found = await sagas_repo.detail(conn, ref or UNMATCHABLE, office_path=who.office_path)
    if found is None:
        raise NotFound(f"saga {saga_id} not found", field="saga_id")
    return found
