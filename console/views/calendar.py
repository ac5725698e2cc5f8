"""The business date and the calendar due dates move off: working weekdays and holidays
(add, rename, confirm a provisional Islamic date, move, remove)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.upstream import Reply
from console.views.business import today as business_today
from console.web import redirect, render, upstream

router = APIRouter()

WEEKDAYS = tuple(range(7))


def year_of(value: str) -> int:
    try:
        year = int(value)
    except ValueError:
        return business_today().year
    return year if 1900 < year < 2200 else business_today().year


@router.get("/calendar")
async def calendar(request: Request, session: OperatorSession, year: str = "") -> Response:
    """The business date, the working weekdays and one year's holidays (loans answers a
    span whole: no cursor to follow)."""
    chosen = year_of(year)
    up = upstream(request)
    business, working, holidays = await up.gather(
        up.get("loans", "/v1/business-date", session.token),
        up.get("loans", "/v1/calendar/working-days", session.token),
        up.get("loans", "/v1/calendar/holidays", session.token,
               {"from": f"{chosen}-01-01", "to": f"{chosen}-12-31"}))
    days = working.obj().get("working_weekdays")
    return render(request, "calendar.html", business=business, working=working,
                  working_days=days if isinstance(days, list) else [], weekdays=WEEKDAYS,
                  holidays=holidays, rows=holidays.items(), year=chosen,
                  here=href("/calendar", year=chosen))


def done(request: Request, reply: Reply, back: str, flash: str) -> Response:
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=back)
    return redirect(with_flash(back, flash), request)


@router.post("/calendar/working-days", dependencies=[CsrfChecked])
async def set_working_days(request: Request, session: OperatorSession,
                           weekday: Annotated[list[str] | None, Form()] = None) -> Response:
    chosen = sorted({int(d) for d in weekday or [] if d.isdigit() and int(d) in WEEKDAYS})
    reply = await upstream(request).call("loans", "PUT", "/v1/calendar/working-days",
                                         session.token, json={"working_weekdays": chosen})
    return done(request, reply, "/calendar", "calendar_saved")


@router.post("/calendar/holidays", dependencies=[CsrfChecked])
async def add_holiday(request: Request, session: OperatorSession,
                      day: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
                      provisional: Annotated[str, Form()] = "") -> Response:
    body = {"date": day.strip(), "name": name.strip()[:120],
            "provisional": provisional == "on"}
    reply = await upstream(request).post("loans", "/v1/calendar/holidays", session.token,
                                         json=body)
    return done(request, reply, href("/calendar", year=day.strip()[:4]), "calendar_saved")


@router.post("/calendar/holidays/{day}", dependencies=[CsrfChecked])
async def change_holiday(request: Request, day: str, session: OperatorSession,
                         name: Annotated[str, Form()] = "",
                         new_date: Annotated[str, Form()] = "",
                         provisional: Annotated[str, Form()] = "",
                         action: Annotated[str, Form()] = "save") -> Response:
    path = f"/v1/calendar/holidays/{quote(day, safe='')}"
    back = href("/calendar", year=day[:4])
    if action == "remove":
        reply = await upstream(request).call("loans", "DELETE", path, session.token)
        return done(request, reply, back, "calendar_saved")
    body: dict[str, Any] = {"provisional": provisional == "on"}
    if name.strip():
        body["name"] = name.strip()[:120]
    if new_date.strip() and new_date.strip() != day:
        body["date"] = new_date.strip()
    reply = await upstream(request).call("loans", "PUT", path, session.token, json=body)
    return done(request, reply, back, "calendar_saved")
