"""Savings close of business over HTTP: run every date up to the one asked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.savings.api.deps import runtime, settings, today
from services.savings.api.schemas import CloseOfBusinessIn, CobRunOut, CobRunPage
from services.savings.handlers.close_of_business import run_close_of_business
from services.savings.repository import cob_runs as runs
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/savings/close-of-business", tags=["savings operations"])

Runner = Annotated[Principal, require("cob:run")]


@router.post("", response_model=CobRunOut)
async def close_of_business(body: CloseOfBusinessIn, request: Request, who: Runner
                            ) -> dict[str, Any]:
    """Close ``business_date`` and every date before it not closed yet, in order. A date
    already closed is not run again (``dates`` is then empty); another run in progress
    is a 409; a date that has not ended yet a 422."""
    rt = runtime(request)
    result = await run_close_of_business(
        rt.background_pool or rt.http_pool, body.business_date, today=today(request),
        requested_by=who.sub, topic_prefix=rt.settings.topic_prefix,
        max_days=settings(request).cob_max_catch_up_days)
    return result.to_json()


@router.get("", response_model=CobRunPage)
async def close_of_business_runs(request: Request, who: Runner,
                                 limit: Annotated[int, Query(ge=1, le=366)] = 60
                                 ) -> dict[str, Any]:
    """The runs, newest business date first."""
    async with runtime(request).pool.acquire() as conn:
        rows = await runs.recent(conn, limit)
    return {"items": [dict(r) for r in rows]}
