"""Triggers held for a client not yet projected: released when the client registers,
settled stale (recorded suppressed) when the client never does."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from services.notifications.domain.held import STALE_REASON, client_lock_key, is_stale
from services.notifications.handlers.policies import Policies
from services.notifications.handlers.triggers import create_message, trigger_of
from services.notifications.metrics import HELD_TRIGGERS
from services.notifications.repository import held as held_repo
from shared.envelope import Envelope, UnknownMessageType
from shared.uow import UnitOfWork

log = logging.getLogger("noria.notifications")


async def release_held(uow: UnitOfWork, policies: Policies, client_id: str) -> int:
    """Create the messages of the triggers held for ``client_id``, as if they arrived now.

    Same path as a live event (client's language, consent and blocking, quiet hours,
    one message per event and template), except that a trigger whose event is older
    than ``policies.held_max_age`` is recorded suppressed (``stale_unknown_client``).
    Returns how many were released.
    """
    released = 0
    for raw in await held_repo.take_held(uow.conn, client_id):
        try:
            source = Envelope.model_validate(raw)
            trig = await trigger_of(uow.conn, source.parse())
        except (ValidationError, UnknownMessageType) as exc:
            # Never fail the registration (the client would not be projected at all).
            log.error("held trigger %s for client %s cannot be read any more, dropped: %s",
                      raw.get("event_id"), client_id, exc)
            HELD_TRIGGERS.labels("unreadable").inc()
            continue
        if trig is None:
            continue
        stale = is_stale(source.occurred_at, policies.clock(), policies.held_max_age)
        made = await create_message(uow, policies, trig, source=source,
                                    suppress=STALE_REASON if stale else None)
        released += 1
        if not stale:
            HELD_TRIGGERS.labels("released").inc()
        log.info("released held %s %s for client %s: %s", source.type, source.event_id,
                 client_id, "already had its message" if made is None
                 else f"message {made.id} {made.status}"
                 + (f" ({made.reason})" if made.reason else ""))
    return released


async def expire_held(uow: UnitOfWork, policies: Policies, limit: int = 100) -> int:
    """Settle the triggers held longer than ``policies.held_max_age`` for clients who
    never registered: each becomes its message, suppressed ``stale_unknown_client``, so
    none waits in ``held_triggers`` for ever. (A client registered meanwhile gets the
    normal release.) Returns how many triggers were settled."""
    settled = 0
    before = policies.clock() - policies.held_max_age
    for client_id in await held_repo.clients_held_since(uow.conn, before, limit):
        # in client order, under the lock create_message and registration take
        await held_repo.lock_client(uow.conn, client_lock_key(client_id))
        settled += await release_held(uow, policies, client_id)
    return settled
