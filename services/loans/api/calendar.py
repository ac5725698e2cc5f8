"""The business date and the calendar (working days, holidays) due dates move off.

Reading is for every ``loans:read`` token; changing the calendar is an operator's
(``products:write``, as the rest of the product configuration), and every change is
recorded in ``calendar_audit`` (``GET /v1/calendar/audit``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field, StrictBool, StrictInt

from services.loans.api.deps import operator_only, runtime
from services.loans.api.schemas import Body, Out, Timestamp
from services.loans.repository import calendar as calendar_repo
from shared.auth import Principal, require
from shared.clock import BUSINESS_TZ, today
from shared.errors import Conflict, InvalidInput, NotFound

router = APIRouter(tags=["calendar"])


class BusinessDateOut(Out):
    business_date: dt.date = Field(description="the date being worked: the day after the "
                                               "last date closed (today before any close)")
    last_closed: dt.date | None
    calendar_date: dt.date = Field(description="today in Africa/Casablanca")
    nights_behind: int = Field(description="dates close of business has yet to close before "
                                           "today (caught up by the next run)")
    timezone: str


class WorkingDaysIn(Body):
    working_weekdays: Annotated[list[StrictInt], Field(
        min_length=1, max_length=7, description="0 = Monday … 6 = Sunday")]


class WorkingDaysOut(Out):
    working_weekdays: list[int]


class HolidayIn(Body):
    date: dt.date
    name: Annotated[str, Field(min_length=1, max_length=120)]
    provisional: StrictBool = False


class HolidayUpdateIn(Body):
    date: dt.date | None = Field(default=None, description="a new date (a confirmed "
                                                           "Islamic holiday moved)")
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    provisional: StrictBool | None = None


class HolidayOut(Out):
    date: dt.date
    name: str
    provisional: bool
    updated_by: str
    updated_at: Timestamp


class HolidayPage(Out):
    items: list[HolidayOut]


class AuditEntryOut(Out):
    id: int
    at: Timestamp
    by: str
    action: str
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(Out):
    items: list[AuditEntryOut]


@router.get("/v1/business-date", response_model=BusinessDateOut)
async def business_date(request: Request,
                        who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    """The institution's business date, owned by loans and advanced by close of business."""
    now = today()
    async with runtime(request).pool.acquire() as conn:
        row = await calendar_repo.business_date(conn)
    current = row["business_date"] if row else now
    return {"business_date": current, "last_closed": row["last_closed"] if row else None,
            "calendar_date": now, "nights_behind": max((now - current).days, 0),
            "timezone": str(BUSINESS_TZ)}


@router.get("/v1/calendar/working-days", response_model=WorkingDaysOut)
async def working_days(request: Request,
                       who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        days = await calendar_repo.working_days(conn)
    return {"working_weekdays": [d for d, working in days.items() if working]}


@router.put("/v1/calendar/working-days", response_model=WorkingDaysOut)
async def set_working_days(body: WorkingDaysIn, request: Request,
                           who: Annotated[Principal, require("products:write")]
                           ) -> dict[str, Any]:
    operator_only(who)
    if any(not 0 <= d <= 6 for d in body.working_weekdays):
        raise InvalidInput("weekdays are 0 (Monday) to 6 (Sunday)", field="working_weekdays")
    chosen = set(body.working_weekdays)
    async with runtime(request).uow() as uow:
        await calendar_repo.set_working_days(uow.conn, {d: d in chosen for d in range(7)},
                                             who.sub)
        await uow.commit()
    return {"working_weekdays": sorted(chosen)}


@router.get("/v1/calendar/holidays", response_model=HolidayPage)
async def list_holidays(request: Request, who: Annotated[Principal, require("loans:read")],
                        start: Annotated[dt.date | None, Query(alias="from")] = None,
                        end: Annotated[dt.date | None, Query(alias="to")] = None,
                        ) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        rows = await calendar_repo.holidays(conn, start, end)
    return {"items": [calendar_repo.holiday_json(r) for r in rows]}


@router.post("/v1/calendar/holidays", status_code=201, response_model=HolidayOut)
async def create_holiday(body: HolidayIn, request: Request,
                         who: Annotated[Principal, require("products:write")]
                         ) -> dict[str, Any]:
    operator_only(who)
    async with runtime(request).uow() as uow:
        if await calendar_repo.holiday(uow.conn, body.date) is not None:
            raise Conflict(f"{body.date} is already a holiday; PUT it to change it",
                           field="date")
        row = await calendar_repo.upsert_holiday(uow.conn, body.date, body.name,
                                                 body.provisional, who.sub)
        await uow.commit()
    return calendar_repo.holiday_json(row)


@router.put("/v1/calendar/holidays/{day}", response_model=HolidayOut)
async def update_holiday(day: dt.date, body: HolidayUpdateIn, request: Request,
                         who: Annotated[Principal, require("products:write")]
                         ) -> dict[str, Any]:
    """Rename, confirm (``provisional: false``) or move a holiday to another date."""
    operator_only(who)
    async with runtime(request).uow() as uow:
        before = await calendar_repo.holiday(uow.conn, day, lock=True)
        if before is None:
            raise NotFound(f"no holiday on {day}", field="day")
        name = body.name if body.name is not None else before["name"]
        provisional = (body.provisional if body.provisional is not None
                       else before["provisional"])
        if body.date is not None and body.date != day:
            if await calendar_repo.holiday(uow.conn, body.date) is not None:
                raise Conflict(f"{body.date} is already a holiday", field="date")
            row = await calendar_repo.move_holiday(uow.conn, day, body.date, name,
                                                   provisional, who.sub)
        else:
            row = await calendar_repo.upsert_holiday(uow.conn, day, name, provisional,
                                                     who.sub)
        await uow.commit()
    return calendar_repo.holiday_json(row)


@router.delete("/v1/calendar/holidays/{day}", response_model=HolidayOut)
async def delete_holiday(day: dt.date, request: Request,
                         who: Annotated[Principal, require("products:write")]
                         ) -> dict[str, Any]:
    """Remove a holiday; the answer is the holiday as it was."""
    operator_only(who)
    async with runtime(request).uow() as uow:
        before = await calendar_repo.holiday(uow.conn, day, lock=True)
        if before is None or not await calendar_repo.delete_holiday(uow.conn, day, who.sub):
            raise NotFound(f"no holiday on {day}", field="day")
        await uow.commit()
    return calendar_repo.holiday_json(before)


@router.get("/v1/calendar/audit", response_model=AuditPage)
async def calendar_audit(request: Request, who: Annotated[Principal, require("loans:read")],
                         limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    operator_only(who)
    async with runtime(request).pool.acquire() as conn:
        items = await calendar_repo.audit_log(conn, limit)
    return {"items": items}
