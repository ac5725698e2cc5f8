"""Client lookup by phone, national ID or name, the client file and the KYC decision."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.session import CsrfChecked, OperatorSession
from console.upstream import Problem, Reply
from console.web import not_found, redirect, render, upstream

router = APIRouter()

KYC_DECISIONS = ("verified", "rejected")
SAVINGS_SHOWN = 200


@router.get("/clients")
async def lookup(request: Request, session: OperatorSession, phone: str = "",
                 national_id: str = "", q: str = "", kyc_status: str = "",
                 cursor: str = "") -> Response:
    params = {"phone": phone.strip(), "national_id": national_id.strip(), "q": q.strip(),
              "kyc_status": kyc_status.strip()}
    searched = any(params.values())
    reply = await upstream(request).get("clients", "/v1/clients", session.token,
                                        {**params, "cursor": cursor}) if searched else None
    return render(request, "clients.html", reply=reply, results=reply.items() if reply else [],
                  searched=searched, phone=params["phone"], national_id=params["national_id"],
                  q=params["q"], kyc_status=params["kyc_status"],
                  next_cursor=reply.obj().get("next_cursor") if reply else None)


async def named(request: Request, collection: str, id_: str, token: str) -> Reply:
    """An office or a staff member by id, for its name; no call without an id."""
    if not id_:
        return Reply("clients", "GET", collection, 204)
    return await upstream(request).get("clients", f"{collection}/{quote(id_, safe='')}", token)


async def client_page(request: Request, client_id: str, token: str,
                      problem: Problem | None = None, status: int = 200) -> Response:
    up = upstream(request)
    client, credit, loans, messages, savings = await up.gather(
        up.get("clients", f"/v1/clients/{client_id}", token),
        up.get("clients", f"/v1/clients/{client_id}/credit", token),
        up.get("loans", "/v1/loans", token, {"client_id": client_id}),
        up.get("notifications", "/v1/messages", token, {"client_id": client_id}),
        up.get("savings", "/v1/savings/accounts", token,
               {"client_id": client_id, "limit": SAVINGS_SHOWN}),
    )
    data = client.obj()
    # the client's office and loan officer by name (clients gives their ids)
    office_id, officer_id = str(data.get("office_id") or ""), str(data.get("officer_id") or "")
    office, officer = await up.gather(
        named(request, "/v1/offices", office_id, token),
        named(request, "/v1/staff", officer_id, token))
    # outside the operator's office (or another partner's) clients answers 404: so does
    # the page, with its panel
    code = not_found(client) if status == 200 else status
    return render(request, "client.html", code=code, client_id=client_id, client=client,
                  data=data, credit=credit, loans=loans, messages=messages,
                  savings=savings, savings_limit=SAVINGS_SHOWN,
                  office=office.obj(), officer=officer.obj(),
                  problem=problem, decisions=KYC_DECISIONS)


@router.get("/clients/{client_id}")
async def client_detail(request: Request, client_id: str, session: OperatorSession
                        ) -> Response:
    return await client_page(request, client_id, session.token)


@router.post("/clients/{client_id}/kyc", dependencies=[CsrfChecked])
async def kyc(request: Request, client_id: str, session: OperatorSession,
              decision: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = ""
              ) -> Response:
    body: dict[str, str] = {"decision": decision}
    if reason.strip():
        body["reason"] = reason.strip()
    reply = await upstream(request).post("clients", f"/v1/clients/{client_id}/kyc",
                                         session.token, json=body)
    if reply.ok:
        return redirect(f"/clients/{client_id}?flash=kyc_done", request)
    problem = reply.problem or Problem(reply.status, "clients", reply.error or "")
    return await client_page(request, client_id, session.token, problem=problem,
                             status=reply.status or 502)
