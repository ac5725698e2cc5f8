"""The chart of accounts, accounting rules per product, the institution's accounting
settings, and the close of business in the ledger (accruals, provisions)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
from services.payments.repository import gl as gl_repo
from shared.auth import Principal, require
from shared.errors import Conflict, InvalidInput

# Scopes (to add to the operator roles in shared/auth.py): ledger:read to read,
# ledger:write to change the chart, the rules and the settings and to run a close of
# business, ledger:approve to approve journals and close periods.
READ = ("ledger:read", "tenant:all")
WRITE = ("ledger:write", "tenant:all")
Reader = Annotated[Principal, require(*READ)]
Writer = Annotated[Principal, require(*WRITE)]

router = APIRouter(tags=["accounting"])


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(money_strings(body), status_code=status)


def _account(a: chart.GLAccount) -> dict[str, Any]:
    return {"code": a.code, "name_fr": a.name_fr, "name_ar": a.name_ar, "type": a.type.value,
            "usage": a.usage, "parent_code": a.parent_code, "regulator_code": a.regulator_code}


@router.get("/v1/gl-accounts", summary="The chart of accounts")
async def gl_accounts(request: Request, principal: Reader) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        accounts = await gl_repo.chart(conn)
    return _json({"accounts": [_account(a) for a in accounts.values()]})


@router.put("/v1/gl-accounts/{code}", summary="Create or change a GL account")
async def put_gl_account(code: str, body: GLAccountIn, request: Request,
                         principal: Writer) -> JSONResponse:
    account = chart.GLAccount(code, body.name_fr, body.name_ar, chart.GLType(body.type),
                              body.usage, body.parent_code, body.regulator_code)
    if not code or len(code) > 20 or not code.replace(".", "").replace("-", "").replace(
            "_", "").isalnum():
        raise InvalidInput("a GL code is 1-20 letters, digits, '.', '-' or '_'", field="code")
    async with runtime(request).uow() as uow:
        accounts = await gl_repo.chart(uow.conn)
        before = accounts.get(code)
        if before is not None and (before.type != account.type or before.usage != account.usage
                                   ) and await gl_repo.gl_account_used(uow.conn, code):
            raise Conflict(f"GL account {code} has postings or rules: its type and usage "
                           "stay as they are", field="type")
        accounts[code] = account
        chart.check_tree(accounts.values())
        created = await gl_repo.upsert_gl_account(uow.conn, account)
        await uow.commit()
    return _json(_account(account), 201 if created else 200)


@router.get("/v1/products/{product_id}/accounting",
            summary="The accounting rules a product's postings follow")
async def product_rules(product_id: str, request: Request, principal: Reader) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        in_force = await gl_repo.rules(conn, product_id)
    return _json({"product_id": product_id, "rules": in_force, "roles": chart.ROLES,
                  "posting_kinds": {k: {"debit": list(d), "credit": list(c)}
                                    for k, (d, c) in chart.POSTING_KINDS.items()}})


@router.put("/v1/products/{product_id}/accounting",
            summary="Map a product's roles to GL accounts ('*': the defaults)")
async def put_product_rules(product_id: str, body: RulesIn, request: Request,
                            principal: Writer) -> JSONResponse:
    if not 1 <= len(product_id) <= 100:
        raise InvalidInput("a product id is 1-100 characters", field="product_id")
    async with runtime(request).uow() as uow:
        chart.check_rules(body.rules, await gl_repo.chart(uow.conn))
        await gl_repo.put_rules(uow.conn, product_id, dict(body.rules), principal.sub)
        in_force = await gl_repo.rules(uow.conn, product_id)
        await uow.commit()
    return _json({"product_id": product_id, "rules": in_force})


@router.get("/v1/accounting/settings", summary="Cash or accrual basis, non-accrual threshold")
async def get_settings(request: Request, principal: Reader) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        return _json(await gl_repo.settings(conn))


@router.put("/v1/accounting/settings", summary="Change the accounting basis or threshold")
async def put_settings(body: SettingsIn, request: Request, principal: Writer) -> JSONResponse:
    async with runtime(request).uow() as uow:
        await gl_repo.settings(uow.conn, lock=True)
        await gl_repo.put_settings(uow.conn, body.accounting_basis, body.non_accrual_days,
                                   principal.sub)
        out = await gl_repo.settings(uow.conn)
        await uow.commit()
    return _json(out)


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
                                      ln.office_id, ln.restructured))
    return out


@router.post("/v1/accruals/{day}", summary="Post a business date's interest accruals (once)")
async def post_accruals(day: dt.date, body: AccrualsIn, request: Request,
                        principal: Writer) -> JSONResponse:
    loans = _loan_days(day, body)
    async with runtime(request).uow() as uow:
        run = await accounting.run_accruals(uow.conn, day, loans, batch=body.batch,
                                            source=f"api:{principal.sub}")
        await uow.commit()
    return _json(run, 201 if run["created"] else 200)


@router.post("/v1/provisions/{day}", summary="Post a business date's loan-loss provisions")
async def post_provisions(day: dt.date, body: ProvisionsIn, request: Request,
                          principal: Writer) -> JSONResponse:
    seen: set[str] = set()
    loans = []
    for i, ln in enumerate(body.loans):
        if ln.loan_id in seen:
            raise InvalidInput(f"loan {ln.loan_id} is given twice", field=f"loans[{i}].loan_id")
        seen.add(ln.loan_id)
        loans.append(accounting.LoanDay(ln.loan_id, accruals.ZERO, ln.days_in_arrears,
                                        ln.product_id, ln.office_id, ln.restructured))
    async with runtime(request).uow() as uow:
        run = await accounting.run_provisions(uow.conn, day, loans, batch=body.batch,
                                              source=f"api:{principal.sub}")
        await uow.commit()
    return _json(run, 201 if run["created"] else 200)


@router.get("/v1/provisioning/rates", summary="Provision rates per arrears bucket")
async def get_rates(request: Request, principal: Reader) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        rates = await accounting.rates_in_force(conn)
    return _json({"rates": [{"bucket": r.bucket, "min_days": r.min_days,
                             "max_days": r.max_days, "rate": str(r.rate),
                             "restructured": r.restructured} for r in rates]})


@router.put("/v1/provisioning/rates", summary="Replace the provision rates")
async def put_rates(body: RatesIn, request: Request, principal: Writer) -> JSONResponse:
    rates = [provisioning.Rate(r.bucket, r.min_days, r.max_days, r.rate, r.restructured)
             for r in body.rates]
    provisioning.check_rates(rates)
    async with runtime(request).uow() as uow:
        await uow.conn.execute("DELETE FROM provision_rates")
        await uow.conn.executemany(
            "INSERT INTO provision_rates (bucket, min_days, max_days, rate, restructured)"
            " VALUES ($1, $2, $3, $4, $5)",
            [(r.bucket, r.min_days, r.max_days, r.rate, r.restructured) for r in rates])
        await uow.commit()
    return await get_rates(request, principal)
