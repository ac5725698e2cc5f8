"""Savings close of business over HTTP: a job started by POST and polled by GET.

1.24 million accounts take longer than any HTTP timeout, so the request only takes the
lock and claims the business date, and answers 202 with the run (``Location``: the
run); the dates are closed in a background task of this process
(``handlers/close_of_business.py``). ``python -m services.savings close-of-business
DATE`` and the daily schedule run the same steps in their own task.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.savings.api.deps import runtime, today
from services.savings.api.schemas import CloseOfBusinessIn, CobRunOut, CobRunPage
from services.savings.handlers.close_of_business import (
    STEPS,
    recover_stale_runs,
    start_close_of_business,
)
from services.savings.repository import cob_runs as runs
from shared.auth import Principal, require
from shared.errors import NotFound

PATH = "/v1/savings/close-of-business"
router = APIRouter(prefix=PATH, tags=["savings operations"])

Runner = Annotated[Principal, require("cob:run")]
STATUS = {"completed": "succeeded"}


def run_json(run: Any) -> dict[str, Any]:
    stats = dict(run["stats"] or {})
    status = STATUS.get(run["status"], run["status"])
    return {
        "run_id": run["run_id"],
        "business_date": run["business_date"],
        "status": status,
        "step": run["step"] if status == "running" else None,
        "requested_by": run["requested_by"] or stats.get("requested_by"),
        "attempts": run["attempts"],
        "started_at": run["started_at"],
        "heartbeat_at": run["heartbeat_at"],
        "finished_at": run["finished_at"],
        "seconds": stats.get("seconds"),
        "error": run["error"],
        "counts": {k: stats[k] for k in STEPS if isinstance(stats.get(k), int)},
        "caught_up": stats.get("caught_up", []),
        "links": {"self": f"{PATH}/{run['run_id']}"},
    }


@router.post("", status_code=202, response_model=CobRunOut,
             responses={200: {"model": CobRunOut,
                              "description": "the date had already succeeded: that run"},
                        202: {"description": "the date's run, started now or still running"}})
async def close_of_business(body: CloseOfBusinessIn, request: Request, response: Response,
                            who: Runner) -> dict[str, Any]:
    """Close ``business_date`` and every date before it not closed yet, in order: 202
    with the run (started now, or still running), or 200 with it when the date had
    already succeeded (it is not run again). Another date while one runs: 409; a date
    that has not ended yet, or before the last one closed: 422. ``Location`` is the
    run."""
    run, _started = await start_close_of_business(
        runtime(request), body.business_date, today=today(request), requested_by=who.sub)
    async with runtime(request).pool.acquire() as conn:
        run = await runs.by_id(conn, run["run_id"]) or run
    out = run_json(run)
    response.status_code = 200 if out["status"] == "succeeded" else 202
    response.headers["Location"] = out["links"]["self"]
    return out


@router.get("", response_model=CobRunPage)
async def close_of_business_runs(request: Request, who: Runner,
                                 limit: Annotated[int, Query(ge=1, le=366)] = 60
                                 ) -> dict[str, Any]:
    """The runs, newest business date first."""
    async with runtime(request).pool.acquire() as conn:
        rows = await runs.recent(conn, limit)
    return {"items": [run_json(r) for r in rows]}


@router.get("/{run_id}", response_model=CobRunOut)
async def close_of_business_run(run_id: str, request: Request, who: Runner
                                ) -> dict[str, Any]:
    """One run: ``running`` (with its step), ``succeeded`` (with its counts) or
    ``failed`` (with the error; starting the date again resumes it)."""
    async with runtime(request).pool.acquire() as conn:
        run = await runs.by_id(conn, run_id)
        if run is not None and run["status"] == "running":
            # alive only while someone holds the lock; a dead process's run is failed now
            await recover_stale_runs(conn)
            run = await runs.by_id(conn, run_id)
    if run is None:
        raise NotFound(f"close-of-business run {run_id} not found", field="run_id")
    return run_json(run)
