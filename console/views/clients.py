"""Client lookup by phone, national ID or name, the client file and the KYC decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.session import CsrfChecked, OperatorSession
from console.upstream import Problem
from console.web import redirect, render, upstream

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
    return render(request, "client.html", code=status, client_id=client_id, client=client,
                  data=client.obj(), credit=credit, loans=loans, messages=messages,
                  savings=savings, savings_limit=SAVINGS_SHOWN,
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
