"""Application layer: events in, messages out. Handlers take a unit of work, never commit."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from services.notifications import message_store as store
from services.notifications import repository as repo
from services.notifications.db import Conn
from services.notifications.domain.held import (
    DEFAULT_MAX_AGE,
    STALE_REASON,
    client_lock_key,
    is_stale,
)
from services.notifications.domain.messages import (
    QuietHours,
    Receipt,
    Recipient,
    RetryPolicy,
    Status,
    combine_parts,
    is_stop,
    suppression_reason,
)
from services.notifications.domain.templates import pick, render
from services.notifications.domain.triggers import Trigger, trigger_for
from services.notifications.metrics import HELD_TRIGGERS, SMS_FINISHED
from shared.contracts import clients as c
from shared.contracts import loans as ln
from shared.contracts import payments as pay
from shared.contracts.notifications import SmsDelivered, SmsFailed, SmsOptedOut
from shared.envelope import Contract, Envelope, UnknownMessageType
from shared.inbox import Handler
from shared.uow import UnitOfWork

log = logging.getLogger("noria.notifications")
Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Deps:
    clock: Clock = system_clock
    quiet: QuietHours = field(default_factory=QuietHours)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    held_max_age: dt.timedelta = DEFAULT_MAX_AGE


# -- the projection of clients.events -----------------------------------------------------

def client_registered_handler(deps: Deps) -> Handler:
    async def on_client_registered(uow: UnitOfWork, e: c.ClientRegistered,
                                   env: Envelope) -> None:
        # The same per-client lock as create_message takes before holding a trigger (see
        # there): the triggers held for this client are all committed before we look.
        await repo.lock_client(uow.conn, client_lock_key(e.client_id))
        await repo.upsert_registered(uow.conn, e.client_id, e.partner_id, e.phone,
                                     e.language, e.sms_consent)
        await release_held(uow, deps, e.client_id)

    return on_client_registered


async def release_held(uow: UnitOfWork, deps: Deps, client_id: str) -> int:
    """Create the messages of the triggers held for ``client_id``, as if they arrived now.

    Same path as a live event (client's language, consent and blocking, quiet hours,
    one message per event and template), except that a trigger whose event is older
    than ``deps.held_max_age`` is recorded suppressed (``stale_unknown_client``).
    Returns how many were released.
    """
    released = 0
    for raw in await repo.take_held(uow.conn, client_id):
        try:
            source = Envelope.model_validate(raw)
            trig = trigger_for(source.parse())
        except (ValidationError, UnknownMessageType) as exc:
            # Never fail the registration (the client would not be projected at all).
            log.error("held trigger %s for client %s cannot be read any more, dropped: %s",
                      raw.get("event_id"), client_id, exc)
            HELD_TRIGGERS.labels("unreadable").inc()
            continue
        if trig is None:
            continue
        stale = is_stale(source.occurred_at, deps.clock(), deps.held_max_age)
        made = await create_message(uow, deps, trig, source=source,
                                    suppress=STALE_REASON if stale else None)
        released += 1
        if not stale:
            HELD_TRIGGERS.labels("released").inc()
        log.info("released held %s %s for client %s: %s", source.type, source.event_id,
                 client_id, "already had its message" if made is None
                 else f"message {made.id} {made.status}"
                 + (f" ({made.reason})" if made.reason else ""))
    return released


async def expire_held(uow: UnitOfWork, deps: Deps, limit: int = 100) -> int:
    """Settle the triggers held longer than ``deps.held_max_age`` for clients who never
    registered: each becomes its message, suppressed ``stale_unknown_client``, so none
    waits in ``held_triggers`` for ever. (A client registered meanwhile gets the normal
    release.) Returns how many triggers were settled."""
    settled = 0
    before = deps.clock() - deps.held_max_age
    for client_id in await repo.clients_held_since(uow.conn, before, limit):
        # in client order, under the lock create_message and registration take
        await repo.lock_client(uow.conn, client_lock_key(client_id))
        settled += await release_held(uow, deps, client_id)
    return settled


async def _update(uow: UnitOfWork, client_id: str, kind: str, **changes: Any) -> None:
    if not await repo.update_recipient(uow.conn, client_id, **changes):
        log.info("%s for client %s, who is not in the projection: ignored", kind, client_id)


async def on_phone_changed(uow: UnitOfWork, e: c.ClientPhoneChanged, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, phone=e.phone)


async def on_language_changed(uow: UnitOfWork, e: c.ClientLanguageChanged,
                              env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, language=e.language)


async def on_consent_changed(uow: UnitOfWork, e: c.ClientConsentChanged, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, consent=e.sms_consent)


async def on_blocked(uow: UnitOfWork, e: c.ClientBlocked, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, blocked=True)


async def on_unblocked(uow: UnitOfWork, e: c.ClientUnblocked, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, blocked=False)


# -- creating messages -------------------------------------------------------------------

async def _recipient_for(conn: Conn, client_id: str | None,
                         phone: str | None) -> Recipient | None:
    recipient = await repo.get_recipient(conn, client_id) if client_id else None
    if recipient is None and phone:
        same_phone = await repo.recipients_by_phone(conn, phone)
        recipient = same_phone[0] if same_phone else None
    return recipient


async def create_message(uow: UnitOfWork, deps: Deps, trig: Trigger, *,
                         source: Envelope | None = None, language: str | None = None,
                         urgent: bool | None = None, requested_by: str | None = None,
                         resend_of: uuid.UUID | None = None,
                         suppress: str | None = None) -> store.NewMessage | None:
    """Render ``trig`` for its recipient and queue it (or record it suppressed).

    An event naming a client the projection does not know yet is held (see
    :func:`release_held`), unless it is already too old to be sent. ``suppress``
    records the message suppressed with that reason whatever the recipient.
    Returns None when the event is held or already produced this template's message.
    """
    conn = uow.conn
    client_id = trig.client_id
    if client_id is None and trig.loan_id is not None:
        client_id = await repo.client_of_loan(conn, trig.loan_id)
    recipient = await _recipient_for(conn, client_id, trig.phone)
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
        await repo.lock_client(conn, client_lock_key(client_id))
        recipient = await _recipient_for(conn, client_id, trig.phone)
        if recipient is None:
            if is_stale(source.occurred_at, deps.clock(), deps.held_max_age):
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
    templates = await repo.current_templates(conn)
    template = pick(templates, trig.template, lang)
    rendered = render(template, trig.variables)
    now = deps.clock()
    is_urgent = template.urgent if urgent is None else urgent
    not_before = now if is_urgent else (deps.quiet.release_time(now) or now)
    message = store.NewMessage(
        id=uuid.uuid4(), template=template.name, template_version=template.version,
        language=lang, text=rendered.text, encoding=rendered.encoded.encoding,
        segments=rendered.encoded.segments, urgent=is_urgent,
        status="suppressed" if reason else "queued", reason=reason, not_before=not_before,
        source_event_id=source.event_id if source else None,
        source_type=source.type if source else None,
        client_id=recipient.client_id if recipient else client_id,
        partner_id=recipient.partner_id if recipient else None, loan_id=trig.loan_id,
        phone=phone, resend_of=resend_of, requested_by=requested_by)
    if not await store.insert_message(conn, message):
        log.info("event %s already produced a %s message", message.source_event_id,
                 template.name)
        return None
    if reason:
        log.info("message %s (%s) suppressed: %s", message.id, template.name, reason)
    if reason == STALE_REASON:
        HELD_TRIGGERS.labels("stale").inc()
    return message


async def _hold(conn: Conn, source: Envelope, client_id: str, trig: Trigger) -> None:
    if await repo.hold_trigger(conn, source.event_id, client_id, trig.loan_id, source.type,
                               source.model_dump(mode="json")):
        HELD_TRIGGERS.labels("held").inc()
        log.info("%s %s (%s) is for client %s, not in the projection yet: held until"
                 " ClientRegistered", source.type, source.event_id, trig.template, client_id)


def trigger_handler(deps: Deps) -> Handler:
    async def on_event(uow: UnitOfWork, event: Contract, env: Envelope) -> None:
        if isinstance(event, ln.LoanEvent):
            await repo.remember_loan(uow.conn, event.loan_id, event.client_id,
                                     getattr(event, "partner_id", None))
        trig = trigger_for(event)
        if trig is not None:
            await create_message(uow, deps, trig, source=env)

    return on_event


async def on_loan_event(uow: UnitOfWork, event: ln.LoanEvent, env: Envelope) -> None:
    await repo.remember_loan(uow.conn, event.loan_id, event.client_id,
                             getattr(event, "partner_id", None))


def handlers(deps: Deps) -> dict[str, Handler]:
    send = trigger_handler(deps)
    table: dict[str, Handler] = {
        "ClientRegistered": client_registered_handler(deps),
        "ClientPhoneChanged": on_phone_changed,
        "ClientLanguageChanged": on_language_changed,
        "ClientConsentChanged": on_consent_changed,
        "ClientBlocked": on_blocked,
        "ClientUnblocked": on_unblocked,
        "LoanSubmitted": on_loan_event,
        "LoanApproved": on_loan_event,
    }
    for contract in (ln.LoanDisbursed, ln.RepaymentApplied, ln.RepaymentDue, ln.LoanInArrears,
                     ln.LoanDisbursementFailed, ln.LoanClosed, c.ClientKycVerified,
                     c.ClientKycRejected, pay.RefundIssued):
        table[contract.type_name()] = send
    return table


# -- receipts and replies ------------------------------------------------------------------

async def apply_receipts(uow: UnitOfWork, deps: Deps) -> int:
    """Apply the receipts whose parts are known; finish messages whose parts all ended.

    One batch, set-based: the outcome is the one applying the receipts one by one,
    in order, gives — a part takes its last receipt's status, and a message ends
    with the first receipt after which its parts combine to an outcome.
    """
    conn = uow.conn
    rows = await store.pending_receipts(conn)
    if not rows:
        return 0
    keys = list(dict.fromkeys((row["message_id"], row["attempt"]) for row in rows))
    parts = await store.part_statuses(conn, keys)
    last: dict[tuple[str, str], tuple[Status, str]] = {}
    ends: dict[Any, tuple[Status, Receipt]] = {}  # message id -> (outcome, its receipt)
    for row in rows:
        receipt = Receipt(row["provider_message_id"], row["stat"])
        part = (row["provider"], row["provider_message_id"])
        last[part] = (receipt.status, receipt.stat)
        statuses = parts[(row["message_id"], row["attempt"])]
        statuses[part] = receipt.status
        if row["message_id"] in ends:
            continue  # an earlier receipt ended it (or tried to): later ones change nothing
        outcome = combine_parts(list(statuses.values()))
        if outcome is not None:
            ends[row["message_id"]] = (outcome, receipt)
    await store.apply_part_statuses(conn, [row["id"] for row in rows],
                                    [(p, i, st, stat) for (p, i), (st, stat) in last.items()])
    if not ends:
        return len(rows)
    finished = await store.finish_submitted(conn, [
        (mid, outcome, None if outcome == "delivered" else f"receipt {receipt.stat}",
         True if outcome == "failed" else None)
        for mid, (outcome, receipt) in ends.items()], deps.clock())
    for mid, (outcome, _) in ends.items():
        msg = finished.get(mid)
        if msg is None:
            continue
        key = str(msg["id"])
        SMS_FINISHED.labels(outcome).inc()
        if outcome == "delivered":
            uow.emit(SmsDelivered(message_id=key, client_id=msg["client_id"],
                                  template=msg["template"], provider=msg["provider"]), key=key)
        else:
            uow.emit(SmsFailed(message_id=key, client_id=msg["client_id"],
                               template=msg["template"], provider=msg["provider"],
                               reason=msg["reason"] or outcome, permanent=outcome == "failed"),
                     key=key)
    return len(rows)


async def record_receipt(uow: UnitOfWork, deps: Deps, provider: str, receipt: Receipt) -> None:
    await store.store_receipt(uow.conn, provider, receipt.provider_message_id, receipt.stat,
                              receipt.error)


async def record_opt_out(uow: UnitOfWork, phone: str, source: str,
                         requested_by: str | None) -> list[str]:
    ids = await repo.opt_out(uow.conn, phone, source, requested_by)
    for client_id in ids or [None]:  # type: ignore[list-item]
        uow.emit(SmsOptedOut(phone=phone, client_id=client_id, source=source),
                 key=client_id or phone)
    return ids


async def record_reply(uow: UnitOfWork, provider: str, phone: str, text: str) -> bool:
    """Store a reply; STOP withdraws consent for that phone. True when it was a STOP."""
    stop = is_stop(text)
    await uow.conn.execute(
        "INSERT INTO replies (provider, phone, text, is_stop) VALUES ($1, $2, $3, $4)",
        provider, phone, text[:1000], stop)
    if stop:
        await record_opt_out(uow, phone, "sms_stop", None)
    return stop
