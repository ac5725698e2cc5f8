"""One disbursement saga for a whole group loan, as a pure state machine:
``decide(state, event) -> (state, commands)``.

Every member's loan is a *leg* with its own step id (``leg_id``: the reservation id sent
to clients and the idempotency key payments sends to the provider, so five payouts are
five payouts). The group is paid out all together or not at all, as far as money allows:

1. ``ReserveCredit`` for every member. One refusal (or no answer) and nothing is paid:
   every reservation asked for is released, every member's loan ends rejected (or
   ``disbursement_failed``).
2. ``ValidatePayee`` for every member once every credit is reserved: payments asks the
   provider whether the member's wallet can receive the payout (GSMA account status —
   what real schemes do before a transfer: Mojaloop's party lookup, a quote). A refused
   payee fails the group **before any money moves**: every member's credit released,
   every member's loan ``disbursement_failed`` (an SMS each), the saga ``compensated``.
   A lookup with no answer is in doubt: payments keeps asking the provider, the saga
   re-sends its command on its deadline and keeps waiting — it is never taken for a yes
   or a no without the provider's word.
3. Only once **every** member's payee is confirmed does the saga send the members'
   ``DisburseLoan`` (the pivot). A payout is never sent while another member could still
   be refused.
4. Every payout completed: every member's loan is activated together.
5. A member's payout failed after validation (payments reversed its ledger entry): the
   saga waits until every other payout has its outcome — a member in doubt keeps the
   group saga ``in_doubt``, nothing is compensated while money may have moved. Then the
   members whose payout failed get their credit released and their loan
   ``disbursement_failed``; the members whose payout **completed** are not reversed by us
   (the money is in their wallet, and we never move money without evidence): their loan
   stays ``disbursing`` (not active) and carries the paid-out principal as outstanding
   (the books' portfolio holds exactly that), their credit stays reserved (it is real
   exposure), and they are flagged for an operator to recover the payout
   (``RecoverPayout``). The saga ends ``failed`` with that reason — visible in the saga
   monitor — or ``compensated`` when nobody was paid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from services.loans.domain.saga import DeadlinePassed, Note, SagaPolicy, SagaStatus, Step
from shared.clock import business_date

SAGA_TYPE = "group_disbursement"


class Credit(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    REJECTED = "rejected"
    RELEASED = "released"


class Payee(StrEnum):
    PENDING = "pending"
    ASKED = "asked"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    IN_DOUBT = "in_doubt"


class Payout(StrEnum):
    NOT_SENT = "not_sent"
    SENT = "sent"
    COMPLETED = "completed"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True)
class Leg:
    leg_id: str
    loan_id: str
    client_id: str
    amount: Decimal
    credit: Credit = Credit.PENDING
    payout: Payout = Payout.NOT_SENT
    payee: Payee = Payee.PENDING
    release_sent: bool = False
    msisdn: str | None = None
    language: str | None = None
    completed_on: date | None = None
    provider_reference: str | None = None
    reason: str | None = None
    to_recover: bool = False


@dataclass(frozen=True)
class GroupSagaState:
    id: str
    group_loan_id: str
    partner_id: str
    state: SagaStatus
    step: Step
    deadline: datetime | None
    legs: tuple[Leg, ...]
    currency: str = "MAD"
    attempts: int = 0
    compensating: bool = False
    failed: bool = False
    payout_deadline: datetime | None = None
    reason: str | None = None
    in_doubt_since: datetime | None = None
    rejected: bool = False
    """Ended before the pivot because a member's credit was refused."""

    def leg(self, leg_id: str) -> Leg | None:
        return next((g for g in self.legs if g.leg_id == leg_id), None)

    @property
    def amount(self) -> Decimal:
        return sum((g.amount for g in self.legs), Decimal("0.00"))


# -- inputs ------------------------------------------------------------------------
@dataclass(frozen=True)
class LegCreditReserved:
    leg_id: str
    now: datetime
    msisdn: str
    language: str


@dataclass(frozen=True)
class LegCreditRejected:
    leg_id: str
    now: datetime
    reason: str


@dataclass(frozen=True)
class LegCreditReleased:
    leg_id: str
    now: datetime


@dataclass(frozen=True)
class LegPayeeConfirmed:
    leg_id: str
    now: datetime


@dataclass(frozen=True)
class LegPayeeRefused:
    leg_id: str
    now: datetime
    reason: str


@dataclass(frozen=True)
class LegPayeeInDoubt:
    leg_id: str
    now: datetime
    since: datetime
    reason: str


@dataclass(frozen=True)
class LegPayoutCompleted:
    leg_id: str
    now: datetime
    completed_at: datetime
    provider_reference: str


@dataclass(frozen=True)
class LegPayoutFailed:
    leg_id: str
    now: datetime
    reason: str


@dataclass(frozen=True)
class LegPayoutInDoubt:
    leg_id: str
    now: datetime
    since: datetime
    reason: str


GroupEvent = (LegCreditReserved | LegCreditRejected | LegCreditReleased | LegPayeeConfirmed
              | LegPayeeRefused | LegPayeeInDoubt | LegPayoutCompleted | LegPayoutFailed
              | LegPayoutInDoubt | DeadlinePassed)


# -- outputs -----------------------------------------------------------------------
@dataclass(frozen=True)
class ReserveLeg:
    leg_id: str


@dataclass(frozen=True)
class ValidateLegPayee:
    leg_id: str


@dataclass(frozen=True)
class DisburseLeg:
    leg_id: str
    deadline: datetime


@dataclass(frozen=True)
class ReleaseLeg:
    leg_id: str
    reason: str


@dataclass(frozen=True)
class MarkMemberDisbursing:
    loan_id: str
    msisdn: str


@dataclass(frozen=True)
class ActivateMember:
    loan_id: str
    leg_id: str
    disbursed_on: date


@dataclass(frozen=True)
class RejectMember:
    loan_id: str
    reason: str


@dataclass(frozen=True)
class FailMember:
    loan_id: str
    reason: str


@dataclass(frozen=True)
class RecoverPayout:
    """A member was paid although the group failed: flag it for an operator (no reversal
    is sent; the credit stays reserved, the loan stays ``disbursing`` and carries the
    paid-out principal as outstanding, as the books' portfolio does)."""

    loan_id: str
    leg_id: str
    reason: str


@dataclass(frozen=True)
class GroupActive:
    pass


@dataclass(frozen=True)
class GroupFailed:
    reason: str


GroupCommand = (ReserveLeg | ValidateLegPayee | DisburseLeg | ReleaseLeg
                | MarkMemberDisbursing | ActivateMember | RejectMember | FailMember
                | RecoverPayout | GroupActive | GroupFailed | Note)


Result = tuple[GroupSagaState, list[GroupCommand]]


def start(*, saga_id: str, group_loan_id: str, partner_id: str,
          legs: list[tuple[str, str, str, Decimal]], now: datetime, policy: SagaPolicy,
          currency: str = "MAD") -> Result:
    """``legs``: (leg id, loan id, client id, amount) per member."""
    state = GroupSagaState(
        id=saga_id, group_loan_id=group_loan_id, partner_id=partner_id,
        state=SagaStatus.RESERVING_CREDIT, step=Step.RESERVE_CREDIT,
        deadline=now + policy.credit_timeout, currency=currency,
        legs=tuple(Leg(leg_id, loan_id, client_id, amount)
                   for leg_id, loan_id, client_id, amount in legs))
    return state, [ReserveLeg(g.leg_id) for g in state.legs]


def _with_leg(state: GroupSagaState, leg: Leg) -> GroupSagaState:
    return replace(state, legs=tuple(leg if g.leg_id == leg.leg_id else g for g in state.legs))


def _ignore(state: GroupSagaState, event: GroupEvent) -> Result:
    return state, [Note(f"{type(event).__name__} ignored in state {state.state.value}")]


def _give_up_before_pivot(state: GroupSagaState, now: datetime, reason: str, policy: SagaPolicy,
                          *, rejected: bool) -> Result:
    """Nothing was paid: release every reservation asked for, end every member's loan."""
    legs, commands = [], list[GroupCommand]()
    for g in state.legs:
        if g.credit in (Credit.PENDING, Credit.RESERVED):
            # a pending one too: clients remembers the release, a late reservation is void
            g = replace(g, release_sent=True)
            commands.append(ReleaseLeg(g.leg_id, reason))
        legs.append(g)
        commands.append(RejectMember(g.loan_id, reason) if rejected
                        else FailMember(g.loan_id, reason))
    commands.append(GroupFailed(reason))
    new = replace(state, legs=tuple(legs), state=SagaStatus.COMPENSATING,
                  step=Step.RELEASE_CREDIT, compensating=True, attempts=0, reason=reason,
                  deadline=now + policy.credit_timeout, rejected=rejected)
    return _maybe_released(new), commands


def _maybe_released(state: GroupSagaState) -> GroupSagaState:
    """Every release sent is confirmed: the saga ends (``failed`` if a member was paid)."""
    if any(g.release_sent and g.credit is not Credit.RELEASED for g in state.legs):
        return state
    if any(g.to_recover for g in state.legs):
        return replace(state, state=SagaStatus.FAILED, failed=True, step=Step.DONE,
                       deadline=None)
    ended = SagaStatus.CREDIT_REJECTED if state.rejected else SagaStatus.COMPENSATED
    return replace(state, state=ended, step=Step.DONE, deadline=None, failed=False)


def _to_validation(state: GroupSagaState, now: datetime, policy: SagaPolicy) -> Result:
    """Every credit reserved: ask payments to validate every member's payee first."""
    legs = tuple(replace(g, payee=Payee.ASKED) for g in state.legs)
    return (replace(state, legs=legs, state=SagaStatus.VALIDATING_PAYEES,
                    step=Step.VALIDATE_PAYEES, attempts=0,
                    deadline=now + policy.payee_timeout),
            [*(ValidateLegPayee(g.leg_id) for g in legs),
             Note(f"every member's credit reserved: {len(legs)} payees to validate with the "
                  "provider before any payout")])


def _on_payee(state: GroupSagaState, leg: Leg, event: GroupEvent, policy: SagaPolicy
              ) -> Result:
    if state.state is not SagaStatus.VALIDATING_PAYEES or leg.payee not in (
            Payee.ASKED, Payee.IN_DOUBT):
        return _ignore(state, event)
    if isinstance(event, LegPayeeConfirmed):
        new = _with_leg(state, replace(leg, payee=Payee.CONFIRMED))
        if all(g.payee is Payee.CONFIRMED for g in new.legs):
            return _to_pivot(new, event.now, policy)
        waiting = sum(1 for g in new.legs if g.payee is not Payee.CONFIRMED)
        return new, [Note(f"payee of {leg.client_id} confirmed by the provider; "
                          f"{waiting} to go")]
    if isinstance(event, LegPayeeRefused):
        new = _with_leg(state, replace(leg, payee=Payee.REFUSED, reason=event.reason))
        return _give_up_before_pivot(
            new, event.now, f"payee refused for member {leg.client_id}: {event.reason}; "
            "no payout was made, every member is compensated", policy, rejected=False)
    assert isinstance(event, LegPayeeInDoubt)
    if leg.payee is Payee.IN_DOUBT:
        return _ignore(state, event)
    new = _with_leg(state, replace(leg, payee=Payee.IN_DOUBT, reason=event.reason))
    return (replace(new, in_doubt_since=state.in_doubt_since or event.since),
            [Note(f"payee lookup of {leg.client_id} in doubt ({event.reason}): payments "
                  "keeps asking the provider; nothing is paid or compensated until it "
                  "answers")])


def _to_pivot(state: GroupSagaState, now: datetime, policy: SagaPolicy) -> Result:
    payout_deadline = now + policy.payout_timeout
    commands: list[GroupCommand] = []
    legs = []
    for g in state.legs:
        assert g.msisdn is not None
        legs.append(replace(g, payout=Payout.SENT))
        commands += [MarkMemberDisbursing(g.loan_id, g.msisdn),
                     DisburseLeg(g.leg_id, payout_deadline)]
    return (replace(state, legs=tuple(legs), state=SagaStatus.DISBURSING, step=Step.DISBURSE,
                    attempts=0, payout_deadline=payout_deadline,
                    deadline=payout_deadline + policy.payout_grace, in_doubt_since=None,
                    reason=None),
            [*commands, Note(f"every member's payee confirmed by the provider: {len(legs)} "
                             "payouts sent")])


def _settle(state: GroupSagaState, now: datetime, policy: SagaPolicy) -> Result:
    """After a payout's outcome: wait, activate everyone, or compensate what failed."""
    payouts = [g.payout for g in state.legs]
    if Payout.SENT in payouts or Payout.IN_DOUBT in payouts:
        doubt = Payout.IN_DOUBT in payouts
        new = replace(state, state=SagaStatus.IN_DOUBT if doubt else SagaStatus.DISBURSING,
                      in_doubt_since=(state.in_doubt_since or now) if doubt
                      else state.in_doubt_since,
                      deadline=state.deadline if Payout.SENT in payouts else None)
        notes: list[GroupCommand] = []
        if Payout.FAILED in payouts:
            notes.append(Note("a member's payout failed; nothing is compensated until every "
                              "other member's payout has its outcome"))
        return new, notes
    if all(p is Payout.COMPLETED for p in payouts):
        commands: list[GroupCommand] = [
            ActivateMember(g.loan_id, g.leg_id, g.completed_on or business_date(now))
            for g in state.legs]
        return (replace(state, state=SagaStatus.COMPLETED, step=Step.DONE, deadline=None,
                        failed=False), [*commands, GroupActive()])
    failed = [g for g in state.legs if g.payout is Payout.FAILED]
    reason = "payout failed for member(s) " + ", ".join(
        f"{g.client_id} ({g.reason})" for g in failed)
    legs, out = [], list[GroupCommand]()
    for g in state.legs:
        if g.payout is Payout.FAILED:
            g = replace(g, release_sent=True)
            out += [ReleaseLeg(g.leg_id, reason), FailMember(g.loan_id, reason)]
        else:   # completed: the money is in the member's wallet
            g = replace(g, to_recover=True)
            out.append(RecoverPayout(g.loan_id, g.leg_id, reason))
        legs.append(g)
    paid = sum(1 for g in legs if g.to_recover)
    if paid:
        reason += (f"; {paid} member payout(s) completed and are not reversed: the loans "
                   "stay disbursing, their credit reserved, for an operator to recover")
    out.append(GroupFailed(reason))
    new = replace(state, legs=tuple(legs), state=SagaStatus.COMPENSATING,
                  step=Step.RELEASE_CREDIT, compensating=True, attempts=0, reason=reason,
                  deadline=now + policy.credit_timeout)
    return _maybe_released(new), [*out, Note(reason)]


def _on_deadline(state: GroupSagaState, now: datetime, policy: SagaPolicy) -> Result:
    if state.deadline is None or now < state.deadline:
        return state, []
    retry = state.attempts < policy.max_resends
    attempt = f"{state.attempts + 1}/{policy.max_resends}"
    if state.state is SagaStatus.RESERVING_CREDIT:
        pending = [g for g in state.legs if g.credit is Credit.PENDING]
        if retry:
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.credit_timeout),
                    [*(ReserveLeg(g.leg_id) for g in pending),
                     Note(f"{len(pending)} member(s) without a credit answer; ReserveCredit "
                          f"re-sent ({attempt})")])
        return _give_up_before_pivot(
            state, now, "the clients service did not answer every member's credit "
            "reservation in time", policy, rejected=False)
    if state.state is SagaStatus.VALIDATING_PAYEES:
        waiting = [g for g in state.legs if g.payee in (Payee.ASKED, Payee.IN_DOUBT)]
        if not waiting:
            return replace(state, deadline=None), []
        again = [ValidateLegPayee(g.leg_id) for g in waiting]
        if retry:
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.payee_timeout),
                    [*again, Note(f"{len(waiting)} payee lookup(s) without an answer; "
                                  f"ValidatePayee re-sent ({attempt})")])
        # never a yes or a no without the provider's word: keep asking, more slowly
        reason = (f"{len(waiting)} payee lookup(s) unanswered: in doubt; payments keeps "
                  "asking the provider, nothing is paid or compensated until it answers")
        return (replace(state, deadline=now + policy.payee_timeout * 5, reason=reason,
                        in_doubt_since=state.in_doubt_since or now),
                [*again, Note(reason)])
    if state.state in (SagaStatus.DISBURSING, SagaStatus.IN_DOUBT):
        sent = [g for g in state.legs if g.payout is Payout.SENT]
        if not sent:
            return replace(state, deadline=None), []
        if retry:
            assert state.payout_deadline is not None
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.payout_grace),
                    [*(DisburseLeg(g.leg_id, state.payout_deadline) for g in sent),
                     Note(f"{len(sent)} payout(s) unanswered; DisburseLoan re-sent "
                          f"({attempt})")])
        legs = tuple(replace(g, payout=Payout.IN_DOUBT) if g.payout is Payout.SENT else g
                     for g in state.legs)
        reason = (f"{len(sent)} member payout(s) not answered by their deadline: in doubt, "
                  "nothing is compensated until payments reports the provider's answer")
        new, commands = _settle(replace(state, legs=legs, reason=reason, deadline=None), now,
                                policy)
        return new, [*commands, Note(reason)]
    if state.state is SagaStatus.COMPENSATING:
        waiting = [g for g in state.legs if g.release_sent and g.credit is not Credit.RELEASED]
        if retry:
            why = state.reason or "group disbursement failed"
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.credit_timeout),
                    [*(ReleaseLeg(g.leg_id, why) for g in waiting),
                     Note(f"{len(waiting)} credit release(s) unconfirmed; re-sent ({attempt})")])
        reason = "a member's credit release was never confirmed: compensation failed"
        return (replace(state, state=SagaStatus.FAILED, failed=True, deadline=None,
                        reason=f"{state.reason}; {reason}" if state.reason else reason),
                [Note(reason)])
    return replace(state, deadline=None), []


def decide(state: GroupSagaState, event: GroupEvent, policy: SagaPolicy | None = None
           ) -> Result:
    policy = policy or SagaPolicy()
    if isinstance(event, DeadlinePassed):
        return _on_deadline(state, event.now, policy)
    leg = state.leg(event.leg_id)
    if leg is None:
        return _ignore(state, event)
    s = state.state

    if isinstance(event, LegCreditReserved):
        if s is not SagaStatus.RESERVING_CREDIT or leg.credit is not Credit.PENDING:
            return _ignore(state, event)
        new = _with_leg(state, replace(leg, credit=Credit.RESERVED, msisdn=event.msisdn,
                                       language=event.language))
        if all(g.credit is Credit.RESERVED for g in new.legs):
            return _to_validation(new, event.now, policy)
        waiting = sum(1 for g in new.legs if g.credit is Credit.PENDING)
        return new, [Note(f"credit reserved for {leg.client_id}; {waiting} to go")]

    if isinstance(event, LegCreditRejected):
        if s is not SagaStatus.RESERVING_CREDIT or leg.credit is not Credit.PENDING:
            return _ignore(state, event)
        new = _with_leg(state, replace(leg, credit=Credit.REJECTED, reason=event.reason))
        return _give_up_before_pivot(
            new, event.now, f"credit rejected for member {leg.client_id}: {event.reason}",
            policy, rejected=True)

    if isinstance(event, LegCreditReleased):
        if not leg.release_sent or leg.credit is Credit.RELEASED:
            return _ignore(state, event)
        new = _with_leg(state, replace(leg, credit=Credit.RELEASED))
        return _maybe_released(new), []

    if isinstance(event, LegPayeeConfirmed | LegPayeeRefused | LegPayeeInDoubt):
        return _on_payee(state, leg, event, policy)

    awaiting = s in (SagaStatus.DISBURSING, SagaStatus.IN_DOUBT) and leg.payout in (
        Payout.SENT, Payout.IN_DOUBT)
    if not awaiting:
        return _ignore(state, event)
    if isinstance(event, LegPayoutCompleted):
        new = _with_leg(state, replace(leg, payout=Payout.COMPLETED,
                                       completed_on=business_date(event.completed_at),
                                       provider_reference=event.provider_reference))
        return _settle(new, event.now, policy)
    if isinstance(event, LegPayoutFailed):
        return _settle(_with_leg(state, replace(leg, payout=Payout.FAILED, reason=event.reason)),
                       event.now, policy)
    if isinstance(event, LegPayoutInDoubt):
        if leg.payout is Payout.IN_DOUBT:
            return _ignore(state, event)
        new = _with_leg(state, replace(leg, payout=Payout.IN_DOUBT, reason=event.reason))
        settled, commands = _settle(new, event.now, policy)
        return settled, [*commands, Note(f"payout of {leg.client_id} in doubt: {event.reason}")]
    raise TypeError(f"unknown group saga event {event!r}")  # pragma: no cover
