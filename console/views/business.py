"""The business at a glance: portfolio health, today's collections, money movements."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console import charts, present
from console.i18n import to_decimal, translator
from console.session import OperatorSession
from console.upstream import Reply
from console.web import language, render, upstream

router = APIRouter()

PORTFOLIO = "/v1/portfolio"
PORTFOLIO_HISTORY = "/v1/portfolio/history"
DUE = "/v1/installments/due"
PAYMENTS = "/v1/payments"
MAX_CLIENT_LOOKUPS = 50


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@router.get("/")
async def portfolio(request: Request, session: OperatorSession) -> Response:
    up = upstream(request)
    current, history = await up.gather(
        up.get("loans", PORTFOLIO, session.token),
        up.get("loans", PORTFOLIO_HISTORY, session.token, {"limit": 60}),
    )
    data = current.obj()
    t = translator(language(request))
    buckets = present.arrears_buckets(data)
    bucket_chart = charts.bar_chart(
        [(str(b["bucket"]), to_decimal(b["principal"]) or 0) for b in buckets],
        title=t("portfolio.buckets"),
        value_text=[f"{b['principal'] or '—'} MAD" for b in buckets],
    ) if buckets else None
    trend_chart = None
    if history.ok:
        snapshots = history.items()
        if snapshots:
            labels, series = present.trend(snapshots)
            trend_chart = charts.line_chart(labels, series, title=t("portfolio.trend"), unit="%")
    return render(
        request, "portfolio.html", current=current, history=history, data=data,
        par=present.par_values(data), buckets=buckets, bucket_chart=bucket_chart,
        trend_chart=trend_chart,
        outstanding=present.first(data, "outstanding_principal", "outstanding",
                                  "total_outstanding"),
        active_loans=present.first(data, "active_loans", "loans", "loan_count"),
        business_date=present.first(data, "business_date", "as_of"),
    )


async def client_phones(request: Request, token: str, client_ids: list[str]
                        ) -> dict[str, dict[str, Any]]:
    """Each client's name and phone, asked of the clients service (bounded)."""
    up = upstream(request)
    wanted = list(dict.fromkeys(c for c in client_ids if c))[:MAX_CLIENT_LOOKUPS]
    replies = await up.gather(*(up.get("clients", f"/v1/clients/{c}", token) for c in wanted))
    return {c: r.obj() for c, r in zip(wanted, replies, strict=True) if r.ok}


@router.get("/collections")
async def collections(request: Request, session: OperatorSession,
                      date: str | None = None) -> Response:
    day = date or today().isoformat()
    up = upstream(request)
    due = await up.get("loans", DUE, session.token, {"date": day})
    rows = due.items()
    clients = await client_phones(request, session.token,
                                  [str(r.get("client_id", "")) for r in rows])
    unpaid = [r for r in rows if str(r.get("status", "")) not in ("paid", "closed")]
    return render(
        request, "collections.html", day=day, due=due, rows=rows, clients=clients,
        unpaid=unpaid,
        total_due=present.total(rows, "total", "amount_due", "amount"),
        total_paid=present.total(rows, "paid", "amount_paid"),
    )


def failures(reply: Reply) -> list[dict[str, Any]]:
    return [p for p in reply.items() if str(p.get("status", "")) in ("failed", "refund_failed")]


@router.get("/payments")
async def payments(request: Request, session: OperatorSession,
                   date: str | None = None) -> Response:
    day = date or today().isoformat()
    up = upstream(request)
    payouts, collected, failed_sagas = await up.gather(
        up.get("payments", PAYMENTS, session.token, {"date": day, "kind": "disbursement"}),
        up.get("payments", PAYMENTS, session.token, {"date": day, "kind": "repayment"}),
        up.get("loans", "/v1/sagas", session.token, {"state": "failed"}),
    )
    return render(
        request, "payments.html", day=day, payouts=payouts, collected=collected,
        failed_sagas=failed_sagas,
        failures=failures(payouts) + failures(collected),
        payout_total=present.total(payouts.items(), "amount"),
        collected_total=present.total(collected.items(), "amount"),
    )
