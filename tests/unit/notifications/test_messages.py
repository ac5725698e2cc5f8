"""Who gets a message, quiet hours, retries, receipts, replies, triggers."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.messages import (
    CASABLANCA,
    QuietHours,
    Recipient,
    RetryPolicy,
    combine_parts,
    is_stop,
    parse_receipt,
    suppression_reason,
)
from services.notifications.domain.triggers import trigger_for
from shared.contracts.clients import ClientKycVerified
from shared.contracts.loans import LoanInArrears, RepaymentApplied, RepaymentDue
from shared.contracts.payments import RefundIssued


def local(y: int, m: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=CASABLANCA)


class TestQuietHours:
    quiet = QuietHours(21, 8)

    def test_daytime_messages_go_now(self) -> None:
        assert self.quiet.release_time(local(2027, 4, 12, 10)) is None
        assert self.quiet.release_time(local(2027, 4, 12, 20, 59)) is None
        assert self.quiet.release_time(local(2027, 4, 12, 8)) is None

    def test_evening_messages_wait_for_tomorrow_eight_o_clock_casablanca_time(self) -> None:
        release = self.quiet.release_time(local(2027, 4, 12, 23, 30))
        assert release is not None
        assert release.astimezone(CASABLANCA) == local(2027, 4, 13, 8)

    def test_night_messages_wait_for_this_morning(self) -> None:
        release = self.quiet.release_time(local(2027, 4, 13, 3))
        assert release is not None and release.astimezone(CASABLANCA) == local(2027, 4, 13, 8)

    def test_the_clock_is_read_in_casablanca_not_utc(self) -> None:
        # 20:30 UTC is 21:30 in Casablanca outside Ramadan (UTC+1): quiet already.
        utc = dt.datetime(2027, 1, 15, 20, 30, tzinfo=dt.UTC)
        assert self.quiet.release_time(utc) is not None

    def test_equal_hours_disable_quiet_hours(self) -> None:
        assert QuietHours(8, 8).release_time(local(2027, 4, 12, 3)) is None

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(ValueError):
            self.quiet.release_time(dt.datetime(2027, 1, 1, 3))

    @given(st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 1, 1),
                        timezones=st.just(dt.UTC)))
    def test_a_deferred_message_is_released_at_eight_within_a_day(self, now: dt.datetime
                                                                   ) -> None:
        release = self.quiet.release_time(now)
        if release is None:
            assert 8 <= now.astimezone(CASABLANCA).hour < 21
        else:
            # 21:00 to 08:00 is 11 hours, or 12 on a night Morocco's clock goes back an
            # hour (around Ramadan): the release is the next 08:00 local either way.
            assert release > now and release - now <= dt.timedelta(hours=12, minutes=1)
            assert release.astimezone(CASABLANCA).hour == 8


class TestSuppression:
    base = Recipient("c1", "p1", "+212612345678", "fr", consent=True, blocked=False)

    def test_who_may_receive(self) -> None:
        assert suppression_reason(self.base) is None
        assert suppression_reason(None) == "unknown_client"
        assert suppression_reason(Recipient("c1", "p1", "+2126", "fr", False, False)) == \
            "no_consent"
        assert suppression_reason(Recipient("c1", "p1", "+2126", "fr", True, True)) == \
            "client_blocked"
        assert suppression_reason(Recipient("c1", "p1", None, "fr", True, False)) == "no_phone"


class TestRetry:
    policy = RetryPolicy(max_attempts=4, base_s=2, cap_s=30, throttle_s=10)

    def test_exponential_backoff_with_a_cap(self) -> None:
        assert [self.policy.delay(n, "temporary") for n in (1, 2, 3, 4, 10)] == \
            [2, 4, 8, 16, 30]

    def test_throttling_waits_at_least_the_throttle_delay(self) -> None:
        assert self.policy.delay(1, "throttled") == 10
        assert self.policy.delay(5, "throttled") == 30

    def test_permanent_failures_are_never_retried(self) -> None:
        assert self.policy.gives_up(1, "permanent")
        assert not self.policy.gives_up(3, "temporary")
        assert self.policy.gives_up(4, "temporary")


class TestReceipts:
    def test_parse_the_smpp_receipt_text(self) -> None:
        r = parse_receipt("id:8a3f sub:001 dlvrd:001 submit date:2704121030 "
                          "done date:2704121031 stat:DELIVRD err:000 text:Noria: votre")
        assert r is not None and (r.provider_message_id, r.stat, r.status) == \
            ("8a3f", "DELIVRD", "delivered")

    @pytest.mark.parametrize(("stat", "status"), [
        ("UNDELIV", "failed"), ("REJECTD", "failed"), ("EXPIRED", "expired"),
        ("DELIVRD", "delivered"), ("ENROUTE", "submitted")])
    def test_receipt_states(self, stat: str, status: str) -> None:
        r = parse_receipt(f"id:x stat:{stat} err:001")
        assert r is not None and r.status == status

    def test_not_a_receipt(self) -> None:
        assert parse_receipt("STOP") is None

    def test_a_message_is_delivered_when_every_part_is(self) -> None:
        assert combine_parts(["delivered", "submitted"]) is None
        assert combine_parts(["delivered", "delivered"]) == "delivered"
        assert combine_parts(["delivered", "failed"]) == "failed"
        assert combine_parts(["expired", "delivered"]) == "expired"


@pytest.mark.parametrize(("text", "stop"), [
    ("STOP", True), (" stop ", True), ("Stop.", True), ("ARRET", True), ("توقف", True),
    ("stop please call me", False), ("merci", False)])
def test_stop_words(text: str, stop: bool) -> None:
    assert is_stop(text) is stop


class TestTriggers:
    def test_a_repayment_tells_the_remaining_balance_and_next_due(self) -> None:
        event = RepaymentApplied(
            loan_id="L1", client_id="C1", payment_id="P1", amount=Decimal("500.00"),
            allocation=[], principal_paid=Decimal("400"), interest_paid=Decimal("100"),
            fees_paid=Decimal("0"), penalties_paid=Decimal("0"),
            outstanding_principal=Decimal("4100"), outstanding_total=Decimal("4600.00"),
            next_due_date=dt.date(2027, 5, 12), next_due_amount=Decimal("468.20"),
            closes_loan=False)
        t = trigger_for(event)
        assert t is not None and t.template == "repayment_received"
        assert t.variables["remaining"] == Decimal("4600.00")
        assert t.variables["next_due_date"] == dt.date(2027, 5, 12)
        closing = event.model_copy(update={"closes_loan": True, "next_due_date": None,
                                           "next_due_amount": None})
        assert trigger_for(closing) is None  # LoanClosed sends the closing SMS

    def test_each_trigger(self) -> None:
        due = RepaymentDue(loan_id="L", client_id="C", business_date=dt.date(2027, 4, 10),
                           due_date=dt.date(2027, 4, 12), installment=2,
                           amount=Decimal("468.20"))
        arrears = LoanInArrears(loan_id="L", client_id="C", business_date=dt.date(2027, 4, 20),
                                days_in_arrears=8, amount_overdue=Decimal("468.20"),
                                bucket="1-30")
        refund = RefundIssued(loan_id="L", payment_id="P", amount=Decimal("50.00"),
                              msisdn="+212600000001", reason="overpayment")
        kyc = ClientKycVerified(client_id="C", verified_by=str(uuid.uuid4()))
        names = [trigger_for(e).template for e in (due, arrears, refund, kyc)]  # type: ignore[union-attr]
        assert names == ["repayment_due", "arrears_notice", "refund_issued", "kyc_verified"]
        refund_trigger = trigger_for(refund)
        assert refund_trigger is not None and refund_trigger.phone == "+212600000001"
