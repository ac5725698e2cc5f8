"""Installments paid from voluntary savings by standing instruction (``savings.events``).

``StandingInstructionPayment``: savings debited the account for a loan's due
installment. Payments records it as a repayment (``payments`` row, source
``standing_instruction``, provider ``savings``; the account it came from in
``standing_instruction_payments``), books Dr the account's deposits
(``savings:<account>``) / Cr repayment suspense (``standing_instruction:<payment id>``)
and publishes ``RepaymentReceived`` for the loan (``payment_id`` = savings' payment id)
— once per payment id, whatever is redelivered. From there it is a repayment like a
wallet's: loans allocates it and payments moves it out of suspense. So the account's
deposit liability in the ledger follows savings' balance, which the debit lowered.

What loans does not take — the whole payment when it rejects it, an excess it accepts
but does not allocate — goes back to the same account, never to a wallet: Dr suspense /
Cr ``savings:<account>`` (``standing_instruction_return:<payment id>``) and
``SavingsDepositReceived`` so savings credits it back (:func:`give_back`).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import asyncpg

from services.payments.domain import postings
from services.payments.domain.repayment_ids import payment_uuid
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import standing_instructions as repo
from shared.clock import BUSINESS_TZ, business_date, system_clock
from shared.contracts.payments import RepaymentReceived
from shared.contracts.savings import SavingsDepositReceived, StandingInstructionPayment
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.standing_instructions")

SOURCE = "standing_instruction"
PROVIDER = "savings"


def _received_at(value_date: dt.date) -> dt.datetime:
    """Now on the value date, else noon of it (the institution's time)."""
    now = system_clock()
    if business_date(now) == value_date:
        return now
    return dt.datetime.combine(value_date, dt.time(12), BUSINESS_TZ).astimezone(dt.UTC)


async def on_standing_instruction_payment(uow: UnitOfWork, msg: StandingInstructionPayment,
                                          env: Envelope) -> None:
    conn = uow.conn
    pid = payment_uuid(msg.payment_id)
    at = _received_at(msg.value_date)
    fresh = await payments_repo.insert_payment(
        conn, payment_id=pid, loan_id=msg.loan_id, amount=msg.amount, currency=msg.currency,
        payer_msisdn=None, provider=PROVIDER, source=SOURCE, partner_id=None,
        external_ref=msg.payment_id, provider_reference=None, confirmed_at=at)
    if fresh:
        fresh = await repo.record(
            conn, payment_id=msg.payment_id, payments_id=pid, account_id=msg.account_id,
            loan_id=msg.loan_id, installment=msg.installment, due_date=msg.due_date,
            amount=msg.amount, value_date=msg.value_date)
    if not fresh:
        known = await payments_repo.payment(conn, pid)
        if known is None or known["amount"] != msg.amount or known["loan_id"] != msg.loan_id:
            log.error("standing-instruction payment %s told again with %s for loan %s; "
                      "the first stands", msg.payment_id, msg.amount, msg.loan_id)
        else:
            log.info("standing-instruction payment %s is already booked", msg.payment_id)
        return
    await ledger_repo.post(conn, postings.standing_instruction(
        msg.payment_id, msg.loan_id, msg.account_id, msg.amount, day=msg.value_date))
    uow.emit(RepaymentReceived(
        loan_id=msg.loan_id, payment_id=msg.payment_id, amount=msg.amount,
        currency=msg.currency, payer_msisdn=None, provider=PROVIDER,
        external_ref=msg.payment_id, received_at=at), key=msg.loan_id)


def is_standing_instruction(row: asyncpg.Record) -> bool:
    return bool(row["source"] == SOURCE)


async def give_back(uow: UnitOfWork, row: asyncpg.Record, amount: Decimal,
                    reason: str) -> None:
    """Return ``amount`` of a standing-instruction payment loans did not take to the
    account it came from (once: the ledger's transfer id)."""
    conn = uow.conn
    pid = row["id"]
    paid = await repo.by_payment(conn, pid)
    if paid is None:
        log.error("payment %s is a standing-instruction payment with no account recorded; "
                  "%s left in suspense", pid, amount)
        return
    savings_payment_id, account_id = paid
    if amount <= 0:
        return
    if await ledger_repo.entry_exists(conn, f"standing_instruction_return:{savings_payment_id}"):
        log.info("standing-instruction payment %s was already given back", savings_payment_id)
        return
    await ledger_repo.post(conn, postings.standing_instruction_return(
        savings_payment_id, row["loan_id"], account_id, amount))
    await payments_repo.set_payment_status(conn, pid, "refunded", only_from="refund_pending")
    uow.emit(SavingsDepositReceived(
        account_id=account_id, payment_id=savings_payment_id, amount=amount,
        currency=row["currency"], payer_msisdn=None, provider=PROVIDER,
        external_ref=f"standing_instruction_return:{savings_payment_id}",
        received_at=system_clock()), key=account_id)
    log.info("standing-instruction payment %s: %s given back to savings account %s (%s)",
             savings_payment_id, amount, account_id, reason)
