"""Account commands: open (KYC, maker-checker), approve/reject, deposit, block/unblock,
reactivate, close, break a term deposit."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from services.savings.domain import account as model
from services.savings.domain import interest
from services.savings.domain.account import Account
from services.savings.domain.money import ZERO
from services.savings.domain.products import (
    CompulsoryTerms,
    TermDepositTerms,
    VoluntaryTerms,
    interest_basis,
    min_opening,
    posting_period,
)
from services.savings.handlers import compulsory
from services.savings.metrics import MOVEMENTS
from services.savings.repository import accounts as repo
from services.savings.repository import clients as clients_repo
from services.savings.repository import products as products_repo
from services.savings.repository.accounts import InterestTerms
from shared.auth import Principal
from shared.contracts.savings import (
    AccountBlocked,
    AccountReactivated,
    AccountUnblocked,
    DepositPosted,
    InterestPosted,
    SavingsAccountApproved,
    SavingsAccountClosed,
    SavingsAccountOpened,
    SavingsAccountRejected,
)
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


def visible(a: Account, principal: Principal) -> bool:
    """The token's partner (or every partner) and its office's subtree (or every office)."""
    return principal.can_see(a.partner_id) and principal.can_see_office(a.office_path)


def load_visible(a: Account | None, principal: Principal) -> Account:
    """The account, or 404 when it does not exist, belongs to another partner or to an
    office outside the token's subtree."""
    if a is None or not visible(a, principal):
        raise NotFound("no such savings account", field="account_id")
    return a


async def get(uow: UnitOfWork, principal: Principal, account_id: str, *,
              for_update: bool = False) -> Account:
    """By its id in any case, or by its ``SAV-`` payment reference."""
    canonical = model.canonical_id(account_id)
    found = None if canonical is None else await repo.get(uow.conn, canonical,
                                                          for_update=for_update)
    return load_visible(found, principal)


@dataclass(frozen=True)
class OpenRequest:
    client_id: str
    product_id: str
    opening_deposit: Decimal
    linked_loan_id: str | None = None
    maturity_instruction: str | None = None


async def open_account(uow: UnitOfWork, principal: Principal, req: OpenRequest, *,
                       today: dt.date, approval_above: Decimal) -> Account:
    client = await clients_repo.get(uow.conn, req.client_id)
    if client is None or not principal.can_see(client.partner_id) or (
            not principal.can_see_office(client.office_path)):
        raise NotFound("no such client (or not yet known to savings)", field="client_id")
    if client.kyc_status != "verified":
        raise Conflict("the client's KYC is not verified", field="client_id",
                       kyc_status=client.kyc_status)
    if client.blocked:
        raise Conflict("the client is blocked", field="client_id")
    product = await products_repo.get(uow.conn, req.product_id)
    if product is None:
        raise NotFound(f"product {req.product_id} does not exist", field="product_id")
    terms = product.terms
    if req.opening_deposit < min_opening(terms):
        raise InvalidInput(f"the product needs an opening deposit of at least "
                           f"{min_opening(terms):.2f} MAD", field="opening_deposit")
    if isinstance(terms, TermDepositTerms) and req.opening_deposit <= 0:
        raise InvalidInput("a term deposit is opened with its deposit", field="opening_deposit")
    if isinstance(terms, CompulsoryTerms) and not req.linked_loan_id:
        raise InvalidInput("compulsory savings name the loan they secure",
                           field="linked_loan_id")
    if not isinstance(terms, CompulsoryTerms) and req.linked_loan_id:
        raise InvalidInput("only compulsory savings are linked to a loan",
                           field="linked_loan_id")
    instruction = None
    maturity = None
    if isinstance(terms, TermDepositTerms):
        instruction = req.maturity_instruction or terms.default_instruction
        if instruction not in ("renew", "pay_out"):
            raise InvalidInput("maturity_instruction is renew or pay_out",
                               field="maturity_instruction")
        maturity = interest.add_months(today, terms.term_months)
    elif req.maturity_instruction is not None:
        raise InvalidInput("only a term deposit has a maturity instruction",
                           field="maturity_instruction")
    status = model.opening_status(req.opening_deposit, approval_above)
    account = Account(
        id=str(uuid.uuid4()), client_id=client.client_id, partner_id=client.partner_id or "",
        product_id=product.id, product_version=product.version, kind=terms.kind,
        status=status, balances=model.Balances(), opened_by=principal.sub,
        opening_deposit=req.opening_deposit,
        linked_loan_id=model.canonical_loan_id(req.linked_loan_id) if req.linked_loan_id
        else None,
        maturity_date=maturity, maturity_instruction=instruction, opened_on=today,
        office_id=client.office_id, office_path=client.office_path)
    saved = await repo.insert(uow.conn, account, InterestTerms(
        annual_rate=terms.annual_rate, interest_basis=interest_basis(terms),
        posting_period=posting_period(terms), withholding_rate=terms.withholding_tax_rate,
        dormant_after_months=terms.dormant_after_months
        if isinstance(terms, VoluntaryTerms) else None,
        term_months=terms.term_months if isinstance(terms, TermDepositTerms) else None,
        term_start=today if isinstance(terms, TermDepositTerms) else None,
        early_break_penalty_rate=terms.early_break_penalty_rate
        if isinstance(terms, TermDepositTerms) else None))
    uow.emit(SavingsAccountOpened(
        account_id=saved.id, client_id=saved.client_id, partner_id=saved.partner_id,
        product_id=saved.product_id, product_version=saved.product_version,
        product_kind=terms.kind, status="active" if status == "active" else "pending_approval",
        opened_by=principal.sub), key=saved.id)
    if status == "active" and req.opening_deposit > 0:
        await _credit(uow, saved, amount=req.opening_deposit, key=f"opening:{saved.id}",
                      channel="opening", by=principal.sub, today=today, opening=True)
    return await repo.get(uow.conn, saved.id) or saved


async def approve(uow: UnitOfWork, principal: Principal, account_id: str, *,
                  today: dt.date) -> Account:
    a = await get(uow, principal, account_id, for_update=True)
    saved = await repo.save(uow.conn, model.approve(a, by=principal.sub))
    await repo.activate_interest(uow.conn, saved.id, today)
    uow.emit(SavingsAccountApproved(account_id=saved.id, client_id=saved.client_id,
                                    approved_by=principal.sub), key=saved.id)
    if saved.opening_deposit > 0:
        await _credit(uow, saved, amount=saved.opening_deposit, key=f"opening:{saved.id}",
                      channel="opening", by=saved.opened_by, today=today, opening=True)
    return await repo.get(uow.conn, saved.id) or saved


async def reject(uow: UnitOfWork, principal: Principal, account_id: str, reason: str
                 ) -> Account:
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput("a rejection needs a reason", field="reason")
    a = await get(uow, principal, account_id, for_update=True)
    saved = await repo.save(uow.conn, model.reject(a, by=principal.sub))
    uow.emit(SavingsAccountRejected(account_id=saved.id, client_id=saved.client_id,
                                    rejected_by=principal.sub, reason=clean), key=saved.id)
    return saved


async def _credit(uow: UnitOfWork, a: Account, *, amount: Decimal, key: str, channel: str,
                  by: str, today: dt.date, payment_id: str | None = None,
                  opening: bool = False) -> bool:
    """Credit the account once per ``key``; a dormant account is active again."""
    model.check_deposit(a, opening=opening)
    if not await repo.add_line(uow.conn, a.id, key=key, kind="deposit", amount=amount,
                               value_date=today, created_by=by, channel=channel,
                               reference=payment_id):
        return False
    balances = await repo.move(uow.conn, a.id, ledger=amount, client_txn_on=today)
    MOVEMENTS.labels(f"deposit_{channel}").inc()
    if a.kind == "compulsory" and a.linked_loan_id and not a.linked_loan_closed:
        # a disbursement may be waiting for exactly this deposit
        await compulsory.reevaluate(uow, a.linked_loan_id)
    if a.status == "dormant":
        await repo.save(uow.conn, model.reactivate(a))
        uow.emit(AccountReactivated(account_id=a.id, client_id=a.client_id,
                                    reactivated_by=by), key=a.id)
    uow.emit(DepositPosted(
        account_id=a.id, client_id=a.client_id, deposit_id=key, amount=amount,
        channel=channel,
        payment_id=payment_id, ledger_balance=balances.ledger,
        available_balance=balances.available, value_date=today, posted_by=by), key=a.id)
    return True


async def deposit(uow: UnitOfWork, principal: Principal, account_id: str, *, amount: Decimal,
                  key: str, today: dt.date) -> Account:
    """A cash deposit at a branch (idempotent on the request's key)."""
    a = await get(uow, principal, account_id, for_update=True)
    await _credit(uow, a, amount=amount, key=f"branch:{key}", channel="branch_cash",
                  by=principal.sub, today=today)
    return await repo.get(uow.conn, a.id) or a


async def block(uow: UnitOfWork, principal: Principal, account_id: str, reason: str
                ) -> Account:
    a = await get(uow, principal, account_id, for_update=True)
    saved = await repo.save(uow.conn, model.block(a, reason=reason, by=principal.sub))
    uow.emit(AccountBlocked(account_id=saved.id, client_id=saved.client_id,
                            reason=saved.block_reason or "", blocked_by=principal.sub),
             key=saved.id)
    return saved


async def unblock(uow: UnitOfWork, principal: Principal, account_id: str, reason: str
                  ) -> Account:
    a = await get(uow, principal, account_id, for_update=True)
    saved = await repo.save(uow.conn, model.unblock(a, reason=reason))
    uow.emit(AccountUnblocked(account_id=saved.id, client_id=saved.client_id,
                              reason=reason.strip(), unblocked_by=principal.sub), key=saved.id)
    return saved


async def reactivate(uow: UnitOfWork, principal: Principal, account_id: str) -> Account:
    a = await get(uow, principal, account_id, for_update=True)
    saved = await repo.save(uow.conn, model.reactivate(a))
    uow.emit(AccountReactivated(account_id=saved.id, client_id=saved.client_id,
                                reactivated_by=principal.sub), key=saved.id)
    return saved


async def close(uow: UnitOfWork, principal: Principal, account_id: str, reason: str, *,
                today: dt.date) -> Account:
    a = await get(uow, principal, account_id, for_update=True)
    saved = await repo.save(uow.conn, model.close(a, on=today))
    uow.emit(SavingsAccountClosed(account_id=saved.id, client_id=saved.client_id,
                                  closed_by=principal.sub,
                                  reason=(reason or "").strip() or "closed"), key=saved.id)
    return saved


async def break_term(uow: UnitOfWork, principal: Principal, account_id: str, *,
                     today: dt.date) -> Account:
    """Break a term deposit before maturity: interest for the days held at the reduced
    rate, then the balance can be withdrawn."""
    a = await get(uow, principal, account_id, for_update=True)
    if a.kind != "term_deposit" or a.status != "active":
        raise Conflict("only an active term deposit can be broken", field="account_id")
    if a.maturity_date is not None and today >= a.maturity_date:
        raise Conflict("the deposit has matured: it is not broken", field="account_id")
    state = await repo.interest_state(uow.conn, a.id)
    assert state is not None
    start = state["term_start"] or a.opened_on or today
    gross = interest.early_break_interest(
        a.balances.ledger, state["annual_rate"], state["early_break_penalty_rate"] or ZERO,
        start, today)
    posting = interest.post(gross, ZERO, state["withholding_rate"])
    if posting.gross > 0:
        await repo.add_line(uow.conn, a.id, key=f"interest:{a.id}:break", kind="interest",
                            amount=posting.gross, value_date=today, created_by=principal.sub)
    if posting.withholding_tax > 0:
        await repo.add_line(uow.conn, a.id, key=f"tax:{a.id}:break", kind="withholding_tax",
                            amount=-posting.withholding_tax, value_date=today,
                            created_by=principal.sub)
    balances = await repo.move(uow.conn, a.id, ledger=posting.net)
    await uow.conn.execute(
        "UPDATE accounts SET status = 'matured', accrued_interest = 0, carried_interest = 0,"
        " maturity_date = $2 WHERE id = $1", a.id, today)
    uow.emit(InterestPosted(
        account_id=a.id, client_id=a.client_id, period_start=start, period_end=today,
        gross=posting.gross, withholding_tax=posting.withholding_tax, net=posting.net,
        ledger_balance=balances.ledger, business_date=today), key=a.id)
    return await repo.get(uow.conn, a.id) or a
