"""The group disbursement saga's decide(): all members paid or none activated, payouts
only once every credit is reserved and every payee confirmed by the provider, a refused
payee compensates everyone before any money moves, doubt keeps the group open, paid
members flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain import group_saga as gs
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.domain.saga import DeadlinePassed, Note, SagaPolicy, SagaStatus

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = SagaPolicy(credit_timeout=timedelta(seconds=60), payout_timeout=timedelta(seconds=600),
                    payout_grace=timedelta(seconds=60), max_resends=1)
N = 5


def started(n: int = N) -> gs.GroupSagaState:
    state, commands = gs.start(
        saga_id="g1", group_loan_id="gl1", partner_id="p1", now=T0, policy=POLICY,
        legs=[(f"leg{i}", f"loan{i}", f"cli{i}", Decimal("1000.00")) for i in range(n)])
    assert [type(c).__name__ for c in commands] == ["ReserveLeg"] * n
    return state


def kinds(commands: list[gs.GroupCommand]) -> list[str]:
    return [type(c).__name__ for c in commands if not isinstance(c, Note)]


def reserve_only(state: gs.GroupSagaState) -> tuple[gs.GroupSagaState, list[gs.GroupCommand]]:
    out: list[gs.GroupCommand] = []
    for g in state.legs:
        state, commands = gs.decide(state, gs.LegCreditReserved(g.leg_id, T0, "+2126", "fr"),
                                    POLICY)
        out += commands
    return state, out


def reserve_all(state: gs.GroupSagaState) -> tuple[gs.GroupSagaState, list[gs.GroupCommand]]:
    """Every credit reserved and every payee confirmed: the payouts are out."""
    state, out = reserve_only(state)
    for g in state.legs:
        state, commands = gs.decide(state, gs.LegPayeeConfirmed(g.leg_id, T0), POLICY)
        out += commands
    return state, out


def test_payees_are_validated_before_any_payout() -> None:
    state, commands = reserve_only(started())
    assert kinds(commands) == ["ValidateLegPayee"] * N
    assert state.state is SagaStatus.VALIDATING_PAYEES and state.deadline is not None
    for g in state.legs[:-1]:
        state, commands = gs.decide(state, gs.LegPayeeConfirmed(g.leg_id, T0), POLICY)
        assert kinds(commands) == []
    state, commands = gs.decide(state, gs.LegPayeeConfirmed(state.legs[-1].leg_id, T0),
                                POLICY)
    assert kinds(commands) == ["MarkMemberDisbursing", "DisburseLeg"] * N
    assert state.state is SagaStatus.DISBURSING


def test_a_refused_payee_compensates_every_member_before_any_payout() -> None:
    state, _ = reserve_only(started())
    state, _ = gs.decide(state, gs.LegPayeeConfirmed("leg0", T0), POLICY)
    state, commands = gs.decide(state, gs.LegPayeeRefused("leg2", T0, "wallet unavailable"),
                                POLICY)
    out = kinds(commands)
    assert out.count("ReleaseLeg") == N and out.count("FailMember") == N
    assert "DisburseLeg" not in out and "MarkMemberDisbursing" not in out
    assert out[-1] == "GroupFailed" and state.state is SagaStatus.COMPENSATING
    assert state.reason is not None and "cli2" in state.reason
    # a late confirmation changes nothing
    state2, commands = gs.decide(state, gs.LegPayeeConfirmed("leg3", T0), POLICY)
    assert kinds(commands) == [] and state2 == state
    for g in state.legs:
        state, _ = gs.decide(state, gs.LegCreditReleased(g.leg_id, T0), POLICY)
    assert state.state is SagaStatus.COMPENSATED and not state.failed
    assert not any(g.to_recover for g in state.legs)


def test_a_lookup_without_an_answer_is_asked_again_never_decided() -> None:
    state, _ = reserve_only(started())
    state, commands = gs.decide(state, gs.LegPayeeInDoubt("leg1", T0, T0, "no answer"),
                                POLICY)
    assert kinds(commands) == [] and state.in_doubt_since == T0
    for g in state.legs:
        if g.leg_id != "leg1":
            state, _ = gs.decide(state, gs.LegPayeeConfirmed(g.leg_id, T0), POLICY)
    # re-sent on each deadline, then ever more slowly — never a payout, never a release
    for _ in range(5):
        assert state.deadline is not None
        state, commands = gs.decide(state, DeadlinePassed(state.deadline), POLICY)
        assert kinds(commands) == ["ValidateLegPayee"]
        assert state.state is SagaStatus.VALIDATING_PAYEES
    state, commands = gs.decide(state, gs.LegPayeeConfirmed("leg1", T0), POLICY)
    assert kinds(commands).count("DisburseLeg") == N


def test_five_members_reserved_then_five_payouts_then_all_active() -> None:
    state = started()
    state, commands = reserve_all(state)
    assert kinds(commands).count("DisburseLeg") == N
    assert state.state is SagaStatus.DISBURSING
    for i, g in enumerate(state.legs):
        state, commands = gs.decide(state, gs.LegPayoutCompleted(g.leg_id, T0, T0, f"r{i}"),
                                    POLICY)
        if i < N - 1:
            assert kinds(commands) == [] and state.state is SagaStatus.DISBURSING
    assert kinds(commands) == ["ActivateMember"] * N + ["GroupActive"]
    assert state.state is SagaStatus.COMPLETED


def test_each_member_is_disbursed_on_the_business_day_its_money_left() -> None:
    """A payout at 23:30 UTC on 7 December left on the 8th in Casablanca."""
    state = started()
    state, _ = reserve_all(state)
    late = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    for i, g in enumerate(state.legs):
        state, commands = gs.decide(state, gs.LegPayoutCompleted(g.leg_id, late, late,
                                                                 f"r{i}"), POLICY)
    members = [c for c in commands if isinstance(c, gs.ActivateMember)]
    assert len(members) == N and all(c.disbursed_on == date(2026, 12, 8) for c in members), \
        members


def test_no_payout_before_the_last_reservation() -> None:
    state = started()
    for g in state.legs[:-1]:
        state, commands = gs.decide(state, gs.LegCreditReserved(g.leg_id, T0, "+2126", "fr"),
                                    POLICY)
        assert "DisburseLeg" not in kinds(commands)


def test_one_rejection_releases_every_reservation_and_rejects_every_member() -> None:
    state = started()
    state, _ = gs.decide(state, gs.LegCreditReserved("leg0", T0, "+2126", "fr"), POLICY)
    state, commands = gs.decide(state, gs.LegCreditRejected("leg3", T0, "limit_exceeded"),
                                POLICY)
    assert kinds(commands).count("ReleaseLeg") == N - 1      # all but the refused one
    assert kinds(commands).count("RejectMember") == N
    assert state.state is SagaStatus.COMPENSATING
    for g in state.legs:
        if g.release_sent:
            state, _ = gs.decide(state, gs.LegCreditReleased(g.leg_id, T0), POLICY)
    assert state.state is SagaStatus.CREDIT_REJECTED


def test_a_failed_payout_compensates_failed_members_and_flags_paid_ones() -> None:
    state, _ = reserve_all(started())
    state, _ = gs.decide(state, gs.LegPayoutCompleted("leg0", T0, T0, "r0"), POLICY)
    state, commands = gs.decide(state, gs.LegPayoutFailed("leg1", T0, "wallet_not_found"),
                                POLICY)
    assert kinds(commands) == []        # the others are still on their way
    state, _ = gs.decide(state, gs.LegPayoutInDoubt("leg2", T0, T0, "timeout"), POLICY)
    assert state.state is SagaStatus.IN_DOUBT
    for leg_id in ("leg3", "leg4"):
        state, commands = gs.decide(state, gs.LegPayoutFailed(leg_id, T0, "x"), POLICY)
    assert state.state is SagaStatus.IN_DOUBT and kinds(commands) == []
    # the provider's word on the member in doubt: it failed too
    state, commands = gs.decide(state, gs.LegPayoutFailed("leg2", T0, "refused"), POLICY)
    out = kinds(commands)
    assert out.count("ReleaseLeg") == 4 and out.count("FailMember") == 4
    assert out.count("RecoverPayout") == 1 and "ActivateMember" not in out
    for leg_id in ("leg1", "leg2", "leg3", "leg4"):
        state, _ = gs.decide(state, gs.LegCreditReleased(leg_id, T0), POLICY)
    assert state.state is SagaStatus.FAILED and state.failed
    assert state.reason is not None and "operator to recover" in state.reason


def test_unanswered_payouts_become_in_doubt_without_compensation() -> None:
    state, _ = reserve_all(started())
    state, _ = gs.decide(state, gs.LegPayoutFailed("leg0", T0, "x"), POLICY)
    assert state.deadline is not None
    state, commands = gs.decide(state, DeadlinePassed(state.deadline), POLICY)
    assert kinds(commands) == ["DisburseLeg"] * (N - 1)
    assert state.deadline is not None
    state, commands = gs.decide(state, DeadlinePassed(state.deadline), POLICY)
    assert state.state is SagaStatus.IN_DOUBT and state.deadline is None
    assert "ReleaseLeg" not in kinds(commands)


EVENTS = st.tuples(st.sampled_from(["reserved", "rejected", "confirmed", "refused",
                                    "lookup_in_doubt", "completed", "failed",
                                    "in_doubt", "released", "deadline"]),
                   st.integers(min_value=0, max_value=2))


def _event(name: str, i: int, now: datetime) -> gs.GroupEvent:
    leg = f"leg{i}"
    events: dict[str, gs.GroupEvent] = {
        "reserved": gs.LegCreditReserved(leg, now, "+2126", "fr"),
        "rejected": gs.LegCreditRejected(leg, now, "limit"),
        "confirmed": gs.LegPayeeConfirmed(leg, now),
        "refused": gs.LegPayeeRefused(leg, now, "unavailable"),
        "lookup_in_doubt": gs.LegPayeeInDoubt(leg, now, now, "no answer"),
        "completed": gs.LegPayoutCompleted(leg, now, now, "r"),
        "failed": gs.LegPayoutFailed(leg, now, "x"),
        "in_doubt": gs.LegPayoutInDoubt(leg, now, now, "?"),
        "released": gs.LegCreditReleased(leg, now), "deadline": DeadlinePassed(now)}
    return events[name]


@settings(max_examples=800, deadline=None)
@given(st.lists(EVENTS, max_size=30))
def test_all_or_none_whatever_the_order_of_replies(script: list[tuple[str, int]]) -> None:
    state = started(3)
    loans = {f"loan{i}": Loan(id=f"loan{i}", client_id=f"cli{i}", partner_id="p1",
                              product_id="x", product_version=1, principal=Decimal("1000.00"),
                              term=6, status=LoanStatus.APPROVED, submitted_by="m")
             for i in range(3)}
    now = T0
    disbursed: set[str] = set()
    failed_payouts: set[str] = set()
    released: set[str] = set()
    activated: list[str] = []
    for name, i in script:
        now += timedelta(minutes=20)
        before = state
        state, commands = gs.decide(state, _event(name, i, now), POLICY)
        if name == "failed" and before.leg(f"leg{i}") != state.leg(f"leg{i}"):
            failed_payouts.add(f"leg{i}")
        for c in commands:
            if isinstance(c, gs.DisburseLeg):
                # the pivot only once every member's credit is reserved and payee
                # confirmed (a re-send repeats a payout already sent, to payments
                # idempotent on it)
                assert c.leg_id in disbursed or all(
                    g.credit is gs.Credit.RESERVED and g.payee is gs.Payee.CONFIRMED
                    for g in state.legs), script
                disbursed.add(c.leg_id)
            elif isinstance(c, gs.ReleaseLeg):
                # a member whose payout was sent is released only after it failed
                assert c.leg_id not in disbursed or c.leg_id in failed_payouts, script
                released.add(c.leg_id)
            elif isinstance(c, gs.MarkMemberDisbursing):
                loans[c.loan_id].start_disbursing(c.msisdn)
            elif isinstance(c, gs.ActivateMember):
                loans[c.loan_id].activate(c.disbursed_on)
                activated.append(c.loan_id)
            elif isinstance(c, gs.RejectMember):
                loans[c.loan_id].credit_rejected(c.reason)
            elif isinstance(c, gs.FailMember):
                loans[c.loan_id].fail_disbursement(c.reason)
        waiting = state.state in (SagaStatus.RESERVING_CREDIT, SagaStatus.VALIDATING_PAYEES,
                                  SagaStatus.COMPENSATING) or (
            any(g.payout is gs.Payout.SENT for g in state.legs))
        assert (state.deadline is not None) == waiting, (state, script)
    # all or none: either every member active, or none
    assert activated == [] or sorted(activated) == sorted(loans)
    assert not (activated and failed_payouts)
    # a refused payee: nobody was paid, so nobody is left to recover
    if any(g.payee is gs.Payee.REFUSED for g in state.legs):
        assert disbursed == set() and not any(g.to_recover for g in state.legs)
    statuses = {loan.status for loan in loans.values()}
    assert not (LoanStatus.ACTIVE in statuses and len(statuses) > 1)
