"""Triggers held until their client is known: when one is too old to send.

A trigger event naming a client the projection has not seen yet is held, not
suppressed, and released when the client's ``ClientRegistered`` is applied. A refund
of a savings deposit names only the account: one for an account the projection has
not seen yet (``savings.events`` and ``payments.events`` are read concurrently) is
held under :func:`account_hold_key` until the account's ``SavingsAccountOpened``.
Released (or arriving) long after the event happened, it is not sent: a fresh
deployment reading an old backlog must not text people about months-old events.
"""

from __future__ import annotations

import datetime as dt

STALE_REASON = "stale_unknown_client"
DEFAULT_MAX_AGE = dt.timedelta(hours=24)


def event_age(occurred_at: dt.datetime, now: dt.datetime) -> dt.timedelta:
    """How long ago the event happened (a naive ``occurred_at`` is taken as UTC)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=dt.UTC)
    return now - occurred_at


def is_stale(occurred_at: dt.datetime, now: dt.datetime,
             max_age: dt.timedelta = DEFAULT_MAX_AGE) -> bool:
    """True when an event that happened at ``occurred_at`` is too old to send at ``now``.

    An event stamped in the future (a producer's clock ahead of ours) is fresh.
    """
    return event_age(occurred_at, now) > max_age


def client_lock_key(client_id: str) -> str:
    """The advisory-lock name serialising holding and releasing for one client.

    Advisory locks are database-wide: the prefix keeps this service's keys apart
    from other services' locks on the same server.
    """
    return f"noria.notifications.client:{client_id}"


def account_hold_key(account_id: str) -> str:
    """The key a trigger about a savings account not projected yet is held under (in
    ``held_triggers.client_id``, which no client id can equal: they start ``cl-``)."""
    return f"savings-account:{account_id.lower()}"
