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
from services.payments.domain import savings as savings_rules
from services.payments.domain import servicing as servicing_rules
from services.payments.handlers import (
    accounting,
    group_repayments,
    recoveries,
    standing_instructions,
)
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.repository import servicing as servicing_repo
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
    # Matched by payment id: the payment may carry a short reference (or have been
    # matched to a loan by operators) while loans answers with the loan's id.
    row = await servicing_repo.payment(uow.conn, pid, lock=True) if pid else None
    if row is None:
        # a member's share of a group payment (its id derived by loans), or unknown
        await group_repayments.member_applied(uow, msg)
        return
    if row["status"] != "received":
        log.info("payment %s is already %s; RepaymentApplied ignored", pid, row["status"])
        return
    if row["amount"] != msg.amount or not servicing_rules.same_loan(
            row["loan_id"], row["resolved_loan_id"], msg.loan_id, msg.reference):
        raise InvalidInput(
            f"RepaymentApplied says {msg.amount} on loan {msg.loan_id}; payment {pid} was "
            f"{row['amount']} for loan {row['loan_id']}", field="amount")
    await servicing_repo.mark_applied(uow.conn, row["id"], msg.loan_id)
    parts = {"principal": msg.principal_paid, "interest": msg.interest_paid,
             "fees": msg.fees_paid, "penalties": msg.penalties_paid}
    # What loans did not apply (the part beyond what closes the loan; on a recovery, the
    # part beyond what was written off) stays in suspense only until it is refunded.
    allocated = msg.amount - msg.unallocated
    journal_id = ""
    if allocated > 0:
        entry = (postings.recovery(str(pid), msg.loan_id, allocated) if msg.recovery
                 else await accounting.repayment_entry(uow.conn, str(pid), msg.loan_id,
                                                       allocated, parts))
        posted = await ledger_repo.post(uow.conn, entry)
        journal_id = str(posted.entry_id)
    uow.emit(RepaymentPosted(loan_id=msg.loan_id, payment_id=msg.payment_id,
                             amount=allocated, journal_id=journal_id), key=msg.loan_id)
    if msg.unallocated > 0:
        reason = ("recovery: the part beyond what was written off" if msg.recovery
                  else "overpayment: the excess beyond what closes the loan")
        await start_refund(uow, settings, row, msg.unallocated, None, msg.client_id,
                           reason, loan_id=msg.loan_id)


async def repayment_rejected(uow: UnitOfWork, settings: PaymentsSettings,
                             msg: RepaymentRejected) -> None:
    conn = uow.conn
    pid = _payment_uuid(msg.payment_id)
    row = await payments_repo.payment(conn, pid, lock=True) if pid else None
    if row is None:
        # a member's share of a group payment (its id derived by loans), or unknown
        await group_repayments.member_rejected(uow, msg)
        return
    if row["status"] != "received":
        log.info("payment %s is already %s; RepaymentRejected ignored", pid, row["status"])
        return
    if msg.held_for_review:
        # a mistyped short reference: kept in suspense for operators to match or refund
        await servicing_repo.hold(conn, row["id"], f"{msg.reason}: {msg.detail}"
                                  if msg.detail else msg.reason)
        log.info("payment %s held for review (%s)", pid, msg.reason)
        return
    if await recoveries.hold_for_recovery(conn, row, msg):
        # it may be a member giving back the payout of a failed group disbursement
        return
    amount: Decimal = min(msg.refundable_amount, row["amount"])
    await payments_repo.set_payment_status(conn, row["id"], "refund_pending", msg.reason)
    await start_refund(uow, settings, row, amount, msg.payer_msisdn, msg.client_id,
                       msg.reason)


async def start_refund(uow: UnitOfWork, settings: PaymentsSettings, row: asyncpg.Record,
                       amount: Decimal, payer_msisdn: str | None, client_id: str,
                       reason: str, *, loan_id: str | None = None) -> None:
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
    # the loan it went to (a payment carrying a short reference: the loan loans resolved)
    loan: str = loan_id or row["loan_id"]
    await ledger_repo.post(conn, postings.refund_due(str(pid), loan, amount))
    msisdn = row["payer_msisdn"] or payer_msisdn
    if msisdn is None:
        await payments_repo.set_payment_status(conn, pid, "refund_failed")
        uow.emit(RefundFailed(
            loan_id=loan, savings_account_id=savings_rules.account_of(loan),
            payment_id=str(pid), amount=amount,
            reason=f"{reason}: no payer wallet to refund; held in client payable for "
                   "review"), key=loan)
        return
    entry = postings.refund_payout(str(pid), loan, row["provider"], amount)
    await ledger_repo.post(conn, entry)
    await payouts_repo.insert_payout(
        conn, kind="refund", saga_id=f"refund:{pid}", request_hash=entry.request_hash(),
        loan_id=loan, client_id=client_id, partner_id=row["partner_id"] or "",
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
