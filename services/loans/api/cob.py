"""Close of business over HTTP: a job started by POST and polled by GET.

The whole portfolio takes longer than any HTTP timeout, so the request only claims
the business date and answers 202; the run goes on in this process
(``handlers/close_of_business.py``, ``start_close_of_business``). ``python -m
services.loans close-of-business DATE`` and the daily schedule run the same steps in
their own task.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.loans.api.deps import runtime
from services.loans.api.schemas import CloseOfBusinessIn, CobRunOut, CobRunPage
from services.loans.api.views import run_json
from services.loans.handlers.close_of_business import recover_stale_runs, start_close_of_business
from services.loans.repository import cob_runs as runs
from shared.auth import Principal, require
from shared.errors import NotFound

router = APIRouter(prefix="/v1/close-of-business", tags=["operations"])


# ``counts`` holds only the steps that have ended: unset fields stay out of the answer
@router.post("", status_code=202, response_model=CobRunOut, response_model_exclude_unset=True,
             responses={200: {"model": CobRunOut,
                              "description": "the date had already succeeded: that run"},
                        202: {"description": "the date's run, started now or still running"}})
async def close_of_business(body: CloseOfBusinessIn, request: Request, response: Response,
                            who: Annotated[Principal, require("cob:run")]) -> dict[str, Any]:
    """Start the date's run (202), or give the date's run as it is: still running (202),
    or already succeeded (200). Another date while one runs: 409. The answer's
    ``Location`` is the run."""
    run, _started = await start_close_of_business(runtime(request), body.business_date,
                                                  who.sub)
    async with runtime(request).pool.acquire() as conn:
        run = await runs.by_id(conn, run["run_id"]) or run
        snap = await runs.snapshot(conn, body.business_date)
    out = run_json(run, snap)
    response.status_code = 200 if out["status"] == "succeeded" else 202
    response.headers["Location"] = out["links"]["self"]
    return out


@router.get("", response_model=CobRunPage, response_model_exclude_unset=True)
async def close_of_business_runs(
    request: Request, who: Annotated[Principal, require("cob:run")],
    limit: Annotated[int, Query(ge=1, le=366)] = 60,
) -> dict[str, Any]:
    """The runs, newest business date first."""
    async with runtime(request).pool.acquire() as conn:
        rows = await runs.recent(conn, limit)
    return {"items": [run_json(r) for r in rows]}


@router.get("/{run_id}", response_model=CobRunOut, response_model_exclude_unset=True)
async def close_of_business_run(run_id: str, request: Request,
                                who: Annotated[Principal, require("cob:run")]
                                ) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        run = await runs.by_id(conn, run_id)
        if run is not None and run["status"] == "running":
            # alive only while someone holds the lock; a dead process's run is failed now
            await recover_stale_runs(conn)
            run = await runs.by_id(conn, run_id)
        if run is None:
            raise NotFound(f"close-of-business run {run_id} not found", field="run_id")
        snap = await runs.snapshot(conn, run["business_date"])
    return run_json(run, snap)
