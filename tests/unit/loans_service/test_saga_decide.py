"""The disbursement saga's decide(): each path, and invariants over any reply order."""

from __future__ import annotations

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


def test_unanswered_payout_is_resent_then_fails_without_compensating() -> None:
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
    state, commands = sg.decide(state, sg.DeadlinePassed(state.deadline), POLICY)
    assert state.state is sg.SagaStatus.FAILED and state.failed and state.deadline is None
    assert kinds(commands) == []  # the money may have left: no blind compensation
    # a late answer still resolves it
    state, commands = sg.decide(state, sg.PayoutCompleted(T0, T0, "ref"), POLICY)
    assert state.state is sg.SagaStatus.COMPLETED and not state.failed
    assert kinds(commands) == ["ActivateLoan"]


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


EVENTS = st.sampled_from(["reserved", "rejected", "completed", "failed", "released",
                          "deadline"])


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
        event: sg.SagaEvent = {
            "reserved": reserved(now), "rejected": sg.CreditRejectedReply(now, "limit"),
            "completed": sg.PayoutCompleted(now, now, "r"),
            "failed": sg.PayoutFailed(now, "x"), "released": sg.CreditReleasedReply(now),
            "deadline": sg.DeadlinePassed(now)}[name]
        state, commands = sg.decide(state, event, POLICY)
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
