"""When a trigger held for a client not yet known is too old to send."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.held import (
    DEFAULT_MAX_AGE,
    STALE_REASON,
    client_lock_key,
    event_age,
    is_stale,
)

NOW = dt.datetime(2027, 3, 12, 10, 0, tzinfo=dt.UTC)


def test_the_default_limit_is_a_day() -> None:
    assert DEFAULT_MAX_AGE == dt.timedelta(hours=24)
    assert STALE_REASON == "stale_unknown_client"


def test_an_event_of_a_day_ago_is_still_sent_and_a_second_later_it_is_not() -> None:
    assert not is_stale(NOW - dt.timedelta(hours=24), NOW)
    assert is_stale(NOW - dt.timedelta(hours=24, seconds=1), NOW)
    assert is_stale(NOW - dt.timedelta(days=90), NOW)


def test_the_limit_is_configurable() -> None:
    ten_minutes_ago = NOW - dt.timedelta(minutes=10)
    assert is_stale(ten_minutes_ago, NOW, dt.timedelta(minutes=5))
    assert not is_stale(ten_minutes_ago, NOW, dt.timedelta(minutes=15))


def test_an_event_stamped_in_the_future_is_fresh() -> None:
    assert not is_stale(NOW + dt.timedelta(minutes=3), NOW)


def test_other_time_zones_compare_as_instants() -> None:
    casablanca_evening = dt.datetime(2027, 3, 11, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert event_age(casablanca_evening, NOW) == dt.timedelta(hours=24)


def test_a_naive_timestamp_is_read_as_utc() -> None:
    assert event_age(dt.datetime(2027, 3, 12, 9, 0), NOW) == dt.timedelta(hours=1)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        is_stale(NOW, NOW.replace(tzinfo=None))


@given(age_s=st.integers(min_value=-10**7, max_value=10**8),
       limit_s=st.integers(min_value=1, max_value=10**7))
def test_stale_exactly_when_older_than_the_limit(age_s: int, limit_s: int) -> None:
    occurred = NOW - dt.timedelta(seconds=age_s)
    assert is_stale(occurred, NOW, dt.timedelta(seconds=limit_s)) == (age_s > limit_s)


@given(a=st.text(min_size=1, max_size=40), b=st.text(min_size=1, max_size=40))
def test_lock_keys_are_namespaced_and_distinct_per_client(a: str, b: str) -> None:
    assert client_lock_key(a).startswith("noria.notifications.client:")
    assert (client_lock_key(a) == client_lock_key(b)) == (a == b)
