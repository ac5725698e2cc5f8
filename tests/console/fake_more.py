"""The fake services' routes for payouts in doubt, refund-retry approval, reconciliation
alerts, accounting, savings and the organisation — in the real services' shapes
(``test_fake_matches_openapi`` checks them), with the real rules a page must show:
maker-checker (the proposer gets 403), one open proposal (409), a note required (422),
the scopes each write needs (``payouts:settle``, ``reconciliation:resolve``), an
``Idempotency-Key`` on accounting writes (422 naming it when missing; the same key answers
the first response) and keyset pages that end with ``next_cursor: null``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from shared.auth import Principal, require
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound

Record = Callable[..., None]
OPERATOR = ("payments:read", "tenant:all")
SETTLE = ("payouts:settle", "tenant:all")
RETRY = ("refunds:retry", "tenant:all")
RESOLVE = ("reconciliation:resolve", "tenant:all")
LEDGER = ("ledger:read", "tenant:all")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class OpsState:
    """What a console test arranges for the newer pages, and what the console changed."""

    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """payout id → the payout (``PayoutOut`` fields, with ``queries`` and ``reason``)."""
    proposals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(kind, target id) → the open proposal (``settlement`` / ``refund_retry``)."""
    audit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    gl: list[dict[str, Any]] = field(default_factory=list)
    gl_lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statement_calls: list[dict[str, str]] = field(default_factory=list)
    journals: list[dict[str, Any]] = field(default_factory=list)
    closed_periods: list[dict[str, Any]] = field(default_factory=list)
    savings_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    savings_lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    savings_withdrawals: list[dict[str, Any]] = field(default_factory=list)
    savings_products: list[dict[str, Any]] = field(default_factory=list)
    offices: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    """(scope, Idempotency-Key) → the first answer (status, body) of an accounting write."""
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def log(self, payout_id: str | None, action: str, actor: str, approval_id: int,
            detail: dict[str, Any]) -> None:
        if payout_id:
            self.audit.setdefault(payout_id, []).append(
                {"action": action, "actor": actor, "at": now(), "approval_id": approval_id,
                 "detail": detail})

    def propose(self, kind: str, target: str, who: str, body: dict[str, Any],
                payout_id: str | None) -> dict[str, Any]:
        if (kind, target) in self.proposals:
            raise Conflict(f"a {kind.replace('_', ' ')} of {target} is already proposed and "
                           "waits for another operator's approval", field="id",
                           state="proposed")
        proposal = {"proposal_id": self.new_id(), "kind": kind, "target_id": target,
                    "status": "proposed", "body": body, "proposed_by": who,
                    "proposed_at": now(), "approved_by": None, "approved_at": None}
        self.proposals[(kind, target)] = proposal
        self.log(payout_id, f"{kind}_proposed", who, proposal["proposal_id"], body)
        return proposal

    def approve(self, kind: str, target: str, who: str, payout_id: str | None,
                note: str) -> dict[str, Any]:
        proposal = self.proposals.get((kind, target))
        if proposal is None:
            raise Conflict(f"no {kind.replace('_', ' ')} of {target} waits for approval",
                           field="id")
        if proposal["proposed_by"] == who:
            raise Forbidden(f"the operator who proposed a {kind.replace('_', ' ')} cannot "
                            "approve it: another operator must", field="sub")
        del self.proposals[(kind, target)]
        done = {**proposal, "status": "approved", "approved_by": who, "approved_at": now()}
        self.log(payout_id, f"{kind}_approved", who, proposal["proposal_id"],
                 {**proposal["body"], "note": note})
        return done


class SettlementIn(BaseModel):
    outcome: str
    evidence: Annotated[str, Field(min_length=1, max_length=2000)]
    provider_reference: str | None = None


class NoteIn(BaseModel):
    note: str = ""


class ResolveIn(BaseModel):
    note: Annotated[str, Field(min_length=1, max_length=500)]


class RunIn(BaseModel):
    provider: str
    date: dt.date | None = None


class ReasonIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def page(items: list[dict[str, Any]], limit: int, cursor: str | None
         ) -> tuple[list[dict[str, Any]], str | None]:
    """A keyset-like page: the cursor is the index after the last item given."""
    start = int(cursor) if cursor and cursor.isdigit() else 0
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return chunk, str(start + limit) if more else None


def in_doubt_view(p: dict[str, Any], proposal: dict[str, Any] | None) -> dict[str, Any]:
    since = dt.datetime.fromisoformat(p["in_doubt_since"])
    return {"payout_id": p["payout_id"], "kind": p["kind"], "saga_id": p["saga_id"],
            "loan_id": p["loan_id"], "payment_id": p["payment_id"], "msisdn": p["msisdn"],
            "amount": p["amount"], "currency": p["currency"], "provider": p["provider"],
            "deadline": p["deadline"], "in_doubt_since": p["in_doubt_since"],
            "age_s": round((dt.datetime.now(dt.UTC) - since).total_seconds(), 3),
            "reason": p.get("reason"), "queries": p.get("queries", 0), "proposal": proposal}


def payout_view(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k not in ("queries", "reason")}


def install_payments(router: APIRouter, ops: OpsState, record: Record,
                     held: Callable[[], list[dict[str, Any]]]) -> None:
    @router.get("/v1/payouts/in-doubt")
    async def in_doubt(request: Request, who: Annotated[Principal, require(*OPERATOR)],
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       cursor: str | None = None, kind: str | None = None,
                       provider: str | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = sorted((p for p in ops.payouts.values() if p["status"] == "in_doubt"
                       and kind in (None, p["kind"]) and provider in (None, p["provider"])),
                      key=lambda p: (p["in_doubt_since"], p["payout_id"]))
        chunk, nxt = page(rows, limit, cursor)
        return {"items": [in_doubt_view(p, ops.proposals.get(("settlement", p["payout_id"])))
                          for p in chunk], "next_cursor": nxt}

    @router.get("/v1/payments/{payment_id}")
    async def payment(request: Request, payment_id: str,
                      who: Annotated[Principal, require("payments:read")]) -> dict[str, Any]:
        record(request, who)
        for p in ops.payouts.values():
            if payment_id in (p["payout_id"], p["saga_id"]):
                return payout_view(p)
        raise NotFound(f"no payment {payment_id}", field="payment_id")

    @router.post("/v1/payouts/{payout_id}/settlement", status_code=202)
    async def propose(request: Request, payout_id: str, body: SettlementIn,
                      who: Annotated[Principal, require(*SETTLE)]) -> dict[str, Any]:
        record(request, who, {**body.model_dump(),
                              "idempotency_key": request.headers.get("idempotency-key")})
        if body.outcome not in ("completed", "failed"):
            raise InvalidInput("outcome must be completed or failed", field="outcome")
        if body.outcome == "completed" and not body.provider_reference:
            raise InvalidInput("a payout settled as completed needs the provider's "
                               "transaction reference", field="provider_reference")
        payout = ops.payouts.get(payout_id)
        if payout is None:
            raise NotFound(f"no payout {payout_id}", field="id")
        if payout["status"] != "in_doubt":
            raise Conflict(f"payout {payout_id} is {payout['status']}; only a payout in doubt "
                           "can be settled by an operator", field="id")
        proposal = ops.propose("settlement", payout_id, who.sub, body.model_dump(), payout_id)
        return {"payout_id": payout_id, "status": "proposed", "proposal": proposal}

    @router.post("/v1/payouts/{payout_id}/settlement/approve")
    async def approve(request: Request, payout_id: str,
                      who: Annotated[Principal, require(*SETTLE)],
                      body: NoteIn | None = None) -> dict[str, Any]:
        record(request, who, {**(body.model_dump() if body else {}),
                              "idempotency_key": request.headers.get("idempotency-key")})
        payout = ops.payouts.get(payout_id)
        if payout is None:
            raise NotFound(f"no payout {payout_id}", field="id")
        done = ops.approve("settlement", payout_id, who.sub, payout_id,
                           body.note if body else "")
        payout.update(status=done["body"]["outcome"], resolved_by="operator",
                      provider_reference=done["body"].get("provider_reference"),
                      completed_at=now())
        return {"payout_id": payout_id, "status": "approved", "proposal": done,
                "payout": payout_view(payout)}

    @router.get("/v1/payouts/{payout_id}/audit")
    async def audit(request: Request, payout_id: str,
                    who: Annotated[Principal, require(*OPERATOR)]) -> dict[str, Any]:
        record(request, who)
        known = set(ops.payouts) | set(ops.audit) | {
            str(r.get("last_payout_id")) for r in held() if r.get("last_payout_id")}
        if payout_id not in known:
            raise NotFound(f"no payout {payout_id}", field="id")
        return {"payout_id": payout_id, "items": ops.audit.get(payout_id, [])}

    @router.post("/v1/refunds/{refund_id}/retry/approve", status_code=202)
    async def approve_retry(request: Request, refund_id: str,
                            who: Annotated[Principal, require(*RETRY)],
                            body: NoteIn | None = None) -> dict[str, Any]:
        record(request, who, {**(body.model_dump() if body else {}),
                              "idempotency_key": request.headers.get("idempotency-key")})
        row = next((r for r in held() if r["payment_id"] == refund_id), None)
        if row is None:
            raise NotFound(f"no refund {refund_id}", field="id")
        done = ops.approve("refund_retry", refund_id, who.sub, row.get("last_payout_id"),
                           body.note if body else "")
        payout_id = f"{refund_id}-retry"
        return {"payment_id": refund_id, "payout_id": payout_id, "status": "pending",
                "retry": {"attempt": int(row.get("retries") or 0) + 1, "payout_id": payout_id,
                          "previous_payout_id": row.get("last_payout_id"),
                          "amount": row["amount"], "msisdn": row.get("msisdn") or "",
                          "requested_by": done["proposed_by"],
                          "requested_at": done["proposed_at"],
                          "note": done["body"].get("note", ""), "approved_by": who.sub,
                          "mode": "new_attempt"}}

    @router.get("/v1/reconciliation/alerts")
    async def alerts(request: Request, who: Annotated[Principal, require(*OPERATOR)],
                     provider: str | None = None, date: dt.date | None = None,
                     status: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     cursor: str | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = sorted((a for a in ops.alerts if provider in (None, a["provider"])
                       and (date is None or a["business_date"] == date.isoformat())
                       and status in (None, a["status"])),
                      key=lambda a: (a["raised_at"], a["id"]))
        chunk, nxt = page(rows, limit, cursor)
        return {"items": chunk, "next_cursor": nxt}

    @router.post("/v1/reconciliation/alerts/{alert_id}/resolve")
    async def resolve(request: Request, alert_id: str, body: ResolveIn,
                      who: Annotated[Principal, require(*RESOLVE)]) -> dict[str, Any]:
        record(request, who, body.model_dump())
        alert = next((a for a in ops.alerts if a["id"] == alert_id), None)
        if alert is None:
            raise NotFound(f"no reconciliation alert {alert_id}", field="alert_id")
        if alert["status"] != "open":
            raise Conflict(f"alert {alert_id} was already resolved by {alert['resolved_by']}",
                           field="alert_id")
        alert.update(status="resolved", resolved_at=now(), resolved_by=who.sub,
                     resolution_note=body.note)
        return alert

    @router.post("/v1/reconciliation/runs")
    async def run(request: Request, body: RunIn,
                  who: Annotated[Principal, require(*OPERATOR)]) -> dict[str, Any]:
        record(request, who, body.model_dump(mode="json"))
        day = (body.date or dt.date.today()).isoformat()
        ops.runs.append({"provider": body.provider, "date": day, "by": who.sub})
        return {"provider": body.provider, "date": day, "matched": [], "amount_mismatch": [],
                "ours_only": [], "theirs_only": [],
                "summary": {"matched": 0, "amount_mismatch": 0, "ours_only": 0,
                            "theirs_only": 0, "reconciled": True},
                "run": {"provider": body.provider, "date": day, "alerts_raised": 0}}

    def statement(request: Request, kind: str, head: dict[str, Any],
                  data: dict[str, Any], fmt: str | None) -> Response:
        ops.statement_calls.append({"statement": kind, **{k: str(v) for k, v in
                                                          request.query_params.items()}})
        if fmt == "csv" or "text/csv" in request.headers.get("accept", ""):
            rows = ["section,code,balance"] + [
                f"{section},{r['code']},{r['balance']}" for section, rs in data.items()
                if isinstance(rs, list) for r in rs]
            return Response("\n".join(rows) + "\n", media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="s.csv"'})
        return JSONResponse({**head, **data})

    def gl_of(types: tuple[str, ...], office_id: str | None) -> list[dict[str, Any]]:
        return [r for r in ops.gl if r["type"] in types
                and office_id in (None, r.get("office_id"))]

    def total(rows: list[dict[str, Any]], key: str) -> str:
        return f"{sum((Decimal(r[key]) for r in rows), Decimal('0.00')):.2f}"

    @router.get("/v1/statements/trial-balance")
    async def trial(request: Request, who: Annotated[Principal, require(*LEDGER)],
                    as_of: dt.date | None = None, office_id: str | None = None,
                    fmt: Annotated[str | None, Query(alias="format")] = None) -> Response:
        record(request, who, dict(request.query_params))
        rows = gl_of(("asset", "liability", "equity", "income", "expense"), office_id)
        debits, credits = total(rows, "debits"), total(rows, "credits")
        return statement(request, "trial_balance",
                         {"statement": "trial_balance", "as_of": str(as_of or dt.date.today()),
                          "office_id": office_id, "currency": "MAD"},
                         {"accounts": rows, "total_debits": debits, "total_credits": credits,
                          "balanced": debits == credits}, fmt)

    @router.get("/v1/statements/income")
    async def income(request: Request, who: Annotated[Principal, require(*LEDGER)],
                     since: Annotated[dt.date | None, Query(alias="from")] = None,
                     to: dt.date | None = None, office_id: str | None = None,
                     fmt: Annotated[str | None, Query(alias="format")] = None) -> Response:
        record(request, who, dict(request.query_params))
        end = to or dt.date.today()
        earned, spent = gl_of(("income",), office_id), gl_of(("expense",), office_id)
        net = Decimal(total(earned, "balance")) - Decimal(total(spent, "balance"))
        return statement(request, "income_statement",
                         {"statement": "income_statement",
                          "from": str(since or end.replace(day=1)), "to": str(end),
                          "office_id": office_id, "currency": "MAD"},
                         {"income": earned, "expenses": spent,
                          "total_income": total(earned, "balance"),
                          "total_expenses": total(spent, "balance"),
                          "net_income": f"{net:.2f}"}, fmt)

    @router.get("/v1/statements/balance-sheet")
    async def balance_sheet(request: Request, who: Annotated[Principal, require(*LEDGER)],
                            as_of: dt.date | None = None, office_id: str | None = None,
                            fmt: Annotated[str | None, Query(alias="format")] = None
                            ) -> Response:
        record(request, who, dict(request.query_params))
        assets, liabilities = gl_of(("asset",), office_id), gl_of(("liability",), office_id)
        equity = gl_of(("equity",), office_id)
        result = (Decimal(total(gl_of(("income",), office_id), "balance"))
                  - Decimal(total(gl_of(("expense",), office_id), "balance")))
        right = (Decimal(total(liabilities, "balance")) + Decimal(total(equity, "balance"))
                 + result)
        return statement(request, "balance_sheet",
                         {"statement": "balance_sheet", "as_of": str(as_of or dt.date.today()),
                          "office_id": office_id, "currency": "MAD"},
                         {"assets": assets, "liabilities": liabilities, "equity": equity,
                          "unclosed_result": f"{result:.2f}",
                          "total_assets": total(assets, "balance"),
                          "total_liabilities": total(liabilities, "balance"),
                          "total_equity": f"{Decimal(total(equity, 'balance')) + result:.2f}",
                          "balanced": Decimal(total(assets, "balance")) == right}, fmt)

    @router.get("/v1/gl-accounts/{code}/lines")
    async def gl_lines(request: Request, code: str, who: Annotated[Principal, require(*LEDGER)],
                       since: Annotated[dt.date | None, Query(alias="from")] = None,
                       to: dt.date | None = None, office_id: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       cursor: Annotated[str | None, Query(max_length=100)] = None,
                       before: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        below = int(cursor.removeprefix("l:")) if cursor else before
        lines = sorted((x for x in ops.gl_lines.get(code, [])
                        if office_id in (None, x["office_id"])
                        and (below is None or x["line_id"] < below)),
                       key=lambda x: -int(x["line_id"]))[:limit + 1]
        last = lines[limit - 1]["line_id"] if len(lines) > limit else None
        return {"code": code, "lines": lines[:limit], "next_before": last,
                "next_cursor": f"l:{last}" if last else None}

    @router.get("/v1/journals")
    async def journals(request: Request, who: Annotated[Principal, require(*LEDGER)],
                       status: str | None = None, order: str = "asc",
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       cursor: Annotated[str | None, Query(max_length=200)] = None
                       ) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        if order not in ("asc", "desc"):
            raise InvalidInput("order is asc or desc", field="order")
        rows = sorted((j for j in ops.journals if status in (None, j["status"])),
                      key=lambda j: (j["proposed_at"], j["id"]), reverse=order == "desc")
        chunk, nxt = page(rows, limit, cursor)
        return {"items": chunk, "next_cursor": nxt}

    async def decide_journal(request: Request, journal_id: str, who: Principal,
                             decision: str) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        key = (request.headers.get("idempotency-key") or "").strip()
        record(request, who, {**(body or {}), "idempotency_key": key or None})
        scope = f"journal-{decision}:{journal_id}"
        first = ops.replies.get((scope, key)) if key else None
        if first is not None:  # the same key (and note): the first answer again
            if first[1].get("decision_note") != (body or {}).get("note"):
                raise InvalidInput("this Idempotency-Key was used with another body",
                                   field="Idempotency-Key")
            return first[1]
        done = decide(journal_id, who, decision, body)
        if key:
            ops.replies[(scope, key)] = (200, done)
        return done

    def decide(journal_id: str, who: Principal, decision: str,
               body: dict[str, Any] | None) -> dict[str, Any]:
        journal = next((j for j in ops.journals if j["id"] == journal_id), None)
        if journal is None:
            raise NotFound(f"no journal {journal_id}", field="id")
        if journal["status"] != "proposed":
            raise Conflict(f"journal {journal_id} is {journal['status']}", field="id")
        if journal["proposed_by"] == who.sub:
            raise Forbidden("the operator who proposed a journal cannot approve or reject "
                            "it: another operator must", field="sub")
        journal.update(status=decision, decided_by=who.sub, decided_at=now(),
                       decision_note=(body or {}).get("note"),
                       transfer_id=f"manual:{journal_id}" if decision == "approved" else None)
        return dict(journal)

    @router.post("/v1/journals/{journal_id}/approve")
    async def approve_journal(request: Request, journal_id: str,
                              who: Annotated[Principal, require("ledger:approve", "tenant:all")]
                              ) -> dict[str, Any]:
        return await decide_journal(request, journal_id, who, "approved")

    @router.post("/v1/journals/{journal_id}/reject")
    async def reject_journal(request: Request, journal_id: str,
                             who: Annotated[Principal, require("ledger:approve", "tenant:all")]
                             ) -> dict[str, Any]:
        return await decide_journal(request, journal_id, who, "rejected")

    @router.get("/v1/periods")
    async def periods(request: Request, who: Annotated[Principal, require(*LEDGER)]
                      ) -> dict[str, Any]:
        record(request, who)
        return {"closed": sorted(ops.closed_periods, key=lambda p: p["starts_on"])}

    @router.post("/v1/periods/{period}/close", status_code=201)
    async def close(request: Request, period: str,
                    who: Annotated[Principal, require("ledger:approve", "tenant:all")]
                    ) -> JSONResponse:
        key = (request.headers.get("idempotency-key") or "").strip()
        record(request, who, {"idempotency_key": key or None})
        if not key:
            raise InvalidInput("the Idempotency-Key header is required",
                               field="Idempotency-Key")
        first = ops.replies.get((f"period-close:{period}", key))
        if first is not None:
            return JSONResponse(first[1], status_code=first[0])
        status, body = close_period(period, who.sub)
        ops.replies[(f"period-close:{period}", key)] = (status, body)
        return JSONResponse(body, status_code=status)

    def close_period(period: str, sub: str) -> tuple[int, dict[str, Any]]:
        try:
            first = dt.date.fromisoformat(f"{period}-01")
        except ValueError:
            raise InvalidInput("a period is YYYY-MM", field="period") from None
        last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(1)
        if last >= dt.date.today():
            raise Conflict(f"{period} is not over yet", field="period")
        found = next((p for p in ops.closed_periods if p["period"] == period), None)
        if found:
            return 200, {**found, "created": False}
        row = {"period": period, "starts_on": first.isoformat(), "ends_on": last.isoformat(),
               "closed_by": sub, "closed_at": now()}
        ops.closed_periods.append(row)
        return 201, {**row, "created": True}

    @router.get("/v1/ledger/savings/{account_id}")
    async def savings_ledger(request: Request, account_id: str,
                             who: Annotated[Principal, require(*LEDGER)]) -> dict[str, Any]:
        record(request, who)
        acct = ops.savings_accounts.get(account_id)
        in_flight = [w for w in ops.savings_withdrawals
                     if w["account_id"] == account_id and w["status"] in ("pending", "in_doubt")]
        flying = sum((Decimal(w["amount"]) for w in in_flight), Decimal("0.00"))
        ledger = Decimal(acct["ledger_balance"]) if acct else Decimal("0.00")
        return {"account_id": account_id, "ledger_account_id": f"savings:{account_id}",
                "exists": acct is not None, "deposit_liability": f"{ledger - flying:.2f}",
                "withdrawals_in_flight": f"{flying:.2f}",
                "withdrawals_in_flight_count": len(in_flight),
                "payment_reference": f"SAV-{account_id}", "currency": "MAD"}


def install_savings(router: APIRouter, ops: OpsState, record: Record) -> None:
    def account_of(ref: str) -> dict[str, Any]:
        key = ref.lower().removeprefix("sav-")
        if key not in ops.savings_accounts:
            raise NotFound(f"no savings account {ref}", field="account_id")
        return ops.savings_accounts[key]

    @router.get("/v1/savings/accounts")
    async def accounts(request: Request, who: Annotated[Principal, require("savings:read")],
                       client_id: str | None = None, status: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = [a for a in ops.savings_accounts.values()
                if client_id in (None, a["client_id"]) and status in (None, a["status"])]
        return {"items": rows[:limit]}

    @router.get("/v1/savings/accounts/{account_id}")
    async def account(request: Request, account_id: str,
                      who: Annotated[Principal, require("savings:read")]) -> dict[str, Any]:
        record(request, who)
        return account_of(account_id)

    @router.get("/v1/savings/accounts/{account_id}/statement")
    async def statement(request: Request, account_id: str,
                        who: Annotated[Principal, require("savings:read")],
                        since: Annotated[dt.date | None, Query(alias="from")] = None,
                        to: dt.date | None = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        acct = account_of(account_id)
        lines = ops.savings_lines.get(acct["id"], [])
        before = [x for x in lines if since and x["value_date"] < since.isoformat()]
        inside = [x for x in lines if (since is None or x["value_date"] >= since.isoformat())
                  and (to is None or x["value_date"] <= to.isoformat())][:limit]
        opening = before[-1]["balance"] if before else "0.00"
        return {"account_id": acct["id"], "opening_balance": opening,
                "closing_balance": inside[-1]["balance"] if inside else opening,
                "ledger_balance": acct["ledger_balance"],
                "available_balance": acct["available_balance"], "lines": inside}

    @router.get("/v1/savings/accounts/{account_id}/withdrawals")
    async def account_withdrawals(request: Request, account_id: str,
                                  who: Annotated[Principal, require("savings:read")],
                                  limit: Annotated[int, Query(ge=1, le=200)] = 50
                                  ) -> dict[str, Any]:
        record(request, who)
        acct = account_of(account_id)
        return {"items": [w for w in ops.savings_withdrawals
                          if w["account_id"] == acct["id"]][:limit]}

    @router.get("/v1/savings/withdrawals")
    async def withdrawals(request: Request, who: Annotated[Principal, require("savings:read")],
                          status: str | None = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        return {"items": [w for w in ops.savings_withdrawals
                          if status in (None, w["status"])][:limit]}

    @router.get("/v1/savings/products")
    async def products(request: Request, who: Annotated[Principal, require("savings:read")]
                       ) -> dict[str, Any]:
        record(request, who)
        return {"items": ops.savings_products}


def install_clients(router: APIRouter, ops: OpsState, record: Record) -> None:
    @router.get("/v1/offices")
    async def offices(request: Request, who: Annotated[Principal, require("clients:read")],
                      parent_id: str | None = None, kind: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      cursor: str | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = sorted((o for o in ops.offices if parent_id in (None, o["parent_id"])
                       and kind in (None, o["kind"])), key=lambda o: o["path"])
        chunk, nxt = page(rows, limit, cursor)
        return {"items": chunk, "next_cursor": nxt}

    @router.get("/v1/staff")
    async def staff(request: Request, who: Annotated[Principal, require("clients:read")],
                    office_id: str | None = None, role: str | None = None,
                    active: bool | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    cursor: str | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = sorted((s for s in ops.staff if office_id in (None, s["office_id"])
                       and role in (None, s["role"]) and active in (None, s["active"])),
                      key=lambda s: s["id"])
        chunk, nxt = page(rows, limit, cursor)
        return {"items": chunk, "next_cursor": nxt}

    @router.get("/v1/offices/{office_id}")
    async def office(request: Request, office_id: str,
                     who: Annotated[Principal, require("clients:read")]) -> dict[str, Any]:
        record(request, who)
        for o in ops.offices:
            if o["id"] == office_id:
                return o
        raise NotFound(f"no office {office_id}", field="office_id")

    @router.get("/v1/staff/{staff_id}")
    async def staff_member(request: Request, staff_id: str,
                           who: Annotated[Principal, require("clients:read")]
                           ) -> dict[str, Any]:
        record(request, who)
        for s in ops.staff:
            if s["id"] == staff_id:
                return s
        raise NotFound(f"no staff member {staff_id}", field="staff_id")

    for kind, base in (("transfer", "/v1/transfers"),
                       ("reassignment", "/v1/officer-reassignments")):
        install_requests(router, ops, record, kind, base)


def install_requests(router: APIRouter, ops: OpsState, record: Record, kind: str,
                     base: str) -> None:
    def find(request_id: str) -> dict[str, Any]:
        found = next((r for r in ops.requests if r["id"] == request_id
                      and r["kind"] == kind), None)
        if found is None:
            raise NotFound(f"no {kind} request {request_id}", field="request_id")
        if found["status"] != "pending":
            raise Conflict(f"request {request_id} is {found['status']}", field="status")
        return found

    def decide(found: dict[str, Any], who: Principal, status: str,
               reason: str | None) -> dict[str, Any]:
        if found["requested_by"] == who.sub:
            raise Forbidden("the operator who requested it cannot decide it", field="sub")
        found.update(status=status, decided_by=who.sub, decided_at=now(),
                     decision_reason=reason)
        return found

    @router.get(base, name=f"list_{kind}")
    async def listing(request: Request, who: Annotated[Principal, require("clients:read")],
                      status: str = "pending",
                      limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      cursor: str | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = sorted((r for r in ops.requests if r["kind"] == kind and r["status"] == status),
                      key=lambda r: (r["requested_at"], r["id"]))
        chunk, nxt = page(rows, limit, cursor)
        return {"items": chunk, "next_cursor": nxt}

    @router.post(base + "/{request_id}/approve", name=f"approve_{kind}")
    async def approve(request: Request, request_id: str,
                      who: Annotated[Principal, require("clients:write", "tenant:all")]
                      ) -> dict[str, Any]:
        record(request, who)
        return decide(find(request_id), who, "approved", None)

    @router.post(base + "/{request_id}/reject", name=f"reject_{kind}")
    async def reject(request: Request, request_id: str, body: ReasonIn,
                     who: Annotated[Principal, require("clients:write", "tenant:all")]
                     ) -> dict[str, Any]:
        record(request, who, body.model_dump())
        return decide(find(request_id), who, "rejected", body.reason)


def install_more(name: str, router: APIRouter, ops: OpsState, record: Record,
                 held: Callable[[], list[dict[str, Any]]]) -> None:
    if name == "payments":
        install_payments(router, ops, record, held)
    elif name == "savings":
        install_savings(router, ops, record)
    elif name == "clients":
        install_clients(router, ops, record)

