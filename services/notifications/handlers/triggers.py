"""Trigger events (loans, KYC decisions, refunds, savings) become messages: rendered for their
recipient and queued, recorded suppressed, or held until the client is known."""

from __future__ import annotations

import logging
import uuid

from services.notifications.domain.held import (
    STALE_REASON,
    account_hold_key,
    client_lock_key,
    is_stale,
)
from services.notifications.domain.messages import Recipient, suppression_reason
from services.notifications.domain.templates import newest_fillable, pick, render
from services.notifications.domain.triggers import Trigger, savings_account_of, trigger_for
from services.notifications.handlers.policies import Policies
from services.notifications.metrics import HELD_TRIGGERS
from services.notifications.repository import Conn
from services.notifications.repository import contacts as contacts_repo
from services.notifications.repository import held as held_repo
from services.notifications.repository import messages as messages_repo
from services.notifications.repository import savings as savings_repo
from services.notifications.repository.messages import NewMessage
from shared.contracts import loans as ln
from shared.contracts import payments as pay
from shared.contracts import savings as sv
from shared.envelope import Contract, Envelope
from shared.inbox import Handler
from shared.uow import UnitOfWork

log = logging.getLogger("noria.notifications")


async def _recipient_for(conn: Conn, client_id: str | None,
                         phone: str | None) -> Recipient | None:
    recipient = await contacts_repo.get_recipient(conn, client_id) if client_id else None
    if recipient is None and phone:
        same_phone = await contacts_repo.recipients_by_phone(conn, phone)
        recipient = same_phone[0] if same_phone else None
    return recipient


async def create_message(uow: UnitOfWork, policies: Policies, trig: Trigger, *,
                         source: Envelope | None = None, language: str | None = None,
                         urgent: bool | None = None, requested_by: str | None = None,
                         resend_of: uuid.UUID | None = None,
                         suppress: str | None = None,
                         remember: tuple[str, str, str | None] | None = None
                         ) -> NewMessage | None:
    """Render ``trig`` for its recipient and queue it (or record it suppressed).

    An event naming a client the projection does not know yet is held (see
    :func:`services.notifications.handlers.held.release_held`), unless it is already
    too old to be sent. ``suppress`` records the message suppressed with that reason
    whatever the recipient. ``remember`` (loan id, client id, partner id) is a loan →
    client row to remember first, in the statement that reads the recipient. Returns
    None when the event is held or already produced this template's message.
    """
    conn = uow.conn
    client_id = trig.client_id
    if client_id is None and trig.loan_id is not None:
        if remember is not None:  # the loan's client may be the one this event teaches
            await contacts_repo.remember_loan(conn, *remember)
            remember = None
        client_id = await contacts_repo.client_of_loan(conn, trig.loan_id)
    # the recipient and the templates' generation, in one statement
    looked = await contacts_repo.look_up(conn, client_id, remember)
    recipient = looked.recipient
    if recipient is None and trig.phone:
        same_phone = await contacts_repo.recipients_by_phone(conn, trig.phone)
        recipient = same_phone[0] if same_phone else None
    if recipient is None and client_id is not None and source is not None:
        # The trigger consumer and the clients.events consumer run concurrently. Without
        # this lock we could read "no recipient", then ClientRegistered commits after
        # finding nothing held, then we hold the trigger: held forever, SMS never sent.
        # on_client_registered takes the same lock before its upsert and release, so
        # either it went first and the re-read below (a new snapshot: READ COMMITTED)
        # sees the recipient, or our hold commits before its release looks. Taken only
        # on this rare path; a deadlock between two batch transactions (each holding
        # one client's lock, waiting for the other's) aborts one, and the inbox replays
        # that batch one event at a time, with retries, each taking one lock at most.
        await held_repo.lock_client(conn, client_lock_key(client_id))
        recipient = await _recipient_for(conn, client_id, trig.phone)
        if recipient is None:
            if is_stale(source.occurred_at, policies.clock(), policies.held_max_age):
                suppress = suppress or STALE_REASON  # it would never be sent: say so now
            else:
                await _hold(conn, source, client_id, trig)
                return None
    reason = suppression_reason(recipient)
    phone = trig.phone or (recipient.phone if recipient else None)
    if recipient is not None and trig.phone and recipient.phone != trig.phone:
        # Someone else's wallet (a refund to the payer): no consent of theirs is known.
        reason = None if phone else "no_phone"
    reason = suppress or reason
    lang = language or (recipient.language if recipient else "fr")
    # in memory, as of the generation read with the recipient (or newer)
    templates = await policies.templates.get(conn, looked.template_generation)
    template = pick(templates.current, trig.template, lang)
    if any(name not in trig.variables for name in template.placeholders()) and (
            templates.shipped_with_the_code(template)):
        # A version shipped with the code may be newer than the event's publisher (a
        # LoanDisbursed without the TEG): write it with the version it can fill. An
        # operator's version the events cannot fill is the operator's mistake: render
        # names what is missing and the event waits in the dead letters for a fix.
        older = newest_fillable(
            templates.versions.get((trig.template, lang), []), trig.variables)
        template = older or template  # none: render names what is missing
    rendered = render(template, trig.variables)
    now = policies.clock()
    is_urgent = template.urgent if urgent is None else urgent
    not_before = now if is_urgent else (policies.quiet.release_time(now) or now)
    message = NewMessage(
        id=uuid.uuid4(), template=template.name, template_version=template.version,
        language=lang, text=rendered.text, encoding=rendered.encoded.encoding,
        segments=rendered.encoded.segments, urgent=is_urgent,
        status="suppressed" if reason else "queued", reason=reason, not_before=not_before,
        source_event_id=source.event_id if source else None,
        source_type=source.type if source else None,
        client_id=recipient.client_id if recipient else client_id,
        partner_id=recipient.partner_id if recipient else None, loan_id=trig.loan_id,
        phone=phone, resend_of=resend_of, requested_by=requested_by,
        dedup_key=trig.dedup_key if resend_of is None and requested_by is None else None)
    if not await messages_repo.insert_message(conn, message):
        log.info("event %s already produced a %s message%s", message.source_event_id,
                 template.name, f" (or another did: {trig.dedup_key})"
                 if message.dedup_key else "")
        return None
    if reason:
        log.info("message %s (%s) suppressed: %s", message.id, template.name, reason)
    if reason == STALE_REASON:
        HELD_TRIGGERS.labels("stale").inc()
    return message


async def _hold(conn: Conn, source: Envelope, client_id: str, trig: Trigger) -> None:
    """Hold ``source`` under ``client_id`` (a client's id, or an account's
    :func:`account_hold_key`) until the projection learns it."""
    if await held_repo.hold_trigger(conn, source.event_id, client_id, trig.loan_id,
                                    source.type, source.model_dump(mode="json")):
        HELD_TRIGGERS.labels("held").inc()
        log.info("%s %s (%s) is for %s, not in the projection yet: held until it is",
                 source.type, source.event_id, trig.template, client_id)


def _unknown_account(event: Contract, trig: Trigger) -> str | None:
    """The savings account a refund is about, when the projection does not know it."""
    if trig.client_id is not None or not isinstance(event, pay.RefundIssued | pay.RefundFailed):
        return None
    return savings_account_of(event)


async def _held_for_account(uow: UnitOfWork, policies: Policies, account: str,
                            trig: Trigger, source: Envelope) -> bool:
    """Hold a refund of a deposit into ``account``, not projected yet: its
    SavingsAccountOpened is on another topic and may be consumed after it. The lock is
    the one :func:`services.notifications.handlers.projection.on_savings_account_opened`
    takes before it releases, so the hold is either seen by that release or not needed."""
    if is_stale(source.occurred_at, policies.clock(), policies.held_max_age):
        return False  # an old refund for an account never seen: recorded suppressed
    key = account_hold_key(account)
    await held_repo.lock_client(uow.conn, client_lock_key(key))
    if await savings_repo.client_of(uow.conn, account) is not None:
        return False  # opened meanwhile: the caller reads the trigger again
    await _hold(uow.conn, source, key, trig)
    return True


async def trigger_of(conn: Conn, event: Contract) -> Trigger | None:
    """:func:`trigger_for` with what the projections add: the last known balance of a
    savings account for an event that does not carry one, the client of the savings
    account a refund is about."""
    balance = None
    account_client = None
    if isinstance(event, sv.AccountDormant):
        balance = await savings_repo.balance_of(conn, event.account_id)
    if isinstance(event, pay.RefundIssued | pay.RefundFailed):
        account = savings_account_of(event)
        if account is not None:
            account_client = await savings_repo.client_of(conn, account)
    return trigger_for(event, balance=balance, account_client=account_client)


def trigger_handler(policies: Policies) -> Handler:
    """The handler of every event that may send an SMS (loan events also teach the
    loan → client table, savings events the accounts' balances)."""
    async def on_event(uow: UnitOfWork, event: Contract, env: Envelope) -> None:
        remember = None
        if isinstance(event, ln.LoanEvent):
            remember = (event.loan_id, event.client_id, getattr(event, "partner_id", None))
        balance = getattr(event, "ledger_balance", None)
        if isinstance(event, sv.SavingsEvent) and balance is not None:
            await savings_repo.remember_balance(uow.conn, event.account_id, event.client_id,
                                                balance, env.occurred_at)
        trig = await trigger_of(uow.conn, event)
        account = _unknown_account(event, trig) if trig is not None else None
        if trig is not None and account is not None:
            if await _held_for_account(uow, policies, account, trig, env):
                return
            trig = await trigger_of(uow.conn, event)
        if trig is not None:  # the loan → client row is remembered by create_message's read
            await create_message(uow, policies, trig, source=env, remember=remember)
        elif remember is not None:
            await contacts_repo.remember_loan(uow.conn, *remember)

    return on_event
