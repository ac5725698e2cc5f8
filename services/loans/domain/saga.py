"""The disbursement saga as a pure state machine: ``decide(state, event) -> (state, commands)``.

Steps follow "compensatable steps → one pivot → retriable steps":

1. ``reserve_credit`` (compensatable): ``ReserveCredit`` to clients.
2. ``hold_savings`` (compensatable, only when the loan's product requires compulsory
   savings): ``HoldCompulsorySavings`` to savings. ``CompulsorySavingsInsufficient``
   is not a refusal: the saga keeps waiting (savings answers ``CompulsorySavingsHeld``
   once deposits cover it) until ``SagaPolicy.savings_wait`` has passed, then it
   compensates, visibly, with the shortfall as its reason.
3. ``disburse`` (the pivot): ``DisburseLoan`` to payments — never before the savings
   are held when they are required.
4. on success the loan is activated; on a failed payout (or an unheld savings step)
   the reservation is released (``release_credit``), the compulsory savings asked for
   are released (``ReleaseCompulsorySavings``) and the loan ends ``disbursement_failed``;
   the saga is ``compensated`` once both releases are confirmed.

Every waiting state has a deadline. When it passes, the saga re-sends its last
command (every receiver is idempotent on the saga id) up to ``max_resends`` times,
then gives up visibly — never silently.

Doubt is a state, not a failure: a payout whose outcome is unknown (payments says
``DisbursementInDoubt``, or the payout's own deadline passed with every re-send used)
may still have moved money. The saga is then ``in_doubt``: nothing is compensated,
the credit stays reserved and the loan stays ``disbursing`` until the provider's word
arrives — ``DisbursementCompleted`` activates the loan, ``DisbursementFailed``
compensates. Nothing else, and no deadline, ever releases the credit of a saga in doubt.

The state machine knows nothing of databases or Kafka: the handler persists the
returned state and turns the returned commands into outbox messages and loan
changes, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from shared.clock import business_date

SAGA_TYPE = "disbursement"


class SagaStatus(StrEnum):
    RESERVING_CREDIT = "reserving_credit"
    VALIDATING_PAYEES = "validating_payees"
    HOLDING_SAVINGS = "holding_savings"
    DISBURSING = "disbursing"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    CREDIT_REJECTED = "credit_rejected"
    COMPENSATED = "compensated"
    IN_DOUBT = "in_doubt"
    FAILED = "failed"


class Step(StrEnum):
    RESERVE_CREDIT = "reserve_credit"
    VALIDATE_PAYEES = "validate_payees"
    HOLD_SAVINGS = "hold_savings"
    DISBURSE = "disburse"
    RELEASE_CREDIT = "release_credit"
    DONE = "done"


ENDED = frozenset({SagaStatus.COMPLETED, SagaStatus.CREDIT_REJECTED, SagaStatus.COMPENSATED})


@dataclass(frozen=True)
class SagaPolicy:
    credit_timeout: timedelta = timedelta(minutes=2)
    """How long clients has to answer ReserveCredit / ReleaseCredit."""
    payout_timeout: timedelta = timedelta(minutes=10)
    """The deadline given to payments in DisburseLoan."""
    payout_grace: timedelta = timedelta(minutes=2)
    """How long after the payout deadline loans waits for payments' answer."""
    payee_timeout: timedelta = timedelta(minutes=2)
    """How long payments has to answer a group member's payee lookup before it is asked
    again (group saga; a lookup is never given up on without the provider's word)."""
    max_resends: int = 2
    """How many times a command is re-sent when its answer is late, before failing."""
    savings_wait: timedelta = timedelta(days=3)
    """How long after the credit is reserved the saga waits for the compulsory savings
    to be held (deposits may still come in) before it gives up and compensates."""


@dataclass(frozen=True)
class SagaState:
    id: str
    loan_id: str
    client_id: str
    partner_id: str
    amount: Decimal
    state: SagaStatus
    step: Step
    deadline: datetime | None
    currency: str = "MAD"
    compensating: bool = False
    failed: bool = False
    attempts: int = 0
    msisdn: str | None = None
    language: str | None = None
    payout_deadline: datetime | None = None
    reason: str | None = None
    provider_reference: str | None = None
    in_doubt_since: datetime | None = None
    """When the payout's outcome became unknown (kept once settled, for the record)."""
    savings_required: Decimal | None = None
    """The compulsory savings to hold before the pivot (None or 0: none required)."""
    savings_requested: bool = False
    """``HoldCompulsorySavings`` was sent: any compensation releases them."""
    savings_held: Decimal | None = None
    """What savings reported held (``CompulsorySavingsHeld``)."""
    savings_shortfall: Decimal | None = None
    """The last shortfall savings reported (``CompulsorySavingsInsufficient``)."""
    savings_deadline: datetime | None = None
    """When the saga stops waiting for the compulsory savings."""
    credit_released: bool = False
    savings_released: bool = False

    @property
    def savings_step(self) -> bool:
        return self.savings_required is not None and self.savings_required > 0


# -- what happens to the saga (inputs) -------------------------------------------
@dataclass(frozen=True)
class CreditReservedReply:
    now: datetime
    msisdn: str
    language: str


@dataclass(frozen=True)
class CreditRejectedReply:
    now: datetime
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class PayoutCompleted:
    now: datetime
    completed_at: datetime
    provider_reference: str


@dataclass(frozen=True)
class PayoutFailed:
    now: datetime
    reason: str


@dataclass(frozen=True)
class PayoutInDoubt:
    """Payments does not know whether the payout executed; it waits for the provider."""

    now: datetime
    since: datetime
    reason: str


@dataclass(frozen=True)
class CreditReleasedReply:
    now: datetime


@dataclass(frozen=True)
class DeadlinePassed:
    now: datetime


@dataclass(frozen=True)
class SavingsHeldReply:
    now: datetime
    held: Decimal


@dataclass(frozen=True)
class SavingsInsufficientReply:
    now: datetime
    shortfall: Decimal
    reason: str


@dataclass(frozen=True)
class SavingsReleasedReply:
    now: datetime


SagaEvent = (CreditReservedReply | CreditRejectedReply | PayoutCompleted | PayoutFailed
             | PayoutInDoubt | CreditReleasedReply | DeadlinePassed | SavingsHeldReply
             | SavingsInsufficientReply | SavingsReleasedReply)


# -- what the saga asks for (outputs) --------------------------------------------
@dataclass(frozen=True)
class SendReserveCredit:
    pass


@dataclass(frozen=True)
class SendDisburseLoan:
    deadline: datetime


@dataclass(frozen=True)
class SendReleaseCredit:
    reason: str


@dataclass(frozen=True)
class SendHoldCompulsorySavings:
    pass


@dataclass(frozen=True)
class SendReleaseCompulsorySavings:
    reason: str


@dataclass(frozen=True)
class MarkLoanDisbursing:
    msisdn: str


@dataclass(frozen=True)
class ActivateLoan:
    disbursed_on: date


@dataclass(frozen=True)
class RejectLoan:
    reason: str


@dataclass(frozen=True)
class FailLoanDisbursement:
    reason: str


@dataclass(frozen=True)
class Note:
    """A line for the saga's timeline (what was decided and why)."""

    text: str


Command = (SendReserveCredit | SendDisburseLoan | SendReleaseCredit | MarkLoanDisbursing
           | ActivateLoan | RejectLoan | FailLoanDisbursement | Note
           | SendHoldCompulsorySavings | SendReleaseCompulsorySavings)


@dataclass(frozen=True)
class Decision:
    state: SagaState
    commands: list[Command] = field(default_factory=list)


def start(
    *, saga_id: str, loan_id: str, client_id: str, partner_id: str, amount: Decimal,
    now: datetime, policy: SagaPolicy, currency: str = "MAD",
    savings_required: Decimal | None = None,
) -> tuple[SagaState, list[Command]]:
    state = SagaState(
        id=saga_id, loan_id=loan_id, client_id=client_id, partner_id=partner_id,
        amount=amount, currency=currency, state=SagaStatus.RESERVING_CREDIT,
        step=Step.RESERVE_CREDIT, deadline=now + policy.credit_timeout,
        savings_required=savings_required,
    )
    return state, [SendReserveCredit()]


def _ignore(state: SagaState, event: SagaEvent) -> tuple[SagaState, list[Command]]:
    return state, [Note(f"{type(event).__name__} ignored in state {state.state.value}")]


def _compensate(state: SagaState, now: datetime, reason: str, policy: SagaPolicy
                ) -> tuple[SagaState, list[Command]]:
    new = replace(state, state=SagaStatus.COMPENSATING, step=Step.RELEASE_CREDIT,
                  compensating=True, failed=False, attempts=0, reason=reason,
                  deadline=now + policy.credit_timeout)
    commands: list[Command] = [SendReleaseCredit(reason)]
    if state.savings_requested:
        commands.append(SendReleaseCompulsorySavings(reason))
    return new, [*commands, FailLoanDisbursement(reason)]


def _released(state: SagaState) -> bool:
    """Everything the saga took is given back: the credit, and the savings it asked for."""
    return state.credit_released and (state.savings_released or not state.savings_requested)


def _to_pivot(state: SagaState, now: datetime, policy: SagaPolicy
              ) -> tuple[SagaState, list[Command]]:
    assert state.msisdn is not None
    payout_deadline = now + policy.payout_timeout
    new = replace(state, state=SagaStatus.DISBURSING, step=Step.DISBURSE, attempts=0,
                  payout_deadline=payout_deadline,
                  deadline=payout_deadline + policy.payout_grace)
    return new, [MarkLoanDisbursing(state.msisdn), SendDisburseLoan(payout_deadline)]


def _savings_deadline_passed(state: SagaState, now: datetime, policy: SagaPolicy
                             ) -> tuple[SagaState, list[Command]]:
    """Waiting for the compulsory savings: re-ask while unanswered, give up at the end."""
    assert state.savings_deadline is not None
    if now >= state.savings_deadline:
        if state.savings_shortfall is not None:
            why = f"a shortfall of {state.savings_shortfall}"
        else:
            why = "no answer from savings"
        reason = (f"compulsory savings of {state.savings_required} not held by "
                  f"{state.savings_deadline.isoformat()}: {why}")
        new, commands = _compensate(state, now, reason, policy)
        return new, [*commands, Note(reason)]
    if state.attempts < policy.max_resends:
        return (replace(state, attempts=state.attempts + 1,
                        deadline=min(now + policy.credit_timeout, state.savings_deadline)),
                [SendHoldCompulsorySavings(),
                 Note(f"no compulsory savings answer by the deadline; HoldCompulsorySavings "
                      f"re-sent ({state.attempts + 1}/{policy.max_resends})")])
    return (replace(state, deadline=state.savings_deadline),
            [Note("savings has not answered; waiting until the compulsory savings deadline")])


def _on_deadline(state: SagaState, now: datetime, policy: SagaPolicy
                 ) -> tuple[SagaState, list[Command]]:
    if state.deadline is None or now < state.deadline:
        return state, []
    retry = state.attempts < policy.max_resends
    attempt = f"{state.attempts + 1}/{policy.max_resends}"
    if state.state is SagaStatus.RESERVING_CREDIT:
        if retry:
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.credit_timeout),
                    [SendReserveCredit(), Note(f"no credit answer by the deadline; "
                                               f"ReserveCredit re-sent ({attempt})")])
        reason = "the clients service did not answer the credit reservation in time"
        return (replace(state, state=SagaStatus.FAILED, failed=True, compensating=True,
                        step=Step.RELEASE_CREDIT, deadline=None, reason=reason),
                [SendReleaseCredit(reason), FailLoanDisbursement(reason), Note(reason)])
    if state.state is SagaStatus.HOLDING_SAVINGS:
        return _savings_deadline_passed(state, now, policy)
    if state.state is SagaStatus.DISBURSING:
        assert state.payout_deadline is not None
        if retry:
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.payout_grace),
                    [SendDisburseLoan(state.payout_deadline),
                     Note(f"no payout answer by the deadline; DisburseLoan re-sent ({attempt})")])
        reason = ("the payout was not answered by its deadline: its outcome is unknown, "
                  "so it is in doubt; the credit stays reserved until payments reports "
                  "the provider's answer")
        return _in_doubt(state, now, reason), [Note(reason)]
    if state.state is SagaStatus.COMPENSATING:
        if retry:
            why = state.reason or "disbursement failed"
            resend: list[Command] = []
            if not state.credit_released:
                resend.append(SendReleaseCredit(why))
            if state.savings_requested and not state.savings_released:
                resend.append(SendReleaseCompulsorySavings(why))
            names = ", ".join(type(c).__name__.removeprefix("Send") for c in resend)
            return (replace(state, attempts=state.attempts + 1,
                            deadline=now + policy.credit_timeout),
                    [*resend, Note(f"no release confirmation by the deadline; {names} "
                                   f"re-sent ({attempt})")])
        reason = ("the credit release was never confirmed: compensation failed"
                  if not state.credit_released else
                  "the compulsory savings release was never confirmed: compensation failed")
        return (replace(state, state=SagaStatus.FAILED, failed=True, deadline=None,
                        reason=reason), [Note(reason)])
    return replace(state, deadline=None), []


def _in_doubt(state: SagaState, since: datetime, reason: str) -> SagaState:
    return replace(state, state=SagaStatus.IN_DOUBT, step=Step.DISBURSE, deadline=None,
                   failed=False, compensating=False, reason=reason,
                   in_doubt_since=state.in_doubt_since or since)


def _awaiting_payout(state: SagaState) -> bool:
    """Still waiting for the payout's outcome: disbursing, in doubt, or a saga an older
    version ended ``failed`` at its payout deadline (its outcome is just as unknown)."""
    return (state.state in (SagaStatus.DISBURSING, SagaStatus.IN_DOUBT)
            or (state.state is SagaStatus.FAILED and state.step is Step.DISBURSE
                and not state.compensating))


def decide(state: SagaState, event: SagaEvent, policy: SagaPolicy | None = None
           ) -> tuple[SagaState, list[Command]]:
    """The saga's next state and the commands to send; duplicates change nothing."""
    policy = policy or SagaPolicy()
    s = state.state
    if isinstance(event, DeadlinePassed):
        return _on_deadline(state, event.now, policy)

    if isinstance(event, CreditReservedReply):
        if s is not SagaStatus.RESERVING_CREDIT:
            return _ignore(state, event)
        reserved = replace(state, msisdn=event.msisdn, language=event.language)
        if not state.savings_step:
            return _to_pivot(reserved, event.now, policy)
        until = event.now + policy.savings_wait
        return (replace(reserved, state=SagaStatus.HOLDING_SAVINGS, step=Step.HOLD_SAVINGS,
                        attempts=0, savings_requested=True, savings_deadline=until,
                        deadline=min(event.now + policy.credit_timeout, until)),
                [SendHoldCompulsorySavings(),
                 Note(f"compulsory savings of {state.savings_required} asked for before "
                      f"the payout (waiting until {until.isoformat()})")])

    if isinstance(event, SavingsHeldReply):
        if s is not SagaStatus.HOLDING_SAVINGS:
            return _ignore(state, event)
        new, pivot = _to_pivot(replace(state, savings_held=event.held), event.now, policy)
        return new, [*pivot, Note(f"compulsory savings held: {event.held}")]

    if isinstance(event, SavingsInsufficientReply):
        if s is not SagaStatus.HOLDING_SAVINGS:
            return _ignore(state, event)
        assert state.savings_deadline is not None
        return (replace(state, savings_shortfall=event.shortfall,
                        deadline=state.savings_deadline),
                [Note(f"compulsory savings short by {event.shortfall} ({event.reason}); "
                      f"waiting for deposits until {state.savings_deadline.isoformat()}")])

    if isinstance(event, SavingsReleasedReply):
        if s is SagaStatus.COMPENSATING or (s is SagaStatus.FAILED and state.compensating):
            if not state.savings_requested or state.savings_released:
                return _ignore(state, event)
            new = replace(state, savings_released=True)
            if _released(new):
                return (replace(new, state=SagaStatus.COMPENSATED, step=Step.DONE,
                                deadline=None, failed=False), [])
            return new, [Note("compulsory savings released; waiting for the credit release")]
        return _ignore(state, event)

    if isinstance(event, CreditRejectedReply):
        if s is not SagaStatus.RESERVING_CREDIT:
            return _ignore(state, event)
        reason = f"credit rejected: {event.reason}" + (f" ({event.detail})" if event.detail
                                                       else "")
        return (replace(state, state=SagaStatus.CREDIT_REJECTED, step=Step.DONE, deadline=None,
                        reason=reason), [RejectLoan(event.reason)])

    if isinstance(event, PayoutCompleted):
        if _awaiting_payout(state):
            new = replace(state, state=SagaStatus.COMPLETED, step=Step.DONE, deadline=None,
                          failed=False, provider_reference=event.provider_reference)
            # the business day the money left (Africa/Casablanca), not the UTC date
            commands: list[Command] = [ActivateLoan(business_date(event.completed_at))]
            if s is not SagaStatus.DISBURSING:
                commands.append(Note(f"the provider confirmed the payout: the {s.value} "
                                     "saga is completed"))
            return new, commands
        if s is SagaStatus.COMPENSATING:
            reason = "payments reported the payout completed after reporting it failed"
            return (replace(state, state=SagaStatus.FAILED, failed=True, deadline=None,
                            reason=reason), [Note(reason)])
        return _ignore(state, event)

    if isinstance(event, PayoutFailed):
        if _awaiting_payout(state):
            return _compensate(state, event.now, f"payout failed: {event.reason}", policy)
        return _ignore(state, event)

    if isinstance(event, PayoutInDoubt):
        if _awaiting_payout(state) and s is not SagaStatus.IN_DOUBT:
            reason = f"payout in doubt: {event.reason}"
            return (_in_doubt(state, event.since, reason),
                    [Note(f"{reason}; nothing is compensated until the provider answers")])
        return _ignore(state, event)

    if isinstance(event, CreditReleasedReply):
        if s is SagaStatus.COMPENSATING or (s is SagaStatus.FAILED and state.compensating):
            if state.credit_released:
                return _ignore(state, event)
            new = replace(state, credit_released=True)
            if _released(new):
                return (replace(new, state=SagaStatus.COMPENSATED, step=Step.DONE,
                                deadline=None, failed=False), [])
            return new, [Note("credit released; waiting for the compulsory savings release")]
        return _ignore(state, event)

    raise TypeError(f"unknown saga event {event!r}")  # pragma: no cover
