"""Disbursements, refund payouts and savings withdrawals (``handlers.savings``): recorded
in a transaction, paid by the worker.

``on_disburse_loan`` only records the payout and its ledger entry (Dr the loan's
portfolio / Cr provider settlement); the provider is called by the payout
worker, outside any transaction; ``resolve`` settles a payout from a callback,
a poll or the deadline, exactly once (the payout row is locked). A payout whose
outcome is unknown after its deadline is put *in doubt* (``DisbursementInDoubt``
/ ``RefundInDoubt``, nothing reversed) and settled only by the provider's word —
a callback, a status query, or reconciliation and an operator's settlement with
evidence through :func:`settle_from_evidence`.

A repeated ``DisburseLoan`` (the saga's resend after a lost reply) is answered
with what payments already knows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import orjson

from services.payments.domain import postings
from services.payments.domain import savings as savings_postings
from services.payments.domain.ledger import InsufficientBalance
from services.payments.domain.payouts import (
    FINAL,
    Action,
    PayoutStatus,
    ProviderView,
    Seen,
    doubt_query_delay,
)
from services.payments.metrics import PAYOUTS_IN_DOUBT_TOTAL, PAYOUTS_SETTLED
from services.payments.repository import Conn
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as repo
from services.payments.repository.payouts import Payout
from services.payments.settings import PaymentsSettings
from shared.clock import Clock, system_clock
from shared.contracts.payments import (
    DisburseLoan,
    DisbursementCompleted,
    DisbursementFailed,
    DisbursementInDoubt,
    RefundFailed,
    RefundInDoubt,
    RefundIssued,
)
from shared.contracts.savings import (
    WithdrawalPaidOut,
    WithdrawalPayoutFailed,
    WithdrawalPayoutInDoubt,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.payouts")


def command_hash(cmd: DisburseLoan) -> str:
    return hashlib.sha256(orjson.dumps(cmd.model_dump(mode="json"),
                                       option=orjson.OPT_SORT_KEYS)).hexdigest()


def disburse_loan_handler(
    settings: PaymentsSettings,
) -> Callable[[UnitOfWork, DisburseLoan, Envelope], Awaitable[None]]:
    async def on_disburse_loan(uow: UnitOfWork, cmd: DisburseLoan, env: Envelope) -> None:
        await disburse_loan(uow, settings, cmd)

    return on_disburse_loan


async def disburse_loan(uow: UnitOfWork, settings: PaymentsSettings, cmd: DisburseLoan
                        ) -> None:
    """Record the payout of ``DisburseLoan`` and its ledger entry (the worker pays it)."""
    conn = uow.conn
    digest = command_hash(cmd)
    existing = await repo.payout_by_saga(conn, cmd.saga_id)
    if existing is not None:
        if existing.request_hash != digest:
            log.error("DisburseLoan for saga %s exists with a different body; ignored "
                      "(the first command stands)", cmd.saga_id)
        else:
            answer_again(uow, existing)
        return
    provider = cmd.provider or settings.default_provider
    entry = postings.disbursement(cmd.saga_id, cmd.loan_id, provider, cmd.amount)
    inserted = await repo.insert_payout(
        conn, kind="disbursement", saga_id=cmd.saga_id, request_hash=digest,
        loan_id=cmd.loan_id, client_id=cmd.client_id, partner_id=cmd.partner_id,
        payment_id=None, msisdn=cmd.msisdn, amount=cmd.amount, currency=cmd.currency,
        provider=provider, deadline=cmd.deadline, journal_transfer_id=entry.transfer_id)
    if not inserted:  # a concurrent twin recorded it
        return
    payout = await repo.payout_by_saga(conn, cmd.saga_id)
    assert payout is not None
    reason: str | None = None
    if settings.provider(provider) is None:
        reason = f"unknown_provider: no mobile-money provider named {provider!r} is configured"
    else:
        try:
            await ledger_repo.post(conn, entry)
        except InsufficientBalance as exc:
            reason = f"insufficient_float: {exc.detail}"
    if reason is not None:
        await repo.mark_final(conn, payout.id, PayoutStatus.FAILED, reference=None,
                              reason=reason, resolved_by="validation")
        uow.emit(DisbursementFailed(
            loan_id=cmd.loan_id, saga_id=cmd.saga_id, client_id=cmd.client_id,
            amount=cmd.amount, reason=reason, provider=provider), key=cmd.loan_id)
        log.warning("disbursement for saga %s failed at once: %s", cmd.saga_id, reason)


def answer_again(uow: UnitOfWork, payout: Payout) -> None:
    """The saga sent ``DisburseLoan`` again (its reply may be lost): answer with what is
    known — completed, failed or in doubt — or nothing new while the payout is working."""
    if payout.status is PayoutStatus.COMPLETED:
        _emit_completed(uow, payout, payout.provider_reference or str(payout.correlation_id),
                        payout.completed_at or payout.created_at)
    elif payout.status is PayoutStatus.FAILED:
        _emit_failed(uow, payout, payout.failure_reason or "the payout failed")
    elif payout.status is PayoutStatus.IN_DOUBT:
        _emit_in_doubt(uow, payout, payout.in_doubt_reason or "the outcome is not known",
                       payout.in_doubt_since or payout.created_at)
    else:
        log.info("DisburseLoan for saga %s again: the payout is %s; nothing new to say",
                 payout.saga_id, payout.status.value)
        return
    log.info("DisburseLoan for saga %s again: answered %s again", payout.saga_id,
             payout.status.value)


async def settle_from_evidence(uow: UnitOfWork, settings: PaymentsSettings,
                               payout_id: uuid.UUID, outcome: str, reference: str | None,
                               resolved_by: str, *, reason: str = "",
                               clock: Clock = system_clock) -> Payout | None:
    """Settle a payout not yet final on the provider's word found elsewhere: its statement
    (reconciliation, ``resolved_by="reconciliation"``) or an operator's approved
    settlement with evidence (``"operator"``). ``outcome``: ``completed`` or ``failed``.

    In the caller's transaction; a payout already final is returned unchanged (the
    first word stands), so calling it twice changes nothing.
    """
    if outcome not in ("completed", "failed"):
        raise ValueError(f"outcome must be completed or failed, not {outcome!r}")
    if outcome == "completed":
        view = ProviderView(Seen.COMPLETED, reference=reference)
        action = Action.COMPLETE
    else:
        view = ProviderView(Seen.FAILED, reference=reference,
                            reason=reason or f"failed ({resolved_by})")
        action = Action.FAIL
    return await resolve(uow, settings, payout_id, view, action, resolved_by, clock=clock)


async def resolve(uow: UnitOfWork, settings: PaymentsSettings, payout_id: uuid.UUID,
                  view: ProviderView, action: Action, resolved_by: str, *,
                  clock: Clock = system_clock) -> Payout | None:
    """Apply the decision about one payout; a final payout is never changed again."""
    conn = uow.conn
    payout = await repo.payout(conn, payout_id, lock=True)
    if payout is None or payout.status in FINAL:
        return payout
    cfg = settings.provider(payout.provider)
    poll_after = cfg.poll_after_s if cfg else 5.0
    in_doubt = payout.status is PayoutStatus.IN_DOUBT
    if action in (Action.COMPLETE, Action.FAIL):
        PAYOUTS_SETTLED.labels(payout.kind, payout.provider,
                               "completed" if action is Action.COMPLETE else "failed",
                               resolved_by).inc()
    if action is Action.COMPLETE:
        reference = view.reference or view.server_correlation_id or str(payout.correlation_id)
        await repo.mark_final(conn, payout.id, PayoutStatus.COMPLETED, reference=reference,
                              reason=None, resolved_by=resolved_by)
        _emit_completed(uow, payout, reference, clock())
        if payout.payment_id is not None:
            await payments_repo.set_payment_status(conn, payout.payment_id, "refunded",
                                                   only_from="refund_pending")
    elif action is Action.FAIL:
        reason = view.reason or "the payout did not complete before its deadline"
        await _reverse(conn, payout)
        await repo.mark_final(conn, payout.id, PayoutStatus.FAILED, reference=view.reference,
                              reason=reason, resolved_by=resolved_by)
        _emit_failed(uow, payout, reason)
        if payout.payment_id is not None:
            await payments_repo.set_payment_status(conn, payout.payment_id, "refund_failed",
                                                   only_from="refund_pending")
    elif action is Action.DOUBT and not in_doubt:
        since = clock()
        reason = (f"no word from the provider by the deadline (+ grace): it answered "
                  f"{view.seen.value}" + (f" ({view.reason})" if view.reason else ""))
        await repo.mark_in_doubt(
            conn, payout.id, since=since, reason=reason,
            server_correlation_id=view.server_correlation_id,
            next_after_s=doubt_query_delay(0, settings.in_doubt_poll_s,
                                           settings.in_doubt_poll_max_s))
        PAYOUTS_IN_DOUBT_TOTAL.labels(payout.kind, payout.provider).inc()
        _emit_in_doubt(uow, payout, reason, since)
        log.warning("payout %s (%s) is in doubt: %s", payout.saga_id, payout.kind, reason)
    elif in_doubt:  # still no word: ask again later, more slowly
        await repo.doubt_asked(
            conn, payout.id, error=view.reason or view.seen.value,
            server_correlation_id=view.server_correlation_id,
            next_after_s=doubt_query_delay(payout.doubt_queries + 1, settings.in_doubt_poll_s,
                                           settings.in_doubt_poll_max_s))
    elif action is Action.SEND:
        await repo.retry_later(conn, payout.id, view.reason or "not found at the provider",
                               0.0)
    elif view.server_correlation_id is not None:
        await repo.mark_submitted(conn, payout.id, view.server_correlation_id, poll_after)
    else:
        await repo.retry_later(conn, payout.id, view.reason or view.seen.value, poll_after)
    return await repo.payout(conn, payout.id)


async def _reverse(conn: Conn, payout: Payout) -> None:
    if payout.kind == "withdrawal":
        assert payout.account_id is not None
        original = dataclasses.replace(
            savings_postings.withdrawal_payout(_withdrawal_id(payout), payout.account_id,
                                               payout.provider, payout.amount),
            transfer_id=payout.journal_transfer_id)
    elif payout.kind == "disbursement":
        original = postings.disbursement(payout.saga_id, payout.loan_id, payout.provider,
                                         payout.amount)
    else:
        assert payout.payment_id is not None
        # The entry this payout posted: a refund's first payout is `refund:<payment>`, an
        # operator's retry `refund:<payment>:retry:<n>`, each reversed on its own.
        original = dataclasses.replace(
            postings.refund_payout(str(payout.payment_id), payout.loan_id, payout.provider,
                                   payout.amount),
            transfer_id=payout.journal_transfer_id)
    await ledger_repo.post(conn, original.reversal(memo=f"payout {payout.saga_id} failed"))


def _withdrawal_id(p: Payout) -> str:
    return p.saga_id.removeprefix("withdrawal:")


def _emit_completed(uow: UnitOfWork, p: Payout, reference: str, at: dt.datetime) -> None:
    if p.kind == "withdrawal":
        assert p.account_id is not None
        uow.emit(WithdrawalPaidOut(
            account_id=p.account_id, withdrawal_id=_withdrawal_id(p), amount=p.amount,
            currency=p.currency, msisdn=p.msisdn, provider=p.provider,
            provider_reference=reference, completed_at=at), key=p.account_id)
    elif p.kind == "disbursement":
        uow.emit(DisbursementCompleted(
            loan_id=p.loan_id, saga_id=p.saga_id, client_id=p.client_id, amount=p.amount,
            currency=p.currency, msisdn=p.msisdn, provider=p.provider,
            provider_reference=reference, completed_at=at), key=p.loan_id)
    else:
        assert p.payment_id is not None
        uow.emit(RefundIssued(
            loan_id=p.loan_id, savings_account_id=savings_postings.account_of(p.loan_id),
            payment_id=str(p.payment_id), amount=p.amount, msisdn=p.msisdn,
            reason="repayment rejected by loans; refunded to the payer's wallet"),
            key=p.loan_id)


def _emit_failed(uow: UnitOfWork, p: Payout, reason: str) -> None:
    if p.kind == "withdrawal":
        assert p.account_id is not None
        uow.emit(WithdrawalPayoutFailed(
            account_id=p.account_id, withdrawal_id=_withdrawal_id(p), amount=p.amount,
            reason=reason, provider=p.provider), key=p.account_id)
    elif p.kind == "disbursement":
        uow.emit(DisbursementFailed(
            loan_id=p.loan_id, saga_id=p.saga_id, client_id=p.client_id, amount=p.amount,
            reason=reason, provider=p.provider), key=p.loan_id)
    else:
        assert p.payment_id is not None
        uow.emit(RefundFailed(
            loan_id=p.loan_id, savings_account_id=savings_postings.account_of(p.loan_id),
            payment_id=str(p.payment_id), amount=p.amount,
            reason=f"refund payout failed ({reason}); held in client payable for review"),
            key=p.loan_id)


def _emit_in_doubt(uow: UnitOfWork, p: Payout, reason: str, since: dt.datetime) -> None:
    if p.kind == "withdrawal":
        assert p.account_id is not None
        uow.emit(WithdrawalPayoutInDoubt(
            account_id=p.account_id, withdrawal_id=_withdrawal_id(p), amount=p.amount,
            provider=p.provider, reason=reason, since=since), key=p.account_id)
    elif p.kind == "disbursement":
        uow.emit(DisbursementInDoubt(
            loan_id=p.loan_id, saga_id=p.saga_id, client_id=p.client_id, amount=p.amount,
            provider=p.provider, reason=reason, since=since), key=p.loan_id)
    else:
        assert p.payment_id is not None
        uow.emit(RefundInDoubt(
            loan_id=p.loan_id, savings_account_id=savings_postings.account_of(p.loan_id),
            payment_id=str(p.payment_id), amount=p.amount,
            provider=p.provider, reason=reason, since=since), key=p.loan_id)
