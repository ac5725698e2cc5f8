"""The chart of accounts, accounting rules per product, the institution's accounting
settings, and the close of business in the ledger (accruals, provisions).

Every write takes an ``Idempotency-Key``: the same key and body answers what the first
request answered, another body under the key is refused (422 naming the header)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.payments import state
from services.payments.api.accounting_out import (
    AccountingSettingsOut,
    AccrualRunOut,
    GLAccountOut,
    GLAccounts,
    ProductRules,
    ProvisionRunOut,
    Rates,
)
from services.payments.api.accounting_schemas import (
    AccrualsIn,
    GLAccountIn,
    ProvisionsIn,
    RatesIn,
    RulesIn,
    SettingsIn,
)
from services.payments.api.deps import runtime
from services.payments.api.schemas import money_strings
from services.payments.domain import accruals, chart, provisioning
from services.payments.handlers import accounting
from services.payments.repository import Conn
from services.payments.repository import closing as closing_repo
from services.payments.repository import gl as gl_repo
from shared import idempotency
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import Conflict, InvalidInput
from shared.uow import UnitOfWork

# Scopes: ledger:read to read, ledger:write to change the chart, the rules, the settings
# and the rates and to run a close of business, ledger:approve to approve journals and
# close periods (shared/auth.py gives operators all three).
READ = ("ledger:read", "tenant:all")
WRITE = ("ledger:write", "tenant:all")
Reader = Annotated[Principal, require(*READ)]
Writer = Annotated[Principal, require(*WRITE)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description=(
    "required: the same key and body answers the first response again"))]

router = APIRouter(tags=["accounting"])


def both(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """Responses of a write that answers 201 when it did something, 200 when it had been
    done before (or changed an existing row)."""
    return {201: {"model": model, "description": "created"},
            200: {"model": model, "description": "done before, or changed"}}


async def once(request: Request, scope: str, key_header: str | None, body: Any,
               work: Callable[[UnitOfWork], Awaitable[tuple[BaseModel, int]]]
               ) -> JSONResponse:
    """Run ``work`` once per ``Idempotency-Key`` in ``scope``, in one transaction with the
    key's record; a replay answers the first response."""
    key = idempotency.check_key(key_header)
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body)
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        out, status = await work(uow)
        response = out.model_dump(mode="json", by_alias=True)
        await idempotency.complete(uow, scope, key, status, response)
        await uow.commit()
    return JSONResponse(response, status_code=status)


def _account(a: chart.GLAccount) -> GLAccountOut:
    return GLAccountOut(code=a.code, name_fr=a.name_fr, name_ar=a.name_ar, type=a.type.value,
                        usage=a.usage, parent_code=a.parent_code,
                        regulator_code=a.regulator_code)


@router.get("/v1/gl-accounts", response_model=GLAccounts, summary="The chart of accounts")
async def gl_accounts(request: Request, principal: Reader) -> GLAccounts:
    async with runtime(request).pool.acquire() as conn:
        accounts = await gl_repo.chart(conn)
    return GLAccounts(accounts=[_account(a) for a in accounts.values()])


@router.put("/v1/gl-accounts/{code}", response_model=GLAccountOut,
            responses=both(GLAccountOut), summary="Create or change a GL account")
async def put_gl_account(code: str, body: GLAccountIn, request: Request,
                         principal: Writer,
                         idempotency_key: IdempotencyKey = None) -> JSONResponse:
    account = chart.GLAccount(code, body.name_fr, body.name_ar, chart.GLType(body.type),
                              body.usage, body.parent_code, body.regulator_code)
    if not code or len(code) > 20 or not code.replace(".", "").replace("-", "").replace(
            "_", "").isalnum():
        raise InvalidInput("a GL code is 1-20 letters, digits, '.', '-' or '_'", field="code")

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        accounts = await gl_repo.chart(uow.conn)
        before = accounts.get(code)
        if before is not None and (before.type != account.type or before.usage != account.usage
                                   ) and await gl_repo.gl_account_used(uow.conn, code):
            raise Conflict(f"GL account {code} has postings or rules: its type and usage "
                           "stay as they are", field="type")
        accounts[code] = account
        chart.check_tree(accounts.values())
        created = await gl_repo.upsert_gl_account(uow.conn, account)
        return _account(account), 201 if created else 200

    return await once(request, f"gl-account:{code}", idempotency_key,
                      body.model_dump(mode="json"), work)


async def _rules(conn: Conn, product_id: str, *, documented: bool) -> ProductRules:
    in_force = await gl_repo.rules(conn, product_id)
    out: dict[str, Any] = {"product_id": product_id, "rules": money_strings(in_force)}
    if documented:
        out |= {"roles": chart.ROLES,
                "posting_kinds": {k: {"debit": list(d), "credit": list(c)}
                                  for k, (d, c) in chart.POSTING_KINDS.items()}}
    return ProductRules.model_validate(out)


@router.get("/v1/products/{product_id}/accounting", response_model=ProductRules,
            response_model_exclude_none=True,
            summary="The accounting rules a product's postings follow")
async def product_rules(product_id: str, request: Request, principal: Reader) -> ProductRules:
    async with runtime(request).pool.acquire() as conn:
        return await _rules(conn, product_id, documented=True)


@router.put("/v1/products/{product_id}/accounting", response_model=ProductRules,
            response_model_exclude_none=True,
            summary="Map a product's roles to GL accounts ('*': the defaults)")
async def put_product_rules(product_id: str, body: RulesIn, request: Request,
                            principal: Writer,
                            idempotency_key: IdempotencyKey = None) -> JSONResponse:
    if not 1 <= len(product_id) <= 100:
        raise InvalidInput("a product id is 1-100 characters", field="product_id")

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        chart.check_rules(body.rules, await gl_repo.chart(uow.conn))
        await gl_repo.put_rules(uow.conn, product_id, dict(body.rules), principal.sub)
        return await _rules(uow.conn, product_id, documented=False), 200

    return await once(request, f"rules:{product_id}", idempotency_key,
                      body.model_dump(mode="json"), work)


@router.get("/v1/accounting/settings", response_model=AccountingSettingsOut,
            summary="Cash or accrual basis, non-accrual threshold")
async def get_settings(request: Request, principal: Reader) -> AccountingSettingsOut:
    async with runtime(request).pool.acquire() as conn:
        return AccountingSettingsOut.model_validate(money_strings(await gl_repo.settings(conn)))


@router.put("/v1/accounting/settings", response_model=AccountingSettingsOut,
            summary="Change the accounting basis or threshold")
async def put_settings(body: SettingsIn, request: Request, principal: Writer,
                       idempotency_key: IdempotencyKey = None) -> JSONResponse:
    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        await gl_repo.settings(uow.conn, lock=True)
        await gl_repo.put_settings(uow.conn, body.accounting_basis, body.non_accrual_days,
                                   principal.sub)
        out = await gl_repo.settings(uow.conn)
        return AccountingSettingsOut.model_validate(money_strings(out)), 200

    return await once(request, "accounting-settings", idempotency_key,
                      body.model_dump(mode="json"), work)


def _day_that_has_come(request: Request, day: dt.date, what: str) -> None:
    """A run posts a business day that has come, never one ahead of today's: runs go
    forward in time, so a run dated in the future (a mistyped year) would refuse every
    real night's run until that date."""
    now = today(state.clock(runtime(request).state))
    if day > now:
        raise InvalidInput(f"{what} are run for a business day that has come; {day} is after "
                           f"today's business date {now}", field="day")


def _loan_days(day: dt.date, body: AccrualsIn) -> list[accounting.LoanDay]:
    out = []
    seen: set[str] = set()
    for i, ln in enumerate(body.loans):
        if ln.loan_id in seen:
            raise InvalidInput(f"loan {ln.loan_id} is given twice", field=f"loans[{i}].loan_id")
        seen.add(ln.loan_id)
        interest = ln.interest
        if interest is None:
            assert ln.principal is not None and ln.annual_rate is not None
            assert ln.day_count is not None
            interest = accruals.daily_interest(ln.principal, ln.annual_rate, day, ln.day_count)
        out.append(accounting.LoanDay(ln.loan_id, interest, ln.days_in_arrears, ln.product_id,
                                      ln.office_id, ln.restructured, ln.fees_due))
    return out


@router.post("/v1/accruals/{day}", response_model=AccrualRunOut,
             responses=both(AccrualRunOut),
             summary="Post a business date's interest accruals (once)")
async def post_accruals(day: dt.date, body: AccrualsIn, request: Request,
                        principal: Writer,
                        idempotency_key: IdempotencyKey = None) -> JSONResponse:
    _day_that_has_come(request, day, "accruals")
    loans = _loan_days(day, body)

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        run = await accounting.run_accruals(uow.conn, day, loans, batch=body.batch,
                                            source=f"api:{principal.sub}")
        return AccrualRunOut.model_validate(money_strings(run)), 201 if run["created"] else 200

    return await once(request, f"accruals:{day.isoformat()}", idempotency_key,
                      body.model_dump(mode="json"), work)


@router.post("/v1/provisions/{day}", response_model=ProvisionRunOut,
             responses=both(ProvisionRunOut),
             summary="Post a business date's loan-loss provisions")
async def post_provisions(day: dt.date, body: ProvisionsIn, request: Request,
                          principal: Writer,
                          idempotency_key: IdempotencyKey = None) -> JSONResponse:
    _day_that_has_come(request, day, "provisions")
    seen: set[str] = set()
    loans = []
    for i, ln in enumerate(body.loans):
        if ln.loan_id in seen:
            raise InvalidInput(f"loan {ln.loan_id} is given twice", field=f"loans[{i}].loan_id")
        seen.add(ln.loan_id)
        loans.append(accounting.LoanDay(ln.loan_id, accruals.ZERO, ln.days_in_arrears,
                                        ln.product_id, ln.office_id, ln.restructured))

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        run = await accounting.run_provisions(uow.conn, day, loans, batch=body.batch,
                                              source=f"api:{principal.sub}")
        return (ProvisionRunOut.model_validate(money_strings(run)),
                201 if run["created"] else 200)

    return await once(request, f"provisions:{day.isoformat()}", idempotency_key,
                      body.model_dump(mode="json"), work)


def _rates(rates: list[provisioning.Rate]) -> Rates:
    return Rates.model_validate({"rates": [
        {"bucket": r.bucket, "min_days": r.min_days, "max_days": r.max_days,
         "rate": str(r.rate), "restructured": r.restructured} for r in rates]})


@router.get("/v1/provisioning/rates", response_model=Rates,
            summary="Provision rates per arrears bucket")
async def get_rates(request: Request, principal: Reader) -> Rates:
    async with runtime(request).pool.acquire() as conn:
        return _rates(await closing_repo.rates(conn))


@router.put("/v1/provisioning/rates", response_model=Rates,
            summary="Replace the provision rates")
async def put_rates(body: RatesIn, request: Request, principal: Writer,
                    idempotency_key: IdempotencyKey = None) -> JSONResponse:
    rates = [provisioning.Rate(r.bucket, r.min_days, r.max_days, r.rate, r.restructured)
             for r in body.rates]
    provisioning.check_rates(rates)

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        await closing_repo.replace_rates(uow.conn, rates)
        return _rates(await closing_repo.rates(uow.conn)), 200

    return await once(request, "provision-rates", idempotency_key,
                      body.model_dump(mode="json"), work)
