"""What to do with a payout given what the provider says (pure).

A payout is ``pending`` until the provider accepted it (202), then
``submitted`` until a callback or a poll settles it; ``completed`` and
``failed`` are final. Doubt is a state, not a failure: a payout whose outcome
the provider has not told us once its deadline (plus a grace period for clock
skew) has passed is ``in_doubt`` — nothing is reversed, it keeps being queried
and only the provider's word (a confirmed callback, a status query, its
statement) or an operator's settlement with evidence ends it. A real provider
executes what it accepted whatever expiry we sent, so "not found after the
deadline" is a failure only for a provider configured as honouring expiry, or
for a request that never left our hands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class PayoutStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    IN_DOUBT = "in_doubt"
    COMPLETED = "completed"
    FAILED = "failed"


FINAL = {PayoutStatus.COMPLETED, PayoutStatus.FAILED}


class Seen(StrEnum):
    """The provider's answer about one request."""

    COMPLETED = "completed"
    FAILED = "failed"
    PENDING = "pending"
    NOT_FOUND = "not_found"      # the provider has no request with our correlation id
    UNREACHABLE = "unreachable"  # timeout, connection error, 5xx


class Action(StrEnum):
    COMPLETE = "complete"
    FAIL = "fail"
    DOUBT = "doubt"  # the outcome is unknown after the deadline: in doubt, nothing reversed
    SEND = "send"    # (re)send the request: safe, the correlation id makes it idempotent
    WAIT = "wait"


@dataclass(frozen=True)
class ProviderView:
    seen: Seen
    reference: str | None = None
    server_correlation_id: str | None = None
    reason: str = ""


def decide(status: PayoutStatus, view: ProviderView, now: dt.datetime,
           deadline: dt.datetime, grace: dt.timedelta, *, honours_expiry: bool = False,
           sent: bool = True) -> Action:
    """The next step for a payout.

    ``sent``: whether the request may have left our hands (it was sent at least
    once); ``honours_expiry``: whether the provider refuses to execute a request
    after the expiry we send (only then is "not found after the deadline" a
    failure).
    """
    if status in FINAL:
        return Action.WAIT
    if view.seen is Seen.COMPLETED:
        return Action.COMPLETE
    if view.seen is Seen.FAILED:
        return Action.FAIL
    if not sent and now > deadline:
        return Action.FAIL  # never sent, so the provider cannot have it; not sent late
    if status is PayoutStatus.IN_DOUBT:
        if view.seen is Seen.NOT_FOUND and honours_expiry and now > deadline:
            return Action.FAIL
        return Action.WAIT  # keep asking; only the provider's word settles it
    expired = now > deadline + grace
    if view.seen is Seen.NOT_FOUND:
        if now <= deadline:
            return Action.SEND
        if honours_expiry:
            return Action.FAIL  # the provider refuses what it had not received by then
        return Action.DOUBT if expired else Action.WAIT
    # pending or unreachable: the provider may still execute (or have executed) it
    return Action.DOUBT if expired else Action.WAIT


def doubt_query_delay(queries: int, first_s: float, max_s: float) -> float:
    """How long until an in-doubt payout is asked again: ``first_s``, doubling with every
    query, at most ``max_s``."""
    return float(min(max_s, first_s * (2 ** min(max(queries, 0), 30))))
