"""When the scheduler reconciles which business day, and the alerts of a matching."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.payments.domain.reconciliation import Item, alerts, reconcile
from services.payments.handlers.reconciliation import day_bounds, due_days
from services.payments.settings import PaymentsSettings

S = PaymentsSettings(database_url="postgresql://x@127.0.0.1/x",
                     reconciliation_interval_s=3600, reconciliation_yesterday_after_s=1800)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_a_business_day_is_a_casablanca_day() -> None:
    start, end = day_bounds(dt.date(2026, 11, 14))
    assert (start, end) == (utc("2026-11-13T23:00:00"), utc("2026-11-14T23:00:00"))


def test_today_hourly_and_yesterday_once_after_midnight() -> None:
    # 23:10 UTC is 00:10 the next business day: yesterday's statement is not complete yet
    now = utc("2026-11-14T23:10:00")
    assert due_days(now, None, None, S) == [dt.date(2026, 11, 15)]
    assert due_days(now, now - dt.timedelta(minutes=5), None, S) == []
    later = utc("2026-11-14T23:40:00")  # 00:40 local: yesterday is due, once
    assert due_days(later, later - dt.timedelta(minutes=5), None, S) == [dt.date(2026, 11, 14)]
    assert due_days(later, later - dt.timedelta(minutes=5), later, S) == []
    assert due_days(later + dt.timedelta(hours=1), later, later, S) == [dt.date(2026, 11, 15)]


def test_each_difference_is_one_alert() -> None:
    ours = [Item("A", "collection", Decimal("10.00"), {"loan_id": "L"}),
            Item("B", "disbursement", Decimal("5.00"), {}),
            Item("C", "collection", Decimal("7.00"), {"loan_id": "L"})]
    theirs = [Item("A", "collection", Decimal("10.00"), {}),
              Item("C", "collection", Decimal("8.00"), {}),
              Item("D", "collection", Decimal("1.00"), {})]
    found = {(a.mismatch, a.reference, a.ours, a.theirs)
             for a in alerts(reconcile(ours, theirs))}
    assert found == {("ours_only", "B", Decimal("5.00"), None),
                     ("amount_mismatch", "C", Decimal("7.00"), Decimal("8.00")),
                     ("theirs_only", "D", None, Decimal("1.00"))}
