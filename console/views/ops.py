"""The machinery: platform health, sagas, dead letters, reconciliation, SMS."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console import present
from console.session import CsrfChecked, OperatorSession
from console.upstream import SERVICES
from console.views.business import today as business_today
from console.web import redirect, render, safe_next, upstream

router = APIRouter()

SAGA_STATES = ("reserving_credit", "validating_payees", "holding_savings", "disbursing",
               "in_doubt", "compensating", "failed", "credit_rejected", "compensated",
               "completed")
# in doubt: the payout's outcome is unknown until the provider answers (not a failure,
# but open, and shown with how long it has been waiting)
# validating payees: a group saga asks the provider whether each member's wallet can
# receive money before any payout; a lookup without an answer is asked again and can wait.
# holding savings: the compulsory savings the product requires are held before the pivot;
# a saga waits here until the client has deposited them
NEEDING_ATTENTION = ("reserving_credit", "validating_payees", "holding_savings", "disbursing",
                     "in_doubt", "compensating", "failed")
IN_FLIGHT = ("reserving_credit", "validating_payees", "holding_savings", "disbursing",
             "compensating")
DLQ_SERVICES = SERVICES
SMS_COUNTS = ("sent", "delivered", "failed", "expired", "queued", "suppressed", "segments")
RECON_STATUSES = ("matched", "amount_mismatch", "ours_only", "theirs_only")
REPLAYS_SHOWN = 50
SAGAS_PAGE = 500
DLQ_PAGE = 500
RECON_SHOWN = 200


@router.get("/fragments/health")
async def health_strip(request: Request, session: OperatorSession) -> Response:
    health = await upstream(request).readiness()
    return render(request, "health_strip.html", health=health)


@router.get("/sagas")
async def sagas(request: Request, session: OperatorSession, state: str = "",
                loan_id: str = "") -> Response:
    up = upstream(request)
    loan_id = loan_id.strip()
    states = [state] if state else list(NEEDING_ATTENTION)
    replies = await up.gather(*(up.get("loans", "/v1/sagas", session.token,
                                       {"state": s, "limit": SAGAS_PAGE, "loan_id": loan_id})
                                for s in states))
    by_state = dict(zip(states, replies, strict=True))
    running = [row for s in IN_FLIGHT if s in by_state for row in by_state[s].items()]
    stuck = present.oldest(running, "created_at", "updated_at")
    doubtful = by_state["in_doubt"].items() if "in_doubt" in by_state else []
    oldest_doubt = present.oldest(doubtful, "in_doubt_since", "updated_at")
    counts = next((r.obj().get("counts") for r in replies if r.ok), None) or {}
    return render(request, "sagas.html", by_state=by_state, state=state, states=SAGA_STATES,
                  stuck=stuck, oldest_doubt=oldest_doubt, counts=counts, loan_id=loan_id,
                  limit=SAGAS_PAGE)


@router.get("/sagas/{saga_id}")
async def saga_detail(request: Request, saga_id: str, session: OperatorSession) -> Response:
    saga = await upstream(request).get("loans", f"/v1/sagas/{saga_id}", session.token)
    return render(request, "saga.html", saga_id=saga_id, saga=saga, data=saga.obj())


@router.get("/dead-letters")
async def dead_letters(request: Request, session: OperatorSession, show: str = "pending",
                       replayed: str = "", outcome: str = "", ok: int | None = None,
                       n: int | None = None, service: str = "", topic: str = "",
                       reason: str = "") -> Response:
    up = upstream(request)
    replies = await up.gather(*(
        up.get(s, "/v1/dead-letters", session.token,
               {"pending_only": "false" if show == "all" else "true", "limit": DLQ_PAGE})
        for s in DLQ_SERVICES))
    per_service = dict(zip(DLQ_SERVICES, replies, strict=True))
    audits = await up.gather(*(
        up.get(s, "/v1/dead-letters/replays", session.token, {"limit": REPLAYS_SHOWN})
        for s in DLQ_SERVICES))
    replay_audit = dict(zip(DLQ_SERVICES, audits, strict=True))
    recent_replays = sorted(
        ({**row, "service": s} for s, r in replay_audit.items() for row in r.items()),
        key=lambda row: str(row.get("replayed_at", "")), reverse=True)[:REPLAYS_SHOWN]
    # a queue: the oldest dead letter first, whichever service holds it
    everything = sorted(
        ({**row, "service": s} for s, r in per_service.items() for row in r.items()),
        key=lambda row: str(row.get("created_at") or ""))
    wanted = {"service": service, "topic": topic, "reason": reason}
    rows = [r for r in everything
            if all(not v or str(r.get(k, "")) == v for k, v in wanted.items())]
    return render(request, "dead_letters.html", per_service=per_service, rows=rows,
                  total=len(everything), groups=present.group_dead_letters(everything),
                  show=show, replayed=replayed, outcome=outcome, replayed_ok=ok,
                  replayed_n=n, filtered={k: v for k, v in wanted.items() if v},
                  replay_audit=replay_audit, recent_replays=recent_replays, limit=DLQ_PAGE)


@router.post("/dead-letters/{service}/{dead_letter_id}/replay", dependencies=[CsrfChecked])
async def replay_one(request: Request, service: str, dead_letter_id: int,
                     session: OperatorSession) -> Response:
    if service not in DLQ_SERVICES:
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    reply = await upstream(request).post(service, f"/v1/dead-letters/{dead_letter_id}/replay",
                                         session.token)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back="/dead-letters")
    outcome = str(reply.obj().get("outcome", ""))
    query = urlencode({"flash": "replayed", "replayed": f"{service}#{dead_letter_id}",
                       "outcome": outcome})
    return redirect(f"/dead-letters?{query}", request)


@router.post("/dead-letters/{service}/replay-all", dependencies=[CsrfChecked])
async def replay_all(request: Request, service: str, session: OperatorSession) -> Response:
    if service not in DLQ_SERVICES:
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    reply = await upstream(request).post(service, "/v1/dead-letters/replay-all", session.token)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back="/dead-letters")
    results = reply.items()
    good = sum(1 for r in results if r.get("outcome") in ("applied", "duplicate", "ignored"))
    query = urlencode({"flash": "replayed_all", "replayed": service, "n": len(results),
                       "ok": good})
    return redirect(f"/dead-letters?{query}", request)


@router.get("/reconciliation")
async def reconciliation(request: Request, session: OperatorSession, provider: str = "",
                         date: str = "") -> Response:
    providers = request.app.state.settings.provider_names()
    provider = provider or (providers[0] if providers else "")
    day = date or (business_today() - dt.timedelta(days=1)).isoformat()
    reply = await upstream(request).get("payments", f"/v1/reconciliation/{provider}/{day}",
                                        session.token)
    data = reply.obj()
    items = [{**item, "status": status} for status in RECON_STATUSES
             for item in (data.get(status) or []) if isinstance(item, dict)]
    unmatched = [i for i in items if i["status"] != "matched"]
    # A bad day can have thousands: the page shows the first ones and says how many
    # more there are (the API has them all), rather than growing without bound.
    return render(request, "reconciliation.html", providers=providers, provider=provider,
                  day=day, reply=reply, data=data, items=items,
                  unmatched=unmatched[:RECON_SHOWN],
                  unmatched_more=max(0, len(unmatched) - RECON_SHOWN))


@router.get("/sms")
async def sms(request: Request, session: OperatorSession) -> Response:
    reply = await upstream(request).get("notifications", "/v1/sms/stats", session.token)
    data = reply.obj()
    rows = [r for r in data.get("by_provider_language") or [] if isinstance(r, dict)]
    totals: dict[str, int] = {}
    encodings: dict[str, int] = {}
    for row in rows:
        for key in SMS_COUNTS:
            totals[key] = totals.get(key, 0) + int(row.get(key) or 0)
        for name, n in (row.get("encodings") or {}).items():
            encodings[name] = encodings.get(name, 0) + int(n or 0)
    opt_outs = data.get("opt_outs") if isinstance(data.get("opt_outs"), dict) else {}
    return render(request, "sms.html", reply=reply, rows=rows, totals=totals,
                  encodings=encodings, opt_outs=opt_outs, counts=SMS_COUNTS)


@router.post("/messages/{message_id}/resend", dependencies=[CsrfChecked])
async def resend(request: Request, message_id: str, session: OperatorSession,
                 back: Annotated[str, Form()] = "/sms") -> Response:
    reply = await upstream(request).post("notifications", f"/v1/messages/{message_id}/resend",
                                         session.token)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=safe_next(back))
    target = safe_next(back)
    return redirect(f"{target}{'&' if '?' in target else '?'}flash=resent", request)
