"""The daily close of business closes the business day once it has ended (local time),
and the day before until then, so a night missed is caught up at the next check."""

from __future__ import annotations

import datetime as dt

from services.savings.jobs import scheduled_date

END = dt.time(23, 45)


def at(utc: str) -> dt.datetime:
    return dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)


def test_before_the_end_of_the_business_day_it_is_yesterday() -> None:
    # 21:00 UTC is 22:00 in Casablanca (UTC+1): the 14th has not ended
    assert scheduled_date(at("2025-01-14T21:00:00"), END) == dt.date(2025, 1, 13)


def test_after_the_end_of_the_business_day_it_is_today() -> None:
    # 22:50 UTC is 23:50 local: the 14th has ended
    assert scheduled_date(at("2025-01-14T22:50:00"), END) == dt.date(2025, 1, 14)


def test_the_business_day_is_the_local_one() -> None:
    # 23:30 UTC on the 14th is 00:30 local on the 15th: the 14th is the one to close
    assert scheduled_date(at("2025-01-14T23:30:00"), END) == dt.date(2025, 1, 14)
