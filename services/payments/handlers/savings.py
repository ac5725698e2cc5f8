"""Savings' money in payments: withdrawals paid out, wallet deposits credited to a savings
account, and savings' own movements booked in the ledger.

- ``PayOutWithdrawal`` (``payments.commands``) records one payout of kind ``withdrawal``
  (``saga_id`` ``withdrawal:<withdrawal id>``, unique) and its entry Dr the account's
  deposits / Cr provider settlement, in the inbox transaction; the payout worker pays it
  outside any transaction, with the same idempotency, deadline and in-doubt rules as a
  disbursement (``handlers.payouts``): ``WithdrawalPaidOut``, ``WithdrawalPayoutFailed``
  (the entry reversed) or ``WithdrawalPayoutInDoubt`` (nothing reversed, settled only by
  the provider's word). A repeated command is answered with what is known.
- A confirmed collection whose reference is ``SAV-<account id>`` is credited to that
  account (Dr settlement / Cr deposits) and announced with ``SavingsDepositReceived``
  (:func:`credit_wallet_deposit`, called by ``handlers.collections``).
- ``savings.events`` (:func:`savings_event_handlers`): ``DepositPosted`` from a branch
  (cash, or an opening deposit) is booked Dr branch cash / Cr deposits; a
  ``mobile_money`` one marks the payment posted (its entry was made when it was
  received); ``WithdrawalCompleted.fee`` goes to fee income; ``InterestPosted`` to
  interest expense and withholding tax payable; ``SavingsDepositRejected`` refunds the
  deposit to the payer's wallet through the refund payout (only money the provider
  confirmed is ever refunded).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.payments.domain import postings
from services.payments.domain import savings as rules
from services.payments.domain.ledger import InsufficientBalance
from services.payments.domain.payouts import PayoutStatus
from services.payments.handlers.payouts import answer_again
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.settings import PaymentsSettings
from shared.clock import system_clock
from shared.contracts.payments import RefundFailed
from shared.contracts.savings import (
    DepositPosted,
    InterestPosted,
    PayOutWithdrawal,
    SavingsDepositReceived,
    SavingsDepositRejected,
    WithdrawalCompleted,
    WithdrawalPayoutFailed,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.savings")

Handler = Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]


def withdrawal_saga_id(withdrawal_id: str) -> str:
    """The payout's idempotency key (and, derived from it, the provider correlation id)."""
    return f"withdrawal:{withdrawal_id}"


def command_hash(cmd: PayOutWithdrawal) -> str:
    return hashlib.sha256(orjson.dumps(cmd.model_dump(mode="json"),
                                       option=orjson.OPT_SORT_KEYS)).hexdigest()


# -- withdrawals -------------------------------------------------------------------------


def pay_out_withdrawal_handler(settings: PaymentsSettings) -> Handler:
    async def on_pay_out_withdrawal(uow: UnitOfWork, cmd: PayOutWithdrawal, env: Envelope
                                    ) -> None:
        await pay_out_withdrawal(uow, settings, cmd)

    return on_pay_out_withdrawal


async def pay_out_withdrawal(uow: UnitOfWork, settings: PaymentsSettings,
                             cmd: PayOutWithdrawal) -> None:
    """Record the withdrawal's one payout and its entry (the worker pays it)."""
    conn = uow.conn
    saga_id = withdrawal_saga_id(cmd.withdrawal_id)
    digest = command_hash(cmd)
    existing = await payouts_repo.payout_by_saga(conn, saga_id)
    if existing is not None:
        if existing.request_hash != digest:
            log.error("PayOutWithdrawal %s exists with a different body; ignored (the first "
                      "command stands)", cmd.withdrawal_id)
        else:
            answer_again(uow, existing)
        return
    provider = cmd.provider or settings.default_provider
    entry = rules.withdrawal_payout(cmd.withdrawal_id, cmd.account_id, provider, cmd.amount)
    inserted = await payouts_repo.insert_payout(
        conn, kind="withdrawal", saga_id=saga_id, request_hash=digest, loan_id="",
        client_id=cmd.client_id, partner_id=cmd.partner_id, payment_id=None,
        msisdn=cmd.msisdn, amount=cmd.amount, currency=cmd.currency, provider=provider,
        deadline=cmd.deadline, journal_transfer_id=entry.transfer_id,
        account_id=cmd.account_id)
    if not inserted:  # a concurrent twin recorded it
        return
    payout = await payouts_repo.payout_by_saga(conn, saga_id)
    assert payout is not None
    reason: str | None = None
    if settings.provider(provider) is None:
        reason = f"unknown_provider: no mobile-money provider named {provider!r} is configured"
    else:
        try:
            await ledger_repo.post(conn, entry)
        except InsufficientBalance as exc:
            reason = f"insufficient_float: {exc.detail}"
    if reason is not None:  # never sent: nothing was posted, nothing can have moved
        await payouts_repo.mark_final(conn, payout.id, PayoutStatus.FAILED, reference=None,
                                      reason=reason, resolved_by="validation")
        uow.emit(WithdrawalPayoutFailed(
            account_id=cmd.account_id, withdrawal_id=cmd.withdrawal_id, amount=cmd.amount,
            reason=reason, provider=provider), key=cmd.account_id)
        log.warning("withdrawal %s failed at once: %s", cmd.withdrawal_id, reason)


# -- wallet deposits -----------------------------------------------------------------------


async def credit_wallet_deposit(uow: UnitOfWork, row: asyncpg.Record, account_id: str,
                                reported_ref: str) -> None:
    """A confirmed collection for a savings account: Dr settlement / Cr its deposits, and
    ``SavingsDepositReceived`` (keyed by the account id) in the same transaction."""
    pid = str(row["id"])
    await ledger_repo.post(uow.conn, rules.wallet_deposit(pid, account_id, row["provider"],
                                                          row["amount"]))
    uow.emit(SavingsDepositReceived(
        account_id=account_id, payment_id=pid, amount=row["amount"],
        currency=row["currency"], payer_msisdn=row["payer_msisdn"], provider=row["provider"],
        external_ref=reported_ref, received_at=row["confirmed_at"] or system_clock()),
        key=account_id)


def _payment_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


async def deposit_rejected(uow: UnitOfWork, settings: PaymentsSettings,
                           msg: SavingsDepositRejected) -> None:
    """Savings refused a wallet deposit (unknown or closed account …): refund it, once."""
    conn = uow.conn
    pid = _payment_uuid(msg.payment_id)
    row = await payments_repo.payment(conn, pid, lock=True) if pid else None
    if row is None:
        log.info("SavingsDepositRejected for unknown payment %s; ignored", msg.payment_id)
        return
    account = rules.account_of(row["loan_id"])
    if account != msg.account_id:
        log.error("SavingsDepositRejected names account %s but payment %s was paid to %r; "
                  "ignored", msg.account_id, pid, row["loan_id"])
        return
    if row["status"] != "received":
        log.info("payment %s is already %s; SavingsDepositRejected ignored", pid,
                 row["status"])
        return
    await payments_repo.set_payment_status(conn, row["id"], "refund_pending",
                                           f"savings: {msg.reason}")
    await _start_refund(uow, settings, row, account, msg.reason)


async def _start_refund(uow: UnitOfWork, settings: PaymentsSettings, row: asyncpg.Record,
                        account_id: str, reason: str) -> None:
    """Owe the deposit back (Dr deposits / Cr client payable) and queue its refund payout
    (Dr client payable / Cr settlement, paid by the worker; reversed into client payable
    for review if it fails) — the loans' refund path, from the account's deposits."""
    conn = uow.conn
    pid: uuid.UUID = row["id"]
    amount: Decimal = row["amount"]
    if row["confirmed_at"] is None:  # never refund what the provider has not confirmed
        log.warning("payment %s was never confirmed by the provider: nothing refunded", pid)
        return
    await ledger_repo.post(conn, rules.refund_due(str(pid), account_id, amount))
    reference = row["loan_id"]  # the savings reference the client paid to
    if row["payer_msisdn"] is None:
        await payments_repo.set_payment_status(conn, pid, "refund_failed")
        uow.emit(RefundFailed(
            loan_id=reference, savings_account_id=account_id, payment_id=str(pid),
            amount=amount,
            reason=f"savings refused the deposit ({reason}) and there is no payer wallet to "
                   "refund; held in client payable for review"), key=reference)
        return
    entry = postings.refund_payout(str(pid), reference, row["provider"], amount)
    await ledger_repo.post(conn, entry)
    await payouts_repo.insert_payout(
        conn, kind="refund", saga_id=f"refund:{pid}", request_hash=entry.request_hash(),
        loan_id=reference, client_id="", partner_id=row["partner_id"] or "",
        payment_id=pid, msisdn=row["payer_msisdn"], amount=amount, currency=row["currency"],
        provider=row["provider"],
        deadline=system_clock() + dt.timedelta(seconds=settings.refund_deadline_s),
        journal_transfer_id=entry.transfer_id)


# -- savings' own movements ------------------------------------------------------------------


async def deposit_posted(uow: UnitOfWork, msg: DepositPosted) -> None:
    if msg.channel == "mobile_money":
        # posted when payments credited it (SavingsDepositReceived): only its status moves
        pid = _payment_uuid(msg.payment_id)
        if pid is not None:
            await payments_repo.set_payment_status(uow.conn, pid, "posted",
                                                   only_from="received")
        return
    await ledger_repo.post(uow.conn, rules.branch_deposit(msg.account_id, msg.deposit_id,
                                                          msg.amount))


async def withdrawal_completed(uow: UnitOfWork, msg: WithdrawalCompleted) -> None:
    """The amount left the account's deposits when the payout was recorded; the fee is
    income now that the withdrawal is done."""
    payout = await payouts_repo.payout_by_saga(uow.conn, withdrawal_saga_id(msg.withdrawal_id))
    if payout is None or payout.status is not PayoutStatus.COMPLETED:
        log.error("WithdrawalCompleted %s but payments' payout is %s", msg.withdrawal_id,
                  payout.status.value if payout else "unknown")
    if msg.fee > 0:
        await ledger_repo.post(uow.conn, rules.withdrawal_fee(msg.withdrawal_id,
                                                              msg.account_id, msg.fee))


async def interest_posted(uow: UnitOfWork, msg: InterestPosted) -> None:
    if msg.gross > 0:
        await ledger_repo.post(uow.conn, rules.interest(
            msg.account_id, msg.period_start, msg.period_end, msg.gross))
    if msg.withholding_tax > 0:
        await ledger_repo.post(uow.conn, rules.withholding_tax(
            msg.account_id, msg.period_start, msg.period_end, msg.withholding_tax))


def savings_event_handlers(settings: PaymentsSettings) -> dict[str, Handler]:
    """What payments books from ``savings.events`` (idempotent: the inbox by event id,
    the ledger by transfer id)."""

    async def on_deposit_posted(uow: UnitOfWork, msg: DepositPosted, env: Envelope) -> None:
        await deposit_posted(uow, msg)

    async def on_withdrawal_completed(uow: UnitOfWork, msg: WithdrawalCompleted,
                                      env: Envelope) -> None:
        await withdrawal_completed(uow, msg)

    async def on_interest_posted(uow: UnitOfWork, msg: InterestPosted, env: Envelope
                                 ) -> None:
        await interest_posted(uow, msg)

    async def on_deposit_rejected(uow: UnitOfWork, msg: SavingsDepositRejected,
                                  env: Envelope) -> None:
        await deposit_rejected(uow, settings, msg)

    return {
        "DepositPosted": on_deposit_posted,
        "WithdrawalCompleted": on_withdrawal_completed,
        "InterestPosted": on_interest_posted,
        "SavingsDepositRejected": on_deposit_rejected,
    }
