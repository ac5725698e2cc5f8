"""``/v1/savings/accounts``: open (maker-checker), read, statement, block/unblock,
reactivate, close, break a term deposit, standing instructions, and the money writes:
deposits and withdrawals (each under an ``Idempotency-Key``); the compulsory savings held
for loans. Every account is seen by its partner's tokens and by the tokens of its
office's subtree (404 elsewhere)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request

from services.savings.api.deps import keyed_write, now, operator_only, runtime, settings, today
from services.savings.api.schemas import (
    AccountOut,
    AccountPage,
    AmountIn,
    CompulsoryHoldOut,
    CompulsoryHoldPage,
    OpenAccountIn,
    ReasonIn,
    StandingInstructionIn,
    StandingInstructionOut,
    StandingInstructionPage,
    StatementLine,
    StatementOut,
    WithdrawalIn,
    WithdrawalOut,
    WithdrawalPage,
)
from services.savings.domain.account import canonical_loan_id
from services.savings.handlers import accounts as handlers
from services.savings.handlers import standing
from services.savings.handlers import withdrawals as withdrawal_handlers
from services.savings.repository import accounts as repo
from services.savings.repository import compulsory as compulsory_repo
from services.savings.repository import instructions as instructions_repo
from services.savings.repository import withdrawals as withdrawals_repo
from shared.auth import Principal, require
from shared.errors import InvalidInput

router = APIRouter(prefix="/v1/savings", tags=["savings accounts"])

Reader = Annotated[Principal, require("savings:read")]
Writer = Annotated[Principal, require("savings:write")]
Checker = Annotated[Principal, require("savings:approve")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@router.post("/accounts", status_code=201, response_model=AccountOut)
async def open_account(body: OpenAccountIn, request: Request, who: Writer,
                       idempotency_key: IdempotencyKey = None) -> Any:
    """Open an account for a KYC-verified client. An opening deposit above the
    configured amount leaves it ``pending_approval`` until a second person approves."""
    async with keyed_write(request, who, "open", idempotency_key,
                           body.model_dump(mode="json")) as write:
        if write.replay is not None:
            return write.replay
        account = await handlers.open_account(
            write.uow, who, handlers.OpenRequest(
                client_id=body.client_id, product_id=body.product_id,
                opening_deposit=body.opening_deposit, linked_loan_id=body.linked_loan_id,
                maturity_instruction=body.maturity_instruction), today=today(request),
            approval_above=settings(request).opening_approval_above)
        return await write.done(201, AccountOut.of(account).model_dump(mode="json"))


@router.get("/accounts", response_model=AccountPage)
async def list_accounts(
    request: Request, who: Reader,
    client_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["pending_approval", "active", "dormant", "matured", "closed",
                    "rejected"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AccountPage:
    partner = None if who.sees_all_tenants else (who.partner_id or "")
    async with runtime(request).pool.acquire() as conn:
        found = await repo.list_for(conn, partner_id=partner, client_id=client_id,
                                    status=status, limit=limit, office_path=who.office_path)
    return AccountPage(items=[AccountOut.of(a) for a in found])


@router.get("/accounts/{account_id}", response_model=AccountOut)
async def get_account(account_id: str, request: Request, who: Reader) -> AccountOut:
    async with runtime(request).uow() as uow:
        return AccountOut.of(await handlers.get(uow, who, account_id))


@router.get("/accounts/{account_id}/statement", response_model=StatementOut)
async def statement(
    account_id: str, request: Request, who: Reader,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> StatementOut:
    """The lines with their running balance, in value-date order."""
    if date_from is not None and date_to is not None and date_to < date_from:
        raise InvalidInput("to is before from", field="to")
    async with runtime(request).uow() as uow:
        a = await handlers.get(uow, who, account_id)
        opening, lines = await repo.statement(uow.conn, a.id, date_from=date_from,
                                              date_to=date_to, limit=limit)
    closing = lines[-1]["balance"] if lines else opening
    return StatementOut(account_id=a.id, opening_balance=opening, closing_balance=closing,
                        ledger_balance=a.balances.ledger,
                        available_balance=a.balances.available,
                        lines=[StatementLine(**line) for line in lines])


@router.post("/accounts/{account_id}/approve", response_model=AccountOut)
async def approve(account_id: str, request: Request, who: Checker) -> AccountOut:
    async with runtime(request).uow() as uow:
        a = await handlers.approve(uow, who, account_id, today=today(request))
        await uow.commit()
    return AccountOut.of(a)


@router.post("/accounts/{account_id}/reject", response_model=AccountOut)
async def reject(account_id: str, body: ReasonIn, request: Request, who: Checker
                 ) -> AccountOut:
    async with runtime(request).uow() as uow:
        a = await handlers.reject(uow, who, account_id, body.reason)
        await uow.commit()
    return AccountOut.of(a)


@router.post("/accounts/{account_id}/block", response_model=AccountOut)
async def block(account_id: str, body: ReasonIn, request: Request, who: Checker
                ) -> AccountOut:
    """Stop withdrawals (a legal seizure, a fraud suspicion); deposits still come in."""
    operator_only(who)
    async with runtime(request).uow() as uow:
        a = await handlers.block(uow, who, account_id, body.reason)
        await uow.commit()
    return AccountOut.of(a)


@router.post("/accounts/{account_id}/unblock", response_model=AccountOut)
async def unblock(account_id: str, body: ReasonIn, request: Request, who: Checker
                  ) -> AccountOut:
    operator_only(who)
    async with runtime(request).uow() as uow:
        a = await handlers.unblock(uow, who, account_id, body.reason)
        await uow.commit()
    return AccountOut.of(a)


@router.post("/accounts/{account_id}/reactivate", response_model=AccountOut)
async def reactivate(account_id: str, request: Request, who: Writer) -> AccountOut:
    async with runtime(request).uow() as uow:
        a = await handlers.reactivate(uow, who, account_id)
        await uow.commit()
    return AccountOut.of(a)


@router.post("/accounts/{account_id}/close", response_model=AccountOut)
async def close(account_id: str, body: ReasonIn, request: Request, who: Writer) -> AccountOut:
    """Close an account whose balance has been paid out (409 otherwise)."""
    async with runtime(request).uow() as uow:
        a = await handlers.close(uow, who, account_id, body.reason, today=today(request))
        await uow.commit()
    return AccountOut.of(a)


@router.post("/accounts/{account_id}/break", response_model=AccountOut)
async def break_term(account_id: str, request: Request, who: Writer,
                     idempotency_key: IdempotencyKey = None) -> Any:
    """Break a term deposit early: the reduced interest is posted and the balance can
    be withdrawn."""
    async with keyed_write(request, who, "break", idempotency_key,
                           {"account_id": account_id}) as write:
        if write.replay is not None:
            return write.replay
        a = await handlers.break_term(write.uow, who, account_id, today=today(request))
        return await write.done(200, AccountOut.of(a).model_dump(mode="json"))


@router.post("/accounts/{account_id}/deposits", status_code=201, response_model=AccountOut)
async def deposit(account_id: str, body: AmountIn, request: Request, who: Writer,
                  idempotency_key: IdempotencyKey = None) -> Any:
    """A cash deposit at a branch. The same key and body answer the first response."""
    async with keyed_write(request, who, "deposit", idempotency_key,
                           {"account_id": account_id, **body.model_dump(mode="json")}
                           ) as write:
        if write.replay is not None:
            return write.replay
        a = await handlers.deposit(write.uow, who, account_id, amount=body.amount,
                                   key=f"{write.scope}:{write.key}", today=today(request))
        return await write.done(201, AccountOut.of(a).model_dump(mode="json"))


@router.post("/accounts/{account_id}/withdrawals", status_code=202,
             response_model=WithdrawalOut)
async def withdraw(account_id: str, body: WithdrawalIn, request: Request, who: Writer,
                   idempotency_key: IdempotencyKey = None) -> Any:
    """Hold ``amount`` (+ the fee) and ask payments to pay it to the wallet: 202, the
    withdrawal is ``pending`` until payments answers. Above the available balance: 409,
    nothing is held."""
    s = settings(request)
    async with keyed_write(request, who, "withdraw", idempotency_key,
                           {"account_id": account_id, **body.model_dump(mode="json")}
                           ) as write:
        if write.replay is not None:
            return write.replay
        w = await withdrawal_handlers.request(
            write.uow, who, account_id, amount=body.amount, msisdn=body.msisdn,
            today=today(request), now=now(request), payout_deadline_s=s.payout_deadline_s,
            provider=s.payout_provider)
        return await write.done(202, WithdrawalOut.of(w).model_dump(mode="json"))


@router.get("/accounts/{account_id}/withdrawals", response_model=WithdrawalPage)
async def account_withdrawals(account_id: str, request: Request, who: Reader,
                              limit: Annotated[int, Query(ge=1, le=200)] = 50
                              ) -> WithdrawalPage:
    async with runtime(request).uow() as uow:
        a = await handlers.get(uow, who, account_id)
        found = await withdrawals_repo.list_for(uow.conn, account_id=a.id, partner_id=None,
                                                status=None, limit=limit)
    return WithdrawalPage(items=[WithdrawalOut.of(w) for w in found])


@router.get("/withdrawals", response_model=WithdrawalPage)
async def withdrawals(
    request: Request, who: Reader,
    status: Literal["pending", "in_doubt", "paid", "released", "review"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WithdrawalPage:
    """Withdrawals, newest first: ``status=in_doubt`` lists those nobody knows the
    outcome of yet, ``review`` those payments contradicted."""
    partner = None if who.sees_all_tenants else (who.partner_id or "")
    async with runtime(request).pool.acquire() as conn:
        found = await withdrawals_repo.list_for(conn, account_id=None, partner_id=partner,
                                                status=status, limit=limit,
                                                office_path=who.office_path)
    return WithdrawalPage(items=[WithdrawalOut.of(w) for w in found])


@router.get("/withdrawals/{withdrawal_id}", response_model=WithdrawalOut)
async def get_withdrawal(withdrawal_id: str, request: Request, who: Reader) -> WithdrawalOut:
    async with runtime(request).uow() as uow:
        return WithdrawalOut.of(await withdrawal_handlers.get(uow, who, withdrawal_id))


@router.get("/accounts/{account_id}/standing-instructions",
            response_model=StandingInstructionPage)
async def standing_instructions(account_id: str, request: Request, who: Reader
                                ) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        a = await handlers.get(uow, who, account_id)
        rows = await instructions_repo.for_account(uow.conn, a.id)
    return {"items": [dict(r) for r in rows]}


@router.put("/accounts/{account_id}/standing-instructions", response_model=StandingInstructionOut)
async def set_standing_instruction(account_id: str, body: StandingInstructionIn,
                                   request: Request, who: Writer) -> dict[str, Any]:
    """Pay ``loan_id``'s due installments from this voluntary account (the client's
    instruction); the same loan again changes ``max_amount`` and makes it active."""
    async with runtime(request).uow() as uow:
        row = await standing.set_instruction(uow, who, account_id, body.loan_id,
                                             body.max_amount)
        await uow.commit()
    return dict(row)


@router.delete("/accounts/{account_id}/standing-instructions/{loan_id}",
               response_model=StandingInstructionOut)
async def cancel_standing_instruction(account_id: str, loan_id: str, request: Request,
                                      who: Writer) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        row = await standing.cancel_instruction(uow, who, account_id, loan_id)
        await uow.commit()
    return dict(row)


@router.get("/compulsory-holds", response_model=CompulsoryHoldPage)
async def compulsory_holds(request: Request, who: Reader,
                           loan_id: Annotated[str, Query(min_length=1, max_length=64)]
                           ) -> dict[str, Any]:
    """What the loans disbursement saga asked for a loan's compulsory savings, and where
    each request stands."""
    async with runtime(request).pool.acquire() as conn:
        rows = await compulsory_repo.for_loan(conn, canonical_loan_id(loan_id))
        items = []
        for r in rows:
            if not who.can_see(r["partner_id"]):
                continue
            if who.office_path is not None:
                office = await conn.fetchval(
                    "SELECT office_path FROM client_projection WHERE client_id = $1",
                    r["client_id"])
                if not who.can_see_office(office):
                    continue
            items.append({k: r[k] for k in CompulsoryHoldOut.model_fields})
    return {"items": items}
