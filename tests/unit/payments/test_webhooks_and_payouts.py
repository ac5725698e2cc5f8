"""Webhook signatures, payout decisions and reconciliation matching (no I/O)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain.payouts import (
    Action,
    PayoutStatus,
    ProviderView,
    Seen,
    decide,
    doubt_query_delay,
)
from services.payments.domain.reconciliation import Item, reconcile
from services.payments.domain.webhooks import SignatureRejected, sign, verify
from services.payments.settings import DEV_CALLBACK_SECRET
from simulators.mobile_money.app import sign as simulator_sign

NOW = 1_800_000_000
BODY = b'{"transactionReference":"SIM-1","amount":"500.00"}'


def test_a_valid_signature_passes_and_the_simulator_signs_the_same_way() -> None:
    sig = simulator_sign(DEV_CALLBACK_SECRET, "msg_1", NOW, BODY)
    assert sig == sign(DEV_CALLBACK_SECRET, "msg_1", NOW, BODY)
    assert verify([DEV_CALLBACK_SECRET], "msg_1", str(NOW), sig, BODY, NOW) == NOW


@given(st.binary(min_size=1, max_size=200))
def test_any_change_to_the_body_breaks_the_signature(extra: bytes) -> None:
    sig = sign(DEV_CALLBACK_SECRET, "msg_1", NOW, BODY)
    with pytest.raises(SignatureRejected):
        verify([DEV_CALLBACK_SECRET], "msg_1", str(NOW), sig, BODY + extra, NOW)


def test_the_id_and_timestamp_are_signed_too() -> None:
    sig = sign(DEV_CALLBACK_SECRET, "msg_1", NOW, BODY)
    with pytest.raises(SignatureRejected):
        verify([DEV_CALLBACK_SECRET], "msg_2", str(NOW), sig, BODY, NOW)
    with pytest.raises(SignatureRejected):
        verify([DEV_CALLBACK_SECRET], "msg_1", str(NOW + 1), sig, BODY, NOW)


def test_stale_and_future_timestamps_are_refused_naming_the_header() -> None:
    for ts in (NOW - 301, NOW + 301):
        sig = sign(DEV_CALLBACK_SECRET, "m", ts, BODY)
        with pytest.raises(SignatureRejected) as err:
            verify([DEV_CALLBACK_SECRET], "m", str(ts), sig, BODY, NOW)
        assert err.value.field == "webhook-timestamp"
    sig = sign(DEV_CALLBACK_SECRET, "m", NOW - 299, BODY)
    assert verify([DEV_CALLBACK_SECRET], "m", str(NOW - 299), sig, BODY, NOW)


def test_key_rotation_accepts_either_secret_and_several_signatures() -> None:
    old, new = "whsec_b2xkLXNlY3JldA==", "whsec_bmV3LXNlY3JldA=="
    sig_old = sign(old, "m", NOW, BODY)
    verify([new, old], "m", str(NOW), sig_old, BODY, NOW)
    both = f"{sign(new, 'm', NOW, BODY)} {sig_old}"
    verify([new], "m", str(NOW), both, BODY, NOW)
    with pytest.raises(SignatureRejected):
        verify([new], "m", str(NOW), sig_old, BODY, NOW)


def test_missing_headers_are_named() -> None:
    with pytest.raises(SignatureRejected) as err:
        verify([DEV_CALLBACK_SECRET], "m", str(NOW), None, BODY, NOW)
    assert err.value.field == "webhook-signature"


T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
DEADLINE = T0 + dt.timedelta(minutes=10)
GRACE = dt.timedelta(seconds=5)


LATE = DEADLINE + dt.timedelta(seconds=6)  # past the deadline and its grace


@pytest.mark.parametrize(("status", "seen", "now", "expected"), [
    (PayoutStatus.SUBMITTED, Seen.COMPLETED, T0, Action.COMPLETE),
    (PayoutStatus.SUBMITTED, Seen.COMPLETED, DEADLINE + dt.timedelta(hours=1), Action.COMPLETE),
    (PayoutStatus.SUBMITTED, Seen.FAILED, T0, Action.FAIL),
    (PayoutStatus.SUBMITTED, Seen.PENDING, T0, Action.WAIT),
    # doubt is a state, not a failure: no word after the deadline (+ grace) → in doubt
    (PayoutStatus.SUBMITTED, Seen.PENDING, LATE, Action.DOUBT),
    (PayoutStatus.PENDING, Seen.UNREACHABLE, T0, Action.WAIT),
    (PayoutStatus.PENDING, Seen.UNREACHABLE, DEADLINE + dt.timedelta(seconds=3), Action.WAIT),
    (PayoutStatus.PENDING, Seen.UNREACHABLE, LATE, Action.DOUBT),
    (PayoutStatus.PENDING, Seen.NOT_FOUND, T0, Action.SEND),
    (PayoutStatus.PENDING, Seen.NOT_FOUND, DEADLINE + dt.timedelta(seconds=1), Action.WAIT),
    (PayoutStatus.PENDING, Seen.NOT_FOUND, LATE, Action.DOUBT),
    # in doubt: only the provider's word settles it, however late
    (PayoutStatus.IN_DOUBT, Seen.NOT_FOUND, LATE, Action.WAIT),
    (PayoutStatus.IN_DOUBT, Seen.UNREACHABLE, LATE, Action.WAIT),
    (PayoutStatus.IN_DOUBT, Seen.PENDING, LATE + dt.timedelta(days=30), Action.WAIT),
    (PayoutStatus.IN_DOUBT, Seen.COMPLETED, LATE, Action.COMPLETE),
    (PayoutStatus.IN_DOUBT, Seen.FAILED, LATE, Action.FAIL),
    (PayoutStatus.COMPLETED, Seen.FAILED, T0, Action.WAIT),
    (PayoutStatus.FAILED, Seen.COMPLETED, T0, Action.WAIT),
])
def test_payout_decisions(status: PayoutStatus, seen: Seen, now: dt.datetime,
                          expected: Action) -> None:
    assert decide(status, ProviderView(seen), now, DEADLINE, GRACE) is expected


@pytest.mark.parametrize(("status", "seen", "now", "expected"), [
    (PayoutStatus.PENDING, Seen.NOT_FOUND, DEADLINE + dt.timedelta(seconds=1), Action.FAIL),
    (PayoutStatus.IN_DOUBT, Seen.NOT_FOUND, LATE, Action.FAIL),
    (PayoutStatus.SUBMITTED, Seen.PENDING, LATE, Action.DOUBT),   # it may still execute
    (PayoutStatus.PENDING, Seen.UNREACHABLE, LATE, Action.DOUBT),
    (PayoutStatus.PENDING, Seen.NOT_FOUND, T0, Action.SEND),
])
def test_a_provider_that_honours_expiry_fails_what_it_does_not_know_after_it(
        status: PayoutStatus, seen: Seen, now: dt.datetime, expected: Action) -> None:
    assert decide(status, ProviderView(seen), now, DEADLINE, GRACE,
                  honours_expiry=True) is expected


@pytest.mark.parametrize(("seen", "now", "expected"), [
    (Seen.NOT_FOUND, T0, Action.SEND),
    (Seen.UNREACHABLE, T0, Action.WAIT),
    (Seen.NOT_FOUND, DEADLINE + dt.timedelta(seconds=1), Action.FAIL),
    (Seen.UNREACHABLE, LATE, Action.FAIL),
])
def test_a_request_never_sent_fails_safely_after_its_deadline(
        seen: Seen, now: dt.datetime, expected: Action) -> None:
    assert decide(PayoutStatus.PENDING, ProviderView(seen), now, DEADLINE, GRACE,
                  sent=False) is expected


def test_an_in_doubt_payout_is_asked_at_a_slower_capped_pace() -> None:
    delays = [doubt_query_delay(n, 30.0, 900.0) for n in range(8)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]
    assert doubt_query_delay(10_000, 30.0, 900.0) == 900.0


def test_reconciliation_sorts_every_item_into_one_bucket() -> None:
    ours = [Item("A", "disbursement", Decimal("100.00"), {}),
            Item("B", "collection", Decimal("50.00"), {}),
            Item("C", "collection", Decimal("20.00"), {})]
    theirs = [Item("A", "disbursement", Decimal("100.00"), {}),
              Item("B", "merchantpay", Decimal("55.00"), {}),
              Item("D", "merchantpay", Decimal("10.00"), {})]
    result = reconcile(ours, theirs)
    assert [r["reference"] for r in result["matched"]] == ["A"]
    assert [(r["reference"], r["ledger_amount"], r["provider_amount"])
            for r in result["amount_mismatch"]] == [("B", Decimal("50.00"), Decimal("55.00"))]
    assert [r["reference"] for r in result["ours_only"]] == ["C"]
    assert [r["reference"] for r in result["theirs_only"]] == ["D"]
    assert result["summary"]["reconciled"] is False
    assert reconcile(ours[:1], theirs[:1])["summary"]["reconciled"] is True
