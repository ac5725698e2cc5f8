"""What payments does with the loans service's answers about a repayment."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain import accounts, postings, repayment_ids
from services.payments.handlers import accounting, standing_instructions
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.settings import PaymentsSettings
from shared.clock import system_clock
from shared.contracts.loans import LoanWrittenOff, RepaymentApplied, RepaymentRejected
from shared.contracts.payments import RefundFailed, RepaymentPosted
from shared.envelope import Envelope
from shared.errors import InvalidInput
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.repayments")


def _payment_uuid(value: str) -> uuid.UUID | None:
    # a wallet's payment is a UUID; a branch cash collection (``csh_…``) or a
    # standing-instruction payment is recorded under a UUID derived from its id
    return repayment_ids.payment_uuid(value)


def repayment_handlers(
    settings: PaymentsSettings,
) -> dict[str, Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]]:
    """The loans service's answers about a repayment, bound to the settings they need."""

    async def on_repayment_applied(uow: UnitOfWork, msg: RepaymentApplied, env: Envelope
                                   ) -> None:
        await repayment_applied(uow, settings, msg)

    async def on_repayment_rejected(uow: UnitOfWork, msg: RepaymentRejected, env: Envelope
                                    ) -> None:
        await repayment_rejected(uow, settings, msg)

    return {
        "RepaymentApplied": on_repayment_applied,
        "RepaymentRejected": on_repayment_rejected,
        "LoanWrittenOff": on_loan_written_off,
    }


async def repayment_applied(uow: UnitOfWork, settings: PaymentsSettings,
                            msg: RepaymentApplied) -> None:
    pid = _payment_uuid(msg.payment_id)
    # locked, and marked posted if it matches, in one statement
    row = await payments_repo.mark_posted(uow.conn, pid, msg.amount, msg.loan_id) if pid else None
    if row is None:
        log.info("RepaymentApplied for unknown payment %s (loan %s); ignored",
                 msg.payment_id, msg.loan_id)
        return
    if row["status"] != "received":
        log.info("payment %s is already %s; RepaymentApplied ignored", pid, row["status"])
        return
    if not row["moved"]:  # received, but for another amount or loan
        raise InvalidInput(
            f"RepaymentApplied says {msg.amount} on loan {msg.loan_id}; payment {pid} was "
            f"{row['amount']} for loan {row['loan_id']}", field="amount")
    parts = {"principal": msg.principal_paid, "interest": msg.interest_paid,
             "fees": msg.fees_paid, "penalties": msg.penalties_paid}
    # An excess within the product's tolerance is accepted but not allocated: it stays
    # in suspense only until it is refunded to the payer.
    allocated = msg.amount - msg.unallocated
    journal_id = ""
    if allocated > 0:
        posted = await ledger_repo.post(uow.conn, await accounting.repayment_entry(
            uow.conn, str(pid), msg.loan_id, allocated, parts))
        journal_id = str(posted.entry_id)
    uow.emit(RepaymentPosted(loan_id=msg.loan_id, payment_id=msg.payment_id,
                             amount=allocated, journal_id=journal_id), key=msg.loan_id)
    if msg.unallocated > 0:
        await start_refund(uow, settings, row, msg.unallocated, None, msg.client_id,
                           "overpayment within tolerance")


async def repayment_rejected(uow: UnitOfWork, settings: PaymentsSettings,
                             msg: RepaymentRejected) -> None:
    conn = uow.conn
    pid = _payment_uuid(msg.payment_id)
    row = await payments_repo.payment(conn, pid, lock=True) if pid else None
    if row is None:
        log.info("RepaymentRejected for unknown payment %s; ignored", msg.payment_id)
        return
    if row["status"] != "received":
        log.info("payment %s is already %s; RepaymentRejected ignored", pid, row["status"])
        return
    amount: Decimal = min(msg.refundable_amount, row["amount"])
    await payments_repo.set_payment_status(conn, row["id"], "refund_pending", msg.reason)
    await start_refund(uow, settings, row, amount, msg.payer_msisdn, msg.client_id,
                       msg.reason)


async def start_refund(uow: UnitOfWork, settings: PaymentsSettings, row: asyncpg.Record,
                       amount: Decimal, payer_msisdn: str | None, client_id: str,
                       reason: str) -> None:
    """Owe ``amount`` back to the payer and queue its payout (paid by the worker).

    Dr suspense / Cr client payable, then Dr client payable / Cr provider
    settlement for the payout; if the payout fails, its reversal leaves the money
    in client payable for an operator.
    """
    conn = uow.conn
    pid: uuid.UUID = row["id"]
    if amount <= 0:
        return
    if standing_instructions.is_standing_instruction(row):
        # paid from savings: it goes back to the account, not to a wallet
        await standing_instructions.give_back(uow, row, amount, reason)
        return
    if row["confirmed_at"] is None:
        # Never pay out money the provider has not confirmed we received (PostgreSQL
        # refuses such a refund payout too).
        log.warning("payment %s is %s: not confirmed by the provider, so nothing is "
                    "refunded", pid, row["status"])
        return
    await ledger_repo.post(conn, postings.refund_due(str(pid), row["loan_id"], amount))
    msisdn = row["payer_msisdn"] or payer_msisdn
    if msisdn is None:
        await payments_repo.set_payment_status(conn, pid, "refund_failed")
        uow.emit(RefundFailed(
            loan_id=row["loan_id"], savings_account_id=savings_rules.account_of(row["loan_id"]),
            payment_id=str(pid), amount=amount,
            reason=f"{reason}: no payer wallet to refund; held in client payable for "
                   "review"), key=row["loan_id"])
        return
    entry = postings.refund_payout(str(pid), row["loan_id"], row["provider"], amount)
    await ledger_repo.post(conn, entry)
    await payouts_repo.insert_payout(
        conn, kind="refund", saga_id=f"refund:{pid}", request_hash=entry.request_hash(),
        loan_id=row["loan_id"], client_id=client_id, partner_id=row["partner_id"] or "",
        payment_id=pid, msisdn=msisdn, amount=amount, currency=row["currency"],
        provider=row["provider"],
        deadline=system_clock() + dt.timedelta(seconds=settings.refund_deadline_s),
        journal_transfer_id=entry.transfer_id)


async def on_loan_written_off(uow: UnitOfWork, msg: LoanWrittenOff, env: Envelope) -> None:
    account = accounts.portfolio(msg.loan_id)
    balance = await ledger_repo.balance(uow.conn, account)
    amount = min(balance, msg.principal_written_off)
    if amount != msg.principal_written_off:
        log.warning("loan %s: write-off of %s but the portfolio holds %s; writing off %s",
                    msg.loan_id, msg.principal_written_off, balance, amount)
    if amount <= 0:
        return
    await ledger_repo.post(uow.conn, await accounting.write_off_entry(
        uow.conn, msg.loan_id, amount))
