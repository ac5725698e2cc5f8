"""Standing instructions: a client asks that a loan's due installments be paid from a
voluntary savings account.

On ``RepaymentDue`` (loans.events) savings debits, from each active instruction of the
loan in turn, what is due (capped by the instruction's ``max_amount`` and by the
available balance above the product's minimum), once per (loan, installment, due date),
and publishes ``StandingInstructionPayment`` for payments to book (Dr the account's
deposit liability / Cr suspense) and apply to the loan. A blocked, dormant or closed
account pays nothing; nor does an account of another client than the loan's.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import asyncpg

from services.savings.domain import account as model
from services.savings.domain.account import canonical_loan_id
from services.savings.domain.money import ZERO
from services.savings.domain.products import VoluntaryTerms
from services.savings.handlers.accounts import get as get_account
from services.savings.metrics import MOVEMENTS
from services.savings.repository import accounts as accounts_repo
from services.savings.repository import instructions as repo
from services.savings.repository import products as products_repo
from shared.auth import Principal
from shared.clock import Clock, business_date, system_clock
from shared.contracts.loans import RepaymentDue
from shared.contracts.savings import StandingInstructionPayment
from shared.envelope import Envelope
from shared.errors import Conflict, NotFound
from shared.uow import UnitOfWork

log = logging.getLogger("noria.savings.standing")
PAYMENT_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4c8e-9d0b-5a8c2e4f7b31")


def txn_prefix(loan_id: str, installment: int, due_date: dt.date) -> str:
    return f"standing:{loan_id}:{installment}:{due_date}:"


def payment_id(key: str) -> str:
    """The same payment id for the same account and installment, whoever computes it."""
    return str(uuid.uuid5(PAYMENT_NAMESPACE, key))


async def set_instruction(uow: UnitOfWork, principal: Principal, account_id: str,
                          loan_id: str, max_amount: Decimal | None) -> asyncpg.Record:
    a = await get_account(uow, principal, account_id, for_update=True)
    if a.kind != "voluntary":
        raise Conflict("standing instructions pay from voluntary savings only",
                       field="account_id")
    if a.status in ("closed", "rejected"):
        raise Conflict(f"the account is {a.status}", field="account_id")
    return await repo.upsert(uow.conn, a.id, canonical_loan_id(loan_id), max_amount,
                             principal.sub)


async def cancel_instruction(uow: UnitOfWork, principal: Principal, account_id: str,
                             loan_id: str) -> asyncpg.Record:
    a = await get_account(uow, principal, account_id, for_update=True)
    row = await repo.cancel(uow.conn, a.id, canonical_loan_id(loan_id))
    if row is None:
        raise NotFound("no standing instruction for this loan on this account",
                       field="loan_id")
    return row


def on_repayment_due_handler(clock: Clock = system_clock
                             ) -> Callable[[UnitOfWork, RepaymentDue, Envelope], Awaitable[None]]:
    async def on_repayment_due(uow: UnitOfWork, msg: RepaymentDue, env: Envelope) -> None:
        loan_id = canonical_loan_id(msg.loan_id)
        instructions = await repo.active_for_loan(uow.conn, loan_id)
        if not instructions:
            return
        today = business_date(clock())
        prefix = txn_prefix(loan_id, msg.installment, msg.due_date)
        already = await uow.conn.fetchval(
            "SELECT COALESCE(-sum(amount), 0) FROM transactions WHERE kind = 'loan_repayment'"
            " AND starts_with(txn_key, $1)", prefix)
        left = msg.amount - already   # an installment announced again is not paid twice
        for instruction in instructions:
            if left <= 0:
                break
            a = await accounts_repo.get(uow.conn, instruction["account_id"], for_update=True)
            if a is None or a.client_id != msg.client_id:
                log.warning("standing instruction of account %s for loan %s: the loan's"
                            " client is %s; nothing paid", instruction["account_id"],
                            loan_id, msg.client_id)
                continue
            try:
                model.check_withdrawal(a)
            except Conflict as exc:
                log.info("standing instruction of account %s for loan %s not paid: %s",
                         a.id, loan_id, exc)
                continue
            product = await products_repo.get(uow.conn, a.product_id, a.product_version)
            floor = product.terms.min_balance if product is not None and isinstance(
                product.terms, VoluntaryTerms) else ZERO
            cap = instruction["max_amount"]
            pay = min(left, a.balances.available - floor,
                      cap if cap is not None else left)
            if pay <= 0:
                continue
            key = prefix + a.id
            if not await accounts_repo.add_line(
                    uow.conn, a.id, key=key, kind="loan_repayment", amount=-pay,
                    value_date=today, created_by="standing-instruction", reference=loan_id):
                continue   # this account already paid towards the installment
            balances = await accounts_repo.move(uow.conn, a.id, ledger=-pay,
                                                client_txn_on=today)
            MOVEMENTS.labels("standing_instruction").inc()
            left -= pay
            uow.emit(StandingInstructionPayment(
                account_id=a.id, client_id=a.client_id,
                payment_id=payment_id(key), loan_id=loan_id,
                installment=msg.installment, due_date=msg.due_date, amount=pay,
                amount_due=msg.amount, ledger_balance=balances.ledger,
                available_balance=balances.available, value_date=today), key=a.id)
    return on_repayment_due
