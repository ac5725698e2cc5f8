"""The disbursement saga's decide(): each path, and invariants over any reply order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain import saga as sg
from services.loans.domain.loan import Loan, LoanStatus

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = sg.SagaPolicy(credit_timeout=timedelta(seconds=60),
                       payout_timeout=timedelta(seconds=600),
                       payout_grace=timedelta(seconds=60), max_resends=1)


def started() -> tuple[sg.SagaState, list[sg.Command]]:
    return sg.start(saga_id="s1", loan_id="l1", client_id="c1", partner_id="p1",
                    amount=Decimal("5000.00"), now=T0, policy=POLICY)


def reserved(at: datetime = T0) -> sg.CreditReservedReply:
    return sg.CreditReservedReply(at, "+212612345678", "fr")


def kinds(commands: list[sg.Command]) -> list[str]:
    return [type(c).__name__ for c in commands if not isinstance(c, sg.Note)]


def test_start_reserves_credit_with_a_deadline() -> None:
    state, commands = started()
    assert state.state is sg.SagaStatus.RESERVING_CREDIT
    assert state.step is sg.Step.RESERVE_CREDIT
    assert state.deadline == T0 + POLICY.credit_timeout
    assert kinds(commands) == ["SendReserveCredit"]


def test_happy_path() -> None:
    state, _ = started()
    state, commands = sg.decide(state, reserved(), POLICY)
    assert state.state is sg.SagaStatus.DISBURSING and state.step is sg.Step.DISBURSE
    assert kinds(commands) == ["MarkLoanDisbursing", "SendDisburseLoan"]
    payout_deadline = T0 + POLICY.payout_timeout
    assert commands[1] == sg.SendDisburseLoan(payout_deadline)
    assert state.deadline == payout_deadline + POLICY.payout_grace
    done_at = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    state, commands = sg.decide(state, sg.PayoutCompleted(T0, done_at, "ref"), POLICY)
    assert state.state is sg.SagaStatus.COMPLETED and state.deadline is None
    assert commands == [sg.ActivateLoan(date(2026, 3, 2))]


def test_a_loan_is_disbursed_on_the_business_day_the_money_left() -> None:
    """23:30 UTC on 7 December is 00:30 on the 8th in Casablanca: the loan's day (its
    schedule, its interest) is the 8th, as every service's business day."""
    state, _ = started()
    state, _ = sg.decide(state, reserved(), POLICY)
    done_at = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    state, commands = sg.decide(state, sg.PayoutCompleted(T0, done_at, "ref"), POLICY)
    assert commands == [sg.ActivateLoan(date(2026, 12, 8))]


def test_credit_rejected_rejects_the_loan_and_ends() -> None:
    state, _ = started()
    state, commands = sg.decide(state, sg.CreditRejectedReply(T0, "kyc_not_verified"), POLICY)
    assert state.state is sg.SagaStatus.CREDIT_REJECTED and state.deadline is None
    assert commands == [sg.RejectLoan("kyc_not_verified")]


def test_failed_payout_compensates_then_release_confirms() -> None:
    state, _ = started()
    state, _ = sg.decide(state, reserved(), POLICY)
    state, commands = sg.decide(state, sg.PayoutFailed(T0, "insufficient_float"), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATING and state.compensating
    assert kinds(commands) == ["SendReleaseCredit", "FailLoanDisbursement"]
    state, commands = sg.decide(state, sg.CreditReleasedReply(T0), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATED and state.deadline is None
    assert commands == []


def test_unanswered_payout_is_resent_then_in_doubt_without_compensating() -> None:
    state, _ = started()
    state, first = sg.decide(state, reserved(), POLICY)
    assert state.deadline is not None
    early, nothing = sg.decide(state, sg.DeadlinePassed(state.deadline - timedelta(seconds=1)),
                               POLICY)
    assert (early, nothing) == (state, [])
    state, commands = sg.decide(state, sg.DeadlinePassed(state.deadline), POLICY)
    assert kinds(commands) == ["SendDisburseLoan"]
    assert commands[0] == first[1]  # the same payout, same deadline: payments dedups
    assert state.deadline is not None
    last_deadline = state.deadline
    state, commands = sg.decide(state, sg.DeadlinePassed(last_deadline), POLICY)
    # the money may have left: in doubt, not failed, and nothing compensated
    assert state.state is sg.SagaStatus.IN_DOUBT and not state.failed
    assert not state.compensating and state.deadline is None
    assert state.in_doubt_since == last_deadline
    assert kinds(commands) == []
    assert "in doubt" in " ".join(c.text for c in commands if isinstance(c, sg.Note))
    # no later deadline changes it
    again, commands = sg.decide(state, sg.DeadlinePassed(T0 + timedelta(days=30)), POLICY)
    assert (again, kinds(commands)) == (state, [])
    # the provider's word resolves it
    state, commands = sg.decide(state, sg.PayoutCompleted(T0, T0, "ref"), POLICY)
    assert state.state is sg.SagaStatus.COMPLETED and not state.failed
    assert kinds(commands) == ["ActivateLoan"]


def in_doubt_by_payments() -> sg.SagaState:
    state, _ = started()
    state, _ = sg.decide(state, reserved(), POLICY)
    since = T0 + timedelta(minutes=11)
    state, commands = sg.decide(
        state, sg.PayoutInDoubt(since + timedelta(seconds=2), since, "no answer"), POLICY)
    assert kinds(commands) == []
    return state


def test_payments_in_doubt_keeps_the_credit_reserved_and_the_loan_disbursing() -> None:
    state = in_doubt_by_payments()
    assert state.state is sg.SagaStatus.IN_DOUBT and state.step is sg.Step.DISBURSE
    assert state.deadline is None and not state.failed and not state.compensating
    assert state.in_doubt_since == T0 + timedelta(minutes=11)
    assert state.reason is not None and "no answer" in state.reason
    # told again: nothing changes (the timeline notes it)
    again, commands = sg.decide(state, sg.PayoutInDoubt(T0, T0, "again"), POLICY)
    assert again == state and kinds(commands) == []


def test_in_doubt_then_completed_activates_the_loan() -> None:
    state = in_doubt_by_payments()
    done_at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    state, commands = sg.decide(state, sg.PayoutCompleted(T0, done_at, "ref-9"), POLICY)
    assert state.state is sg.SagaStatus.COMPLETED and state.deadline is None
    assert state.provider_reference == "ref-9"
    assert kinds(commands) == ["ActivateLoan"]
    assert commands[0] == sg.ActivateLoan(date(2026, 3, 2))


def test_in_doubt_then_failed_compensates() -> None:
    state = in_doubt_by_payments()
    state, commands = sg.decide(state, sg.PayoutFailed(T0, "rejected_by_provider"), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATING and state.compensating
    assert kinds(commands) == ["SendReleaseCredit", "FailLoanDisbursement"]
    state, _ = sg.decide(state, sg.CreditReleasedReply(T0), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATED


def test_in_doubt_ignores_credit_replies_and_deadlines() -> None:
    state = in_doubt_by_payments()
    for stray in (reserved(), sg.CreditRejectedReply(T0, "limit"), sg.CreditReleasedReply(T0),
                  sg.DeadlinePassed(T0 + timedelta(days=90))):
        again, commands = sg.decide(state, stray, POLICY)
        assert again == state and kinds(commands) == []


def test_a_saga_failed_at_its_payout_deadline_by_an_older_version_is_resolved_as_in_doubt(
        ) -> None:
    state, _ = started()
    state, _ = sg.decide(state, reserved(), POLICY)
    legacy = replace(state, state=sg.SagaStatus.FAILED, failed=True, deadline=None)
    doubted, commands = sg.decide(legacy, sg.PayoutInDoubt(T0, T0, "x"), POLICY)
    assert doubted.state is sg.SagaStatus.IN_DOUBT and kinds(commands) == []
    done, commands = sg.decide(legacy, sg.PayoutCompleted(T0, T0, "r"), POLICY)
    assert done.state is sg.SagaStatus.COMPLETED and kinds(commands) == ["ActivateLoan"]


def test_unanswered_reservation_is_retried_then_released_and_failed() -> None:
    state, _ = started()
    assert state.deadline is not None
    state, commands = sg.decide(state, sg.DeadlinePassed(state.deadline), POLICY)
    assert kinds(commands) == ["SendReserveCredit"] and state.attempts == 1
    assert state.deadline is not None
    state, commands = sg.decide(state, sg.DeadlinePassed(state.deadline), POLICY)
    assert state.state is sg.SagaStatus.FAILED and state.compensating
    assert kinds(commands) == ["SendReleaseCredit", "FailLoanDisbursement"]
    state, _ = sg.decide(state, sg.CreditReleasedReply(T0), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATED


def test_duplicates_and_strays_change_nothing() -> None:
    state, _ = started()
    state, _ = sg.decide(state, reserved(), POLICY)
    for stray in (reserved(), sg.CreditRejectedReply(T0, "limit_exceeded"),
                  sg.CreditReleasedReply(T0)):
        again, commands = sg.decide(state, stray, POLICY)
        assert again == state and kinds(commands) == []
    state, _ = sg.decide(state, sg.PayoutCompleted(T0, T0, "r"), POLICY)
    for stray in (sg.PayoutCompleted(T0, T0, "r"), sg.PayoutFailed(T0, "x"), reserved(),
                  sg.DeadlinePassed(T0 + timedelta(days=9))):
        again, commands = sg.decide(state, stray, POLICY)
        assert again == state and kinds(commands) == []


def _apply_to_loan(loan: Loan, commands: list[sg.Command]) -> None:
    for c in commands:
        if isinstance(c, sg.MarkLoanDisbursing):
            loan.start_disbursing(c.msisdn)
        elif isinstance(c, sg.ActivateLoan):
            loan.activate(c.disbursed_on)
        elif isinstance(c, sg.RejectLoan):
            loan.credit_rejected(c.reason)
        elif isinstance(c, sg.FailLoanDisbursement):
            loan.fail_disbursement(c.reason)


EVENTS = st.sampled_from(["reserved", "rejected", "completed", "failed", "in_doubt",
                          "released", "deadline"])


def _event(name: str, now: datetime) -> sg.SagaEvent:
    events: dict[str, sg.SagaEvent] = {
        "reserved": reserved(now), "rejected": sg.CreditRejectedReply(now, "limit"),
        "completed": sg.PayoutCompleted(now, now, "r"),
        "failed": sg.PayoutFailed(now, "x"), "in_doubt": sg.PayoutInDoubt(now, now, "?"),
        "released": sg.CreditReleasedReply(now), "deadline": sg.DeadlinePassed(now)}
    return events[name]


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, max_size=14))
def test_any_order_of_replies_keeps_the_loan_legal_and_pays_out_at_most_once(
        script: list[str]) -> None:
    state, _ = started()
    loan = Loan(id="l1", client_id="c1", partner_id="p1", product_id="x", product_version=1,
                principal=Decimal("5000.00"), term=6, status=LoanStatus.APPROVED,
                submitted_by="maker")
    now = T0
    sent: list[str] = []
    for name in script:
        now += timedelta(minutes=20)  # past any deadline
        state, commands = sg.decide(state, _event(name, now), POLICY)
        _apply_to_loan(loan, commands)  # raises Conflict if the saga asks the impossible
        sent += kinds(commands)
        waiting = state.state in (sg.SagaStatus.RESERVING_CREDIT, sg.SagaStatus.DISBURSING,
                                  sg.SagaStatus.COMPENSATING)
        assert (state.deadline is not None) == waiting
    assert sent.count("ActivateLoan") <= 1
    assert not ("ActivateLoan" in sent and "FailLoanDisbursement" in sent)
    # new payouts only after a reservation; re-sends only of that same payout
    assert sent.count("SendDisburseLoan") <= 1 + POLICY.max_resends
    if "ActivateLoan" in sent:
        assert loan.status is LoanStatus.ACTIVE
    if "SendReleaseCredit" in sent:
        assert loan.status in (LoanStatus.DISBURSEMENT_FAILED, LoanStatus.DISBURSING)


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, max_size=14), st.booleans())
def test_from_in_doubt_only_a_failed_payout_releases_credit(script: list[str],
                                                             by_deadline: bool) -> None:
    """Whatever follows doubt — duplicates, deadlines, stray credit replies — the credit is
    released and the loan failed only after DisbursementFailed, and never once the
    payout completed."""
    state, _ = started()
    state, _ = sg.decide(state, reserved(), POLICY)
    if by_deadline:
        while state.state is sg.SagaStatus.DISBURSING:
            assert state.deadline is not None
            state, _ = sg.decide(state, sg.DeadlinePassed(state.deadline), POLICY)
    else:
        state, _ = sg.decide(state, sg.PayoutInDoubt(T0, T0, "?"), POLICY)
    assert state.state is sg.SagaStatus.IN_DOUBT
    now = T0
    payout_failed = completed = False
    for name in script:
        now += timedelta(minutes=20)
        before = state.state
        state, commands = sg.decide(state, _event(name, now), POLICY)
        sent = kinds(commands)
        if name == "failed" and before is sg.SagaStatus.IN_DOUBT:
            payout_failed = True
        if "ActivateLoan" in sent:
            completed = True
        if "SendReleaseCredit" in sent or "FailLoanDisbursement" in sent:
            assert payout_failed and not completed, (name, before, sent)
        if not payout_failed and not completed:
            assert state.state is sg.SagaStatus.IN_DOUBT and state.deadline is None
    assert not (payout_failed and completed)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=14))
def test_once_the_payout_is_sent_only_a_failed_payout_releases_credit(script: list[str]
                                                                       ) -> None:
    state, _ = started()
    now = T0
    payout_sent = payout_failed = False
    for name in script:
        now += timedelta(minutes=20)
        state, commands = sg.decide(state, _event(name, now), POLICY)
        sent = kinds(commands)
        if name == "failed" and "SendReleaseCredit" in sent:
            payout_failed = True
        if "SendReleaseCredit" in sent and payout_sent:
            assert payout_failed, script
        payout_sent = payout_sent or "SendDisburseLoan" in sent
