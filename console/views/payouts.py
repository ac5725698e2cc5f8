"""Payouts in doubt: the queue, oldest first, and their settlement by two operators.

A payout the provider has not settled by its deadline is *in doubt* — not failed. When
the provider cannot answer at all, one operator proposes the outcome with the evidence
in hand and a different operator approves it (payments answers the proposer 403).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, next_href, open_proposals, with_flash
from console.session import CsrfChecked, OperatorSession, Session
from console.upstream import Problem, Reply
from console.web import redirect, render, upstream

router = APIRouter()

PAGE = 50
KINDS = ("disbursement", "refund")  # withdrawals in doubt are listed without a filter
OUTCOMES = ("completed", "failed")


@router.get("/payouts/in-doubt")
async def in_doubt(request: Request, session: OperatorSession, kind: str = "",
                   provider: str = "", cursor: str = "") -> Response:
    reply = await upstream(request).get(
        "payments", "/v1/payouts/in-doubt", session.token,
        {"limit": PAGE, "kind": kind.strip(), "provider": provider.strip(),
         "cursor": cursor})
    filters = {"kind": kind.strip(), "provider": provider.strip()}
    return render(request, "payouts_in_doubt.html", reply=reply, rows=reply.items(),
                  kinds=KINDS, cursor=cursor, kind=filters["kind"],
                  provider=filters["provider"],
                  next_href=next_href("/payouts/in-doubt", "cursor",
                                      reply.obj().get("next_cursor"), **filters),
                  first_href=href("/payouts/in-doubt", **filters))


async def payout_page(request: Request, session: Session, ref: str, *,
                      problem: Problem | None = None, status: int = 200,
                      form: dict[str, str] | None = None) -> Response:
    """One payout (by id or saga id): what payments knows, the operators' audit, the open
    settlement proposal and the forms."""
    up = upstream(request)
    token = session.token
    payout = await up.get("payments", f"/v1/payments/{quote(ref, safe='')}", token)
    data = payout.obj()
    payout_id = str(data.get("payout_id") or "")
    audit: Reply | None = None
    if payout_id:
        audit = await up.get("payments", f"/v1/payouts/{payout_id}/audit", token)
    entries = audit.items() if audit else []
    proposals = open_proposals(entries, "settlement")
    return render(request, "payout.html", code=status, ref=ref, payout=payout, data=data,
                  payout_id=payout_id, audit=audit, entries=entries,
                  proposal=proposals[0] if proposals else None, problem=problem,
                  outcomes=OUTCOMES, form=form or {}, form_key=str(uuid.uuid4()),
                  mine=bool(proposals) and proposals[0]["proposed_by"] == session.operator)


@router.get("/payouts/{ref}")
async def payout_detail(request: Request, ref: str, session: OperatorSession) -> Response:
    return await payout_page(request, session, ref)


def refusal(reply: Reply) -> Problem:
    return reply.problem or Problem(reply.status, "payments", reply.error or "")


@router.post("/payouts/{payout_id}/settlement", dependencies=[CsrfChecked])
async def propose(request: Request, payout_id: str, session: OperatorSession,
                  outcome: Annotated[str, Form()] = "",
                  evidence: Annotated[str, Form()] = "",
                  provider_reference: Annotated[str, Form()] = "",
                  idempotency_key: Annotated[str, Form()] = "") -> Response:
    """The maker's half: the outcome and the evidence; nothing is settled yet."""
    body: dict[str, Any] = {"outcome": outcome, "evidence": evidence.strip()}
    if provider_reference.strip():
        body["provider_reference"] = provider_reference.strip()
    reply = await upstream(request).call(
        "payments", "POST", f"/v1/payouts/{quote(payout_id, safe='')}/settlement",
        session.token, json=body, idempotency_key=idempotency_key or str(uuid.uuid4()))
    if reply.ok:
        return redirect(with_flash(f"/payouts/{payout_id}", "settlement_proposed"), request)
    return await payout_page(request, session, payout_id, problem=refusal(reply),
                             status=reply.status or 502,
                             form={"outcome": outcome, "evidence": evidence,
                                   "provider_reference": provider_reference})


@router.post("/payouts/{payout_id}/settlement/approve", dependencies=[CsrfChecked])
async def approve(request: Request, payout_id: str, session: OperatorSession,
                  note: Annotated[str, Form()] = "",
                  idempotency_key: Annotated[str, Form()] = "") -> Response:
    """The checker's half: another operator applies the proposal (its maker gets 403)."""
    reply = await upstream(request).call(
        "payments", "POST", f"/v1/payouts/{quote(payout_id, safe='')}/settlement/approve",
        session.token, json={"note": note.strip()[:500]},
        idempotency_key=idempotency_key or str(uuid.uuid4()))
    if reply.ok:
        return redirect(with_flash(f"/payouts/{payout_id}", "settlement_approved"), request)
    return await payout_page(request, session, payout_id, problem=refusal(reply),
                             status=reply.status or 502)
