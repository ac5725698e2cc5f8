"""What to do with a payout given what the provider says (pure).

A payout is ``pending`` until the provider accepted it (202), then
``submitted`` until a callback or a poll settles it; ``completed`` and
``failed`` are final. The request carries an expiry (the saga's deadline): a
provider does not execute a request after it, so a payout the provider never
acknowledged can be failed safely once the deadline (plus a grace period for
clock skew) has passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class PayoutStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
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
    SEND = "send"   # (re)send the request: safe, the correlation id makes it idempotent
    WAIT = "wait"


@dataclass(frozen=True)
class ProviderView:
    seen: Seen
    reference: str | None = None
    server_correlation_id: str | None = None
    reason: str = ""


def decide(status: PayoutStatus, view: ProviderView, now: dt.datetime,
           deadline: dt.datetime, grace: dt.timedelta) -> Action:
    if status in FINAL:
        return Action.WAIT
    if view.seen is Seen.COMPLETED:
        return Action.COMPLETE
    if view.seen is Seen.FAILED:
        return Action.FAIL
    expired = now > deadline + grace
    if view.seen is Seen.NOT_FOUND:
        return Action.FAIL if now > deadline else Action.SEND
    # pending or unreachable: the provider will not execute after the expiry
    return Action.FAIL if expired else Action.WAIT
