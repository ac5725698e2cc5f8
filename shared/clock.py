"""The one clock: what time it is, and which business day that is.

Code that needs the time takes a :data:`Clock` (a callable returning an aware UTC
datetime) from the composition root instead of calling ``datetime.now``; a test passes
a clock it moves itself, so a deadline is reached by setting the time rather than by
waiting real seconds. A "day" is the institution's business day, a local day in
``Africa/Casablanca``, in every service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

Clock = Callable[[], dt.datetime]

BUSINESS_TZ = ZoneInfo("Africa/Casablanca")


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def business_date(at: dt.datetime) -> dt.date:
    """The business day an instant belongs to (a payment at 00:30 local time belongs to
    that local day, whatever the UTC date)."""
    if at.tzinfo is None:
        raise ValueError("business_date needs an aware datetime")
    return at.astimezone(BUSINESS_TZ).date()


def today(clock: Clock = system_clock) -> dt.date:
    """Today's business date by ``clock``."""
    return business_date(clock())


class ManualClock:
    """A clock a test (or a replay) sets and advances; starts at ``start``."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or system_clock()
        if self.now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now
