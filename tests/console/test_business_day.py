"""The console's "today" is the institution's business day in Africa/Casablanca, not the
UTC date: at 23:30 UTC on 7 December it is already 8 December in Casablanca (UTC+1), and
every page that defaults to today (the day's collections, the savings day, the officer's
collection sheet, the branch's cash count, the due list) opens on the 8th. During Ramadan
Morocco is on UTC+0, and 23:30 UTC is still the same day. The pages that default to a
month or a year (the calendar, the period to close, the savings statement) or to yesterday
(the reconciliation) take them from the business day too: at 23:30 UTC on 31 December it
is already 2027 in Casablanca."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from console.views import business
from tests.console.fake_platform import State
from tests.console.operators import console_as
from tests.console.test_savings_org_pages import savings_account

CASABLANCA = ZoneInfo("Africa/Casablanca")
LATE_EVENING_UTC = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.UTC)
RAMADAN_EVENING_UTC = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
PAGES = ("/collections", "/savings/day", "/collection-sheet", "/branch-cash", "/due")


def test_the_instants_are_what_the_tests_say() -> None:
    """The offsets the tests rely on, from the time-zone database itself."""
    late = LATE_EVENING_UTC.astimezone(CASABLANCA)
    assert late.utcoffset() == dt.timedelta(hours=1) and late.date() == dt.date(2026, 12, 8)
    ramadan = RAMADAN_EVENING_UTC.astimezone(CASABLANCA)
    assert ramadan.utcoffset() == dt.timedelta(0) and ramadan.date() == dt.date(2026, 3, 1)


@pytest.mark.parametrize("path", PAGES)
async def test_after_midnight_in_casablanca_the_pages_open_on_the_next_day(
        path: str, fake_services: dict[str, str], fake_state: State,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(business, "now", lambda: LATE_EVENING_UTC)
    async with console_as(fake_services, fake_state, "amina") as console:
        page = await console.get(path)
    assert page.status_code == 200, page.text
    assert 'type="date" name="date" value="2026-12-08"' in page.text, path


async def test_during_ramadan_late_evening_utc_is_still_the_same_day(
        fake_services: dict[str, str], fake_state: State,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(business, "now", lambda: RAMADAN_EVENING_UTC)
    async with console_as(fake_services, fake_state, "amina") as console:
        page = await console.get("/collections")
    assert page.status_code == 200, page.text
    assert 'type="date" name="date" value="2026-03-01"' in page.text


NEW_YEARS_EVE_UTC = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)
"""Already 1 January 2027 in Casablanca (UTC+1): a new month and a new year."""
MONTH_AND_YEAR_PAGES = (
    # the year whose holidays the calendar shows, and the next one's link (2027 by UTC)
    ("/calendar", 'rel="next" href="/calendar?year=2028"'),
    # the month to close: the business day's last month (2026-11 by UTC)
    ("/accounting/periods", 'name="period" value="2026-12"'),
    # the reconciliation opens on the business day's yesterday (2026-12-30 by UTC)
    ("/reconciliation", 'type="date" name="date" value="2026-12-31"'),
    # the savings account's statement opens on the business day's month (2026-12 by UTC)
    ("/savings/accounts/{account}", 'rel="next" href="/savings/accounts/{account}?month=2027-02"'),
)


@pytest.mark.parametrize(("path", "expected"), MONTH_AND_YEAR_PAGES)
async def test_the_month_and_year_defaults_follow_the_business_day(
        path: str, expected: str, fake_services: dict[str, str], fake_state: State,
        monkeypatch: pytest.MonkeyPatch) -> None:
    account = savings_account(fake_state, f"C-{uuid.uuid4().hex[:8]}")
    assert NEW_YEARS_EVE_UTC.astimezone(CASABLANCA).date() == dt.date(2027, 1, 1)
    monkeypatch.setattr(business, "now", lambda: NEW_YEARS_EVE_UTC)
    async with console_as(fake_services, fake_state, "amina") as console:
        page = await console.get(path.format(account=account))
    assert page.status_code == 200, page.text
    assert expected.format(account=account) in page.text, path
