"""Operator views of the ledger: trial balance, statements, portfolio, reconciliation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request

from services.payments import ledger_repo
from services.payments.deps import Deps
from services.payments.domain import accounts
from services.payments.reconciliation import Item, reconcile
from shared.auth import Principal, require
from shared.errors import DomainError, NotFound
from shared.money import format_amount, parse_amount


class ProviderStatementUnavailable(DomainError):
    title = "Provider statement unavailable"
    code = "provider_unavailable"


def money_strings(value: Any) -> Any:
    """Decimals → "123.45" strings, recursively (JSON never carries money as a number)."""
    if isinstance(value, Decimal):
        return format_amount(value)
    if isinstance(value, dict):
        return {k: money_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [money_strings(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def ledger_router(deps: Deps) -> APIRouter:
    router = APIRouter(tags=["ledger"])

    @router.get("/v1/ledger/trial-balance", summary="Totals per account kind, and balanced")
    async def trial_balance(request: Request,
                            principal: Annotated[Principal, require("ledger:read", "tenant:all")]
                            ) -> dict[str, Any]:
        async with request.app.state.runtime.pool.acquire() as conn:
            return money_strings(await ledger_repo.trial_balance(conn))  # type: ignore[no-any-return]

    @router.get("/v1/accounts/{account_id}/statement", summary="An account's lines")
    async def statement(account_id: str, request: Request,
                        principal: Annotated[Principal, require("ledger:read", "tenant:all")],
                        limit: Annotated[int, Query(ge=1, le=500)] = 100,
                        before: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
        async with request.app.state.runtime.pool.acquire() as conn:
            return money_strings(  # type: ignore[no-any-return]
                await ledger_repo.statement(conn, account_id, limit, before))

    @router.get("/v1/loans/{loan_id}/portfolio-balance",
                summary="The loan's principal on the books (= loans' outstanding principal)")
    async def portfolio_balance(loan_id: str, request: Request,
                                principal: Annotated[Principal,
                                                     require("ledger:read", "tenant:all")]
                                ) -> dict[str, Any]:
        account = accounts.portfolio(loan_id)
        async with request.app.state.runtime.pool.acquire() as conn:
            exists = await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account)
            balance = await ledger_repo.balance(conn, account)
        return {"loan_id": loan_id, "account_id": account, "exists": bool(exists),
                "portfolio_balance": format_amount(balance), "currency": "MAD"}

    @router.get("/v1/reconciliation/{provider}/{day}",
                summary="Ledger vs the provider's statement for one day")
    async def reconciliation(provider: str, day: dt.date, request: Request,
                             principal: Annotated[Principal,
                                                  require("ledger:read", "tenant:all")]
                             ) -> dict[str, Any]:
        client = deps.providers.get(provider)
        if client is None:
            raise NotFound(f"no mobile-money provider named {provider!r}", field="provider")
        async with request.app.state.runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT provider_reference AS ref, kind, amount, saga_id AS our_ref, loan_id"
                " FROM payouts WHERE provider = $1 AND status = 'completed'"
                " AND (completed_at AT TIME ZONE 'UTC')::date = $2"
                " UNION ALL"
                " SELECT provider_reference, 'collection', amount, id::text, loan_id"
                " FROM payments WHERE provider = $1 AND source = 'callback'"
                " AND (received_at AT TIME ZONE 'UTC')::date = $2", provider, day)
        ours = [Item(r["ref"], r["kind"], r["amount"],
                     {"our_reference": r["our_ref"], "loan_id": r["loan_id"]}) for r in rows]
        try:
            entries = await client.statement(day)
        except httpx.HTTPError as exc:
            raise ProviderStatementUnavailable(
                f"{provider}'s statement for {day} is unavailable: {type(exc).__name__}",
                field="provider") from None
        theirs = [Item(str(e["transactionReference"]), str(e.get("type", "")),
                       parse_amount(str(e["amount"])),
                       {"msisdn": e.get("msisdn"), "provider_reference_kind": e.get("purpose")})
                  for e in entries if e.get("type") != "cashin"]
        result = reconcile(ours, theirs)
        return money_strings({"provider": provider, "date": day, **result})  # type: ignore[no-any-return]

    return router
