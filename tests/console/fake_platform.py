"""Small real HTTP servers standing in for the four services in the console's tests.

Each one is a FastAPI app served by uvicorn on a free loopback port, with the
platform's own auth (``shared.auth.require``) and problem+json error handlers,
answering with the same JSON shapes as the real services' routes. A test
arranges the state it needs and reads back what the console sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

from shared.auth import AuthError, Principal, require, verifier_for
from shared.errors import Conflict, NotFound
from shared.http import install_error_handlers
from shared.settings import OidcSettings
from tests.console.fake_loans import LoansState, install_loans, page_due
from tests.console.fake_more import OpsState, install_more, page


@dataclass
class Call:
    service: str
    method: str
    path: str
    sub: str
    body: Any = None


@dataclass
class State:
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit: dict[str, dict[str, Any]] = field(default_factory=dict)
    loans: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sagas: dict[str, dict[str, Any]] = field(default_factory=dict)
    portfolio: dict[str, Any] | None = None
    dead_letters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    sms_stats: dict[str, Any] = field(default_factory=dict)
    reconciliation: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    # endpoints a test turns on (None: the service answers 404, as before it offered them)
    installments_due: dict[str, Any] | None = None
    payments_day: dict[str, Any] | None = None
    held_refunds: list[dict[str, Any]] | None = None
    replays: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refund_retry_refusal: str | None = None
    ops: OpsState = field(default_factory=OpsState)
    """payouts in doubt, alerts, accounting, savings, organisation (fake_more)"""
    servicing: LoansState = field(default_factory=LoansState)
    """business date, calendar, servicing, loan requests, sheets, cash (fake_loans)"""

    def posts(self, service: str) -> list[Call]:
        return [c for c in self.calls if c.service == service and c.method == "POST"]


class KycIn(BaseModel):
    decision: str
    reason: str | None = None


class DecisionIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def build_service(name: str, state: State) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = verifier_for(OidcSettings())
    install_error_handlers(app)
    router = APIRouter()

    def record(request: Request, who: Principal, body: Any = None) -> None:
        if who.sub in state.revoked:
            raise AuthError("the token has been revoked")
        state.calls.append(Call(name, request.method, request.url.path, who.sub, body))

    @app.get("/health/ready")
    async def ready() -> dict[str, Any]:
        return {"ready": True, "checks": {"database": {"ok": True, "detail": "ok"}}}

    @router.get("/v1/dead-letters")
    async def dead_letters(request: Request, who: Annotated[Principal, require("dlq:read")],
                           pending_only: bool = True, key: str | None = None, after: int = 0,
                           limit: int = 100) -> list[dict[str, Any]]:
        record(request, who)
        rows = sorted(state.dead_letters.get(name, []), key=lambda r: r["id"])
        return [r for r in rows if (not pending_only or r["replayed_at"] is None)
                and (key is None or r["key"] == key) and r["id"] > after][:limit]

    @router.post("/v1/dead-letters/{dead_letter_id}/replay")
    async def replay(request: Request, dead_letter_id: int,
                     who: Annotated[Principal, require("dlq:replay")]) -> dict[str, Any]:
        record(request, who)
        for row in state.dead_letters.get(name, []):
            if row["id"] == dead_letter_id:
                row["replayed_at"] = _now()
                row["replay_count"] += 1
                return {"id": dead_letter_id, "outcome": "applied", "error": None}
        raise NotFound(f"no dead letter {dead_letter_id}", field="id")

    @router.post("/v1/dead-letters/replay-all")
    async def replay_all(request: Request,
                         who: Annotated[Principal, require("dlq:replay")]) -> list[dict[str, Any]]:
        record(request, who)
        out = []
        for row in state.dead_letters.get(name, []):
            if row["replayed_at"] is None:
                row["replayed_at"] = _now()
                row["replay_count"] += 1
                out.append({"id": row["id"], "outcome": "applied", "error": None})
        return out

    @router.get("/v1/dead-letters/replays")
    async def replays(request: Request, who: Annotated[Principal, require("dlq:read")],
                      limit: int = 100) -> dict[str, Any]:
        record(request, who)
        rows = state.replays.get(name, [])[:limit]
        return {"items": rows, "next_before": None}

    if name == "clients":
        @router.get("/v1/clients")
        async def search(request: Request, who: Annotated[Principal, require("clients:read")],
                         phone: str | None = None, national_id: str | None = None,
                         q: str | None = None, kyc_status: str | None = None
                         ) -> dict[str, Any]:
            record(request, who)
            found = [c for c in state.clients.values()
                     if (phone is None or c["phone"] == phone)
                     and (national_id is None or c["national_id"] == national_id)
                     and (q is None or q.lower() in c["full_name"].lower())
                     and (kyc_status is None or c["kyc_status"] == kyc_status)]
            return {"items": found, "next_cursor": None}

        @router.get("/v1/clients/{client_id}")
        async def get_client(request: Request, client_id: str,
                             who: Annotated[Principal, require("clients:read")]
                             ) -> dict[str, Any]:
            record(request, who)
            if client_id not in state.clients:
                raise NotFound(f"no client {client_id}", field="client_id")
            return state.clients[client_id]

        @router.get("/v1/clients/{client_id}/credit")
        async def credit(request: Request, client_id: str,
                         who: Annotated[Principal, require("clients:read")]) -> dict[str, Any]:
            record(request, who)
            if client_id not in state.credit:
                raise NotFound(f"no client {client_id}", field="client_id")
            return state.credit[client_id]

        @router.post("/v1/clients/{client_id}/kyc")
        async def kyc(request: Request, client_id: str, body: KycIn,
                      who: Annotated[Principal, require("clients:kyc")]) -> dict[str, Any]:
            record(request, who, body.model_dump())
            client = state.clients[client_id]
            if client["onboarded_by"] == who.sub:
                raise Conflict("the operator who onboarded a client cannot verify it",
                               field="decision")
            client["kyc_status"] = body.decision
            client["kyc_reason"] = body.reason
            return client

    if name == "loans":
        @router.get("/v1/loans")
        async def list_loans(request: Request, who: Annotated[Principal, require("loans:read")],
                             status: str | None = None, client_id: str | None = None,
                             limit: int = 100, after: str | None = None) -> dict[str, Any]:
            record(request, who)
            items = sorted((x for x in state.loans.values()
                            if (status is None or x["status"] == status)
                            and (client_id is None or x["client_id"] == client_id)
                            and (after is None or x["id"] > after)), key=lambda x: x["id"])
            page = items[:limit]
            return {"items": page, "next_after": page[-1]["id"] if len(page) == limit else None}

        @router.get("/v1/loans/{loan_id}")
        async def get_loan(request: Request, loan_id: str,
                           who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
            record(request, who)
            if loan_id not in state.loans:
                raise NotFound(f"loan {loan_id} not found", field="loan_id")
            return state.loans[loan_id]

        @router.get("/v1/loans/{loan_id}/schedule")
        async def schedule(request: Request, loan_id: str,
                           who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
            record(request, who)
            loan = state.loans[loan_id]
            installments = state.schedules.get(loan_id, [])
            repayable = sum((Decimal(i["total"]) for i in installments), Decimal("0.00"))
            return {"loan_id": loan_id, "status": loan["status"], "installments": installments,
                    "total_repayable": f"{repayable:.2f}", "outstanding": loan["outstanding"],
                    "repayments": []}

        @router.post("/v1/loans/{loan_id}/approve")
        async def approve(request: Request, loan_id: str,
                          who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
            record(request, who)
            loan = state.loans[loan_id]
            if loan["submitted_by"] == who.sub:
                raise Conflict("maker-checker: the operator who created the application "
                               "cannot approve it", field="approved_by")
            if loan["status"] != "submitted":
                raise Conflict(f"cannot approve a loan that is {loan['status']}",
                               field="status")
            loan["status"] = "approved"
            loan["decided_by"] = who.sub
            return {**loan, "saga_id": f"S-{loan_id}"}

        @router.post("/v1/loans/{loan_id}/reject")
        async def reject(request: Request, loan_id: str, body: DecisionIn,
                         who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
            record(request, who, body.model_dump())
            loan = state.loans[loan_id]
            loan["status"] = "rejected"
            loan["decision_reason"] = body.reason
            return loan

        @router.get("/v1/installments/due")
        async def installments_due(request: Request,
                                   who: Annotated[Principal, require("loans:read")],
                                   date: str | None = None, limit: int = 100,
                                   cursor: str | None = None) -> dict[str, Any]:
            record(request, who, dict(request.query_params))
            if state.servicing.due is not None:
                return page_due(state.servicing, date or "9999-12-31", limit, cursor)
            if state.installments_due is None:
                raise HTTPException(404)
            return state.installments_due

        @router.get("/v1/portfolio")
        async def portfolio(request: Request,
                            who: Annotated[Principal, require("loans:read")],
                            office_id: str | None = None, officer_id: str | None = None
                            ) -> dict[str, Any]:
            record(request, who, dict(request.query_params))
            if office_id or officer_id:
                scoped = state.servicing.portfolios.get((office_id or "", officer_id or ""))
                if scoped is None:
                    raise NotFound(f"no office {office_id}", field="office_id")
                return scoped
            if state.portfolio is None:
                raise NotFound("no portfolio")
            return state.portfolio

        @router.get("/v1/sagas")
        async def sagas(request: Request, who: Annotated[Principal, require("loans:read")],
                        loan_id: str | None = None) -> dict[str, Any]:
            record(request, who)
            wanted = request.query_params.get("state")
            items = [{k: v for k, v in s.items() if k != "timeline"}  # the detail has it
                     for s in state.sagas.values()
                     if (wanted is None or s["state"] == wanted)
                     and (loan_id is None or s["loan_id"] == loan_id)]
            counts: dict[str, int] = {}
            for s in state.sagas.values():
                counts[s["state"]] = counts.get(s["state"], 0) + 1
            return {"items": items, "counts": counts}

        @router.get("/v1/sagas/{saga_id}")
        async def saga(request: Request, saga_id: str,
                       who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
            record(request, who)
            if saga_id not in state.sagas:
                raise NotFound(f"saga {saga_id} not found", field="saga_id")
            return state.sagas[saga_id]

    if name == "payments":
        @router.get("/v1/payments")
        async def day_payments(request: Request,
                               who: Annotated[Principal, require("payments:read")],
                               date: str | None = None, kind: str | None = None,
                               limit: int = 100) -> dict[str, Any]:
            record(request, who, dict(request.query_params))
            if state.payments_day is None:
                raise HTTPException(404)
            items = [i for i in state.payments_day["items"] if kind in (None, i["kind"])]
            return {**state.payments_day, "items": items[:limit], "date": date,
                    "next_cursor": "more" if len(items) > limit else None}

        @router.get("/v1/refunds/held")
        async def held(request: Request,
                       who: Annotated[Principal, require("payments:read", "tenant:all")],
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       cursor: Annotated[str | None, Query(max_length=200)] = None
                       ) -> dict[str, Any]:
            record(request, who, dict(request.query_params))
            if state.held_refunds is None:
                raise HTTPException(404)
            # oldest first, keyset pages (retry_proposed* from the open proposals)
            rows = sorted(state.held_refunds, key=lambda r: (str(r.get("received_at")),
                                                             str(r["payment_id"])))
            chunk, nxt = page(rows, limit, cursor)
            items = []
            for r in chunk:
                proposal = state.ops.proposals.get(("refund_retry", r["payment_id"]))
                items.append({**r, "retry_proposed": proposal is not None,
                              "retry_proposed_by": proposal["proposed_by"] if proposal
                              else None,
                              "retry_proposed_at": proposal["proposed_at"] if proposal
                              else None})
            return {"items": items, "next_cursor": nxt}

        @router.post("/v1/refunds/{refund_id}/retry", status_code=202)
        async def retry_refund(request: Request, refund_id: str,
                               who: Annotated[Principal, require("payments:read", "tenant:all")]
                               ) -> dict[str, Any]:
            body = await request.json()
            record(request, who, {**body, "idempotency_key":
                                  request.headers.get("idempotency-key")})
            if state.refund_retry_refusal:
                raise Conflict(state.refund_retry_refusal, field="id")
            # proposed: another operator approves it (POST /v1/refunds/{id}/retry/approve)
            last = next((r.get("last_payout_id") for r in state.held_refunds or []
                         if r["payment_id"] == refund_id), None)
            proposal = state.ops.propose("refund_retry", refund_id, who.sub, body, last)
            return {"payment_id": refund_id, "status": "proposed", "proposal": proposal}

        @router.get("/v1/ledger/trial-balance")
        async def trial_balance(request: Request,
                                who: Annotated[Principal, require("ledger:read", "tenant:all")]
                                ) -> dict[str, Any]:
            record(request, who)
            return {"total_debits": "5000.00", "total_credits": "5000.00",
                    "lines_debits": "5000.00", "lines_credits": "5000.00", "balanced": True,
                    "by_kind": [{"kind": "loan_portfolio", "normal_side": "debit",
                                 "accounts": 1, "debits": "5000.00", "credits": "0.00",
                                 "balance": "5000.00"}]}

        @router.get("/v1/accounts/{account_id}/statement")
        async def statement(request: Request, account_id: str,
                            who: Annotated[Principal, require("ledger:read", "tenant:all")]
                            ) -> dict[str, Any]:
            record(request, who)
            if account_id not in state.statements:
                raise NotFound(f"no account {account_id}", field="account_id")
            return state.statements[account_id]

        @router.get("/v1/reconciliation/{provider}/{day}")
        async def reconciliation(request: Request, provider: str, day: str,
                                 who: Annotated[Principal, require("ledger:read", "tenant:all")]
                                 ) -> dict[str, Any]:
            record(request, who)
            if (provider, day) not in state.reconciliation:
                raise NotFound(f"no mobile-money provider named {provider!r}",
                               field="provider")
            return state.reconciliation[(provider, day)]

    if name == "notifications":
        @router.get("/v1/messages")
        async def messages(request: Request, who: Annotated[Principal, require("messages:read")],
                           client_id: str | None = None, loan_id: str | None = None
                           ) -> list[dict[str, Any]]:
            record(request, who)
            return [m for m in state.messages
                    if (client_id is None or m["client_id"] == client_id)
                    and (loan_id is None or m["loan_id"] == loan_id)]

        @router.post("/v1/messages/{message_id}/resend", status_code=201)
        async def resend(request: Request, message_id: str,
                         who: Annotated[Principal, require("messages:resend")]
                         ) -> dict[str, Any]:
            record(request, who)
            original = next(m for m in state.messages if m["id"] == message_id)
            copy = {**original, "id": f"{message_id}-r", "status": "queued",
                    "resend_of": message_id}
            state.messages.append(copy)
            return copy

        @router.get("/v1/sms/stats")
        async def sms_stats(request: Request,
                            who: Annotated[Principal, require("messages:read")]
                            ) -> dict[str, Any]:
            record(request, who)
            return state.sms_stats

    if name == "loans":
        install_loans(router, state.servicing, record, state.loans)
    install_more(name, router, state.ops, record, lambda: state.held_refunds or [])
    app.include_router(router)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """A uvicorn server running in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake service did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
