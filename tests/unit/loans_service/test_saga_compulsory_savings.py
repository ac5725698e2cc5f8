"""The disbursement saga's compulsory savings step: held before the pivot, waited for
while short, compensated (released) on every path that gives up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain import saga as sg
from services.loans.domain.compulsory_savings import CompulsorySavingsRule
from services.loans.domain.loan import Loan, LoanStatus

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = sg.SagaPolicy(credit_timeout=timedelta(seconds=60),
                       payout_timeout=timedelta(seconds=600),
                       payout_grace=timedelta(seconds=60), max_resends=1,
                       savings_wait=timedelta(hours=2))


def started(required: str | None = "1000.00") -> sg.SagaState:
    state, commands = sg.start(
        saga_id="s1", loan_id="l1", client_id="c1", partner_id="p1",
        amount=Decimal("10000.00"), now=T0, policy=POLICY,
        savings_required=None if required is None else Decimal(required))
    assert kinds(commands) == ["SendReserveCredit"]
    return state


def kinds(commands: list[sg.Command]) -> list[str]:
    return [type(c).__name__ for c in commands if not isinstance(c, sg.Note)]


def reserved(at: datetime = T0) -> sg.CreditReservedReply:
    return sg.CreditReservedReply(at, "+212612345678", "fr")


def test_the_rule_computes_a_share_half_up_or_a_flat_amount() -> None:
    assert CompulsorySavingsRule(Decimal("0.10")).required(Decimal("10000.00")) == Decimal(
        "1000.00")
    assert CompulsorySavingsRule(Decimal("0.075")).required(Decimal("1234.50")) == Decimal(
        "92.59")   # 92.5875 half up
    assert CompulsorySavingsRule(amount=Decimal("500.00")).required(Decimal("9000.00")) == (
        Decimal("500.00"))


def test_without_a_requirement_the_saga_goes_straight_to_the_pivot() -> None:
    state = started(None)
    state, commands = sg.decide(state, reserved(), POLICY)
    assert state.state is sg.SagaStatus.DISBURSING
    assert kinds(commands) == ["MarkLoanDisbursing", "SendDisburseLoan"]
    assert not state.savings_requested


def test_held_savings_let_the_saga_reach_the_pivot() -> None:
    state, commands = sg.decide(started(), reserved(), POLICY)
    assert state.state is sg.SagaStatus.HOLDING_SAVINGS
    assert state.step is sg.Step.HOLD_SAVINGS
    assert kinds(commands) == ["SendHoldCompulsorySavings"]
    assert state.savings_deadline == T0 + POLICY.savings_wait
    state, commands = sg.decide(state, sg.SavingsHeldReply(T0, Decimal("1000.00")), POLICY)
    assert state.state is sg.SagaStatus.DISBURSING
    assert kinds(commands) == ["MarkLoanDisbursing", "SendDisburseLoan"]
    assert state.savings_held == Decimal("1000.00")


def test_insufficient_keeps_waiting_then_held_after_a_deposit_goes_on() -> None:
    state, _ = sg.decide(started(), reserved(), POLICY)
    short = sg.SavingsInsufficientReply(T0, Decimal("400.00"), "insufficient_balance")
    state, commands = sg.decide(state, short, POLICY)
    assert state.state is sg.SagaStatus.HOLDING_SAVINGS and kinds(commands) == []
    assert state.deadline == T0 + POLICY.savings_wait
    # an hour later: still waiting, nothing sent
    state, commands = sg.decide(state, sg.DeadlinePassed(T0 + timedelta(hours=1)), POLICY)
    assert state.state is sg.SagaStatus.HOLDING_SAVINGS and kinds(commands) == []
    state, commands = sg.decide(state, sg.SavingsHeldReply(T0, Decimal("1000.00")), POLICY)
    assert kinds(commands) == ["MarkLoanDisbursing", "SendDisburseLoan"]


def test_still_short_at_the_deadline_compensates_visibly_with_the_shortfall() -> None:
    state, _ = sg.decide(started(), reserved(), POLICY)
    state, _ = sg.decide(state, sg.SavingsInsufficientReply(
        T0, Decimal("400.00"), "insufficient_balance"), POLICY)
    state, commands = sg.decide(state, sg.DeadlinePassed(T0 + POLICY.savings_wait), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATING
    assert kinds(commands) == ["SendReleaseCredit", "SendReleaseCompulsorySavings",
                               "FailLoanDisbursement"]
    assert state.reason is not None and "shortfall of 400.00" in state.reason
    # both releases must be confirmed, in any order
    state, _ = sg.decide(state, sg.CreditReleasedReply(T0), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATING
    state, _ = sg.decide(state, sg.SavingsReleasedReply(T0), POLICY)
    assert state.state is sg.SagaStatus.COMPENSATED and state.deadline is None


def test_unanswered_hold_is_re_sent_then_waited_for() -> None:
    state, _ = sg.decide(started(), reserved(), POLICY)
    state, commands = sg.decide(state, sg.DeadlinePassed(T0 + timedelta(minutes=1)), POLICY)
    assert kinds(commands) == ["SendHoldCompulsorySavings"]
    state, commands = sg.decide(state, sg.DeadlinePassed(T0 + timedelta(minutes=3)), POLICY)
    assert kinds(commands) == [] and state.deadline == state.savings_deadline
    state, commands = sg.decide(state, sg.DeadlinePassed(T0 + POLICY.savings_wait), POLICY)
    assert "SendReleaseCompulsorySavings" in kinds(commands)
    assert state.reason is not None and "no answer from savings" in state.reason


def test_a_failed_payout_releases_the_savings_too_and_the_release_is_re_sent() -> None:
    state, _ = sg.decide(started(), reserved(), POLICY)
    state, _ = sg.decide(state, sg.SavingsHeldReply(T0, Decimal("1000.00")), POLICY)
    state, commands = sg.decide(state, sg.PayoutFailed(T0, "wallet_not_found"), POLICY)
    assert kinds(commands) == ["SendReleaseCredit", "SendReleaseCompulsorySavings",
                               "FailLoanDisbursement"]
    state, _ = sg.decide(state, sg.CreditReleasedReply(T0), POLICY)
    assert state.deadline is not None
    state, commands = sg.decide(state, sg.DeadlinePassed(state.deadline), POLICY)
    assert kinds(commands) == ["SendReleaseCompulsorySavings"]   # only what is unconfirmed


def test_in_doubt_keeps_the_savings_held() -> None:
    state, _ = sg.decide(started(), reserved(), POLICY)
    state, _ = sg.decide(state, sg.SavingsHeldReply(T0, Decimal("1000.00")), POLICY)
    state, commands = sg.decide(state, sg.PayoutInDoubt(T0, T0, "timeout"), POLICY)
    assert state.state is sg.SagaStatus.IN_DOUBT and kinds(commands) == []


EVENTS = st.sampled_from(["reserved", "rejected", "held", "short", "completed", "failed",
                          "in_doubt", "released", "savings_released", "deadline", "late"])


def _event(name: str, now: datetime) -> sg.SagaEvent:
    events: dict[str, sg.SagaEvent] = {
        "reserved": reserved(now), "rejected": sg.CreditRejectedReply(now, "limit"),
        "held": sg.SavingsHeldReply(now, Decimal("1000.00")),
        "short": sg.SavingsInsufficientReply(now, Decimal("1.00"), "insufficient_balance"),
        "completed": sg.PayoutCompleted(now, now, "r"), "failed": sg.PayoutFailed(now, "x"),
        "in_doubt": sg.PayoutInDoubt(now, now, "?"), "released": sg.CreditReleasedReply(now),
        "savings_released": sg.SavingsReleasedReply(now),
        "deadline": sg.DeadlinePassed(now),
        "late": sg.DeadlinePassed(now + POLICY.savings_wait),
    }
    return events[name]


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


@settings(max_examples=600, deadline=None)
@given(st.lists(EVENTS, max_size=16), st.booleans())
def test_no_payout_without_held_savings_and_every_compensation_releases_them(
        script: list[str], required: bool) -> None:
    state = started("1000.00" if required else None)
    loan = Loan(id="l1", client_id="c1", partner_id="p1", product_id="x", product_version=1,
                principal=Decimal("10000.00"), term=6, status=LoanStatus.APPROVED,
                submitted_by="maker")
    now = T0
    held = hold_sent = False
    sent: list[str] = []
    for name in script:
        now += timedelta(minutes=20)
        before = state.state
        state, commands = sg.decide(state, _event(name, now), POLICY)
        _apply_to_loan(loan, commands)   # a Conflict here is an illegal move
        out = kinds(commands)
        sent += out
        if name == "held" and before is sg.SagaStatus.HOLDING_SAVINGS:
            held = True
        hold_sent = hold_sent or "SendHoldCompulsorySavings" in out
        if "SendDisburseLoan" in out and required:
            assert held, script          # never the pivot without Held
        if "SendReleaseCredit" in out and "FailLoanDisbursement" in out and hold_sent:
            # a compensation after the hold was asked for releases the savings too
            assert "SendReleaseCompulsorySavings" in out, script
        if state.state is sg.SagaStatus.COMPENSATED:
            assert state.credit_released
            assert state.savings_released or not state.savings_requested
    if not required:
        assert "SendHoldCompulsorySavings" not in sent
        assert "SendReleaseCompulsorySavings" not in sent
    assert sent.count("ActivateLoan") <= 1
    if "SendReleaseCompulsorySavings" in sent:
        assert "ActivateLoan" not in sent
