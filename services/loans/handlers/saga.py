"""The disbursement saga's side effects: persist the decided state, send its commands.

The saga row, the loan and the outbox rows change in the caller's transaction, so
a command is sent if and only if the state that asked for it is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.loans.domain import saga as sg
from services.loans.domain.calendar import WorkingCalendar
from services.loans.domain.loan import Loan
from services.loans.domain.pricing import price
from services.loans.domain.schedule import (
    PlannedInstallment,
    fees_at_disbursement,
    reanchor_for,
    total_repayable,
)
from services.loans.repository import calendar as calendar_repo
from services.loans.repository import loans as loans_repo
from services.loans.repository import org as org_repo
from services.loans.repository import products as products_repo
from services.loans.repository import sagas as sagas_repo
from shared.contracts.clients import ReleaseCredit, ReserveCredit
from shared.contracts.loans import LoanDisbursed, LoanDisbursementFailed, LoanRejected
from shared.contracts.payments import DisburseLoan
from shared.contracts.savings import HoldCompulsorySavings, ReleaseCompulsorySavings
from shared.identifiers import InvalidIdentifier, canonical_reference
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.saga")


def now_utc() -> datetime:
    return datetime.now(UTC)


class LoanOffice:
    """The office a loan is booked to: given when already read, else read once if needed;
    and its product version's stamp when read beside the loan (the terms cache's key)."""

    def __init__(self, loan_id: str, *, known: bool = False, office_id: str | None = None,
                 product_stamp: datetime | None = None) -> None:
        self.loan_id = loan_id
        self.known = known
        self.office_id = office_id
        self.product_stamp = product_stamp

    async def get(self, uow: UnitOfWork) -> str | None:
        if not self.known:
            office = await org_repo.loan_office(uow.conn, self.loan_id)
            self.office_id = None if office is None else office[0]
            self.known = True
        return self.office_id


@dataclass
class Changes:
    """What a saga step changed besides the saga: written by :func:`record` with it."""

    notes: list[str] = field(default_factory=list)
    """The timeline's notes."""
    loan_changed: bool = False
    due_dates: list[PlannedInstallment] | None = None
    """The installments' due dates re-anchored at activation."""


async def execute(uow: UnitOfWork, loan: Loan, state: sg.SagaState,
                  commands: list[sg.Command], office: LoanOffice | None = None) -> Changes:
    """Apply the saga's commands to the loan (in memory) and the outbox; what changed is
    stored by :func:`record`, in the same statement as the saga."""
    office = office or LoanOffice(loan.id)
    changes = Changes()
    notes = changes.notes
    for cmd in commands:
        if isinstance(cmd, sg.Note):
            notes.append(cmd.text)
        elif isinstance(cmd, sg.SendReserveCredit):
            uow.emit(ReserveCredit(
                client_id=state.client_id, reservation_id=state.id, saga_id=state.id,
                loan_id=state.loan_id, amount=state.amount, currency=state.currency,
            ), key=state.client_id)
        elif isinstance(cmd, sg.SendReleaseCredit):
            uow.emit(ReleaseCredit(
                client_id=state.client_id, reservation_id=state.id, saga_id=state.id,
                loan_id=state.loan_id, reason=cmd.reason,
            ), key=state.client_id)
        elif isinstance(cmd, sg.SendDisburseLoan):
            assert state.msisdn is not None
            uow.emit(DisburseLoan(
                saga_id=state.id, loan_id=state.loan_id, client_id=state.client_id,
                partner_id=state.partner_id, amount=state.amount, currency=state.currency,
                msisdn=state.msisdn, deadline=cmd.deadline,
                office_id=await office.get(uow),
            ), key=state.loan_id)
        elif isinstance(cmd, sg.SendHoldCompulsorySavings):
            uow.emit(HoldCompulsorySavings(
                saga_id=state.id, loan_id=state.loan_id, client_id=state.client_id,
                partner_id=state.partner_id, loan_product_id=loan.product_id,
                principal=state.amount, required=state.savings_required,
                currency=state.currency), key=state.loan_id)
        elif isinstance(cmd, sg.SendReleaseCompulsorySavings):
            uow.emit(ReleaseCompulsorySavings(saga_id=state.id, loan_id=state.loan_id,
                                              reason=cmd.reason), key=state.loan_id)
        elif isinstance(cmd, sg.MarkLoanDisbursing):
            loan.start_disbursing(cmd.msisdn)
            changes.loan_changed = True
        elif isinstance(cmd, sg.RejectLoan):
            loan.credit_rejected(cmd.reason)
            changes.loan_changed = True
            uow.emit(LoanRejected(loan_id=loan.id, client_id=loan.client_id,
                                  reason=f"credit_rejected: {cmd.reason}",
                                  rejected_by="clients"), key=loan.id)
        elif isinstance(cmd, sg.FailLoanDisbursement):
            loan.fail_disbursement(cmd.reason)
            changes.loan_changed = True
            uow.emit(LoanDisbursementFailed(loan_id=loan.id, client_id=loan.client_id,
                                            saga_id=state.id, principal=loan.principal,
                                            reason=cmd.reason), key=loan.id)
        elif isinstance(cmd, sg.ActivateLoan):
            changes.due_dates = await _activate(uow, loan, state, cmd, office)
            changes.loan_changed = True
    return changes


async def execute_and_store(uow: UnitOfWork, loan: Loan, state: sg.SagaState,
                            commands: list[sg.Command]) -> list[str]:
    """:func:`execute`, storing the loan's changes at once: for a caller that writes its
    own saga row (a group loan's member legs); the timeline notes."""
    changes = await execute(uow, loan, state, commands)
    if changes.due_dates:
        await loans_repo.set_due_dates(uow.conn, loan.id, changes.due_dates)
    if changes.loan_changed:
        await loans_repo.save(uow.conn, loan)
    return changes.notes


async def _activate(uow: UnitOfWork, loan: Loan, state: sg.SagaState,
                    cmd: sg.ActivateLoan, office: LoanOffice) -> list[PlannedInstallment]:
    """Activate the loan; the previewed schedule is re-anchored to the disbursement date
    (the new due dates are returned, for :func:`record` to store)."""
    conn = uow.conn
    terms = await products_repo.version_terms(conn, loan.product_id, loan.product_version,
                                              office.product_stamp)
    assert terms is not None
    loan.activate(cmd.disbursed_on)
    items, weekdays, holidays = await loans_repo.installments_with_calendar(
        conn, loan.id, *calendar_repo.calendar_window(cmd.disbursed_on))
    current = loans_repo.planned(items)
    calendar = WorkingCalendar(weekdays, holidays)
    schedule = reanchor_for(current, terms, cmd.disbursed_on, calendar)
    cost = price(loan.principal, [p.total for p in schedule], terms.periods_per_year)
    assert state.msisdn is not None
    uow.emit(LoanDisbursed(
        loan_id=loan.id, client_id=loan.client_id, partner_id=loan.partner_id,
        saga_id=state.id, principal=loan.principal, currency=loan.currency,
        msisdn=state.msisdn, disbursed_on=cmd.disbursed_on, installments=len(schedule),
        first_due_date=schedule[0].due_date, first_due_amount=schedule[0].total,
        total_repayable=total_repayable(schedule),
        fees_at_disbursement=fees_at_disbursement(terms, loan.principal),
        reference=loan.reference,
        office_id=await office.get(uow),
        teg=cost.teg, total_cost_of_credit=cost.total_cost_of_credit,
    ), key=loan.id)
    return schedule


async def record(uow: UnitOfWork, before: sg.SagaState | None, after: sg.SagaState,
                 event: str, notes: list[str], *, loan: Loan | None = None,
                 due_dates: list[PlannedInstallment] | None = None) -> None:
    """Store the saga's state and its timeline row, and the loan (``loan``, when it
    changed: its version checked and bumped) and its installments' new due dates, in one
    statement."""
    detail = "; ".join(notes) or (after.reason or "" if after.failed else "")
    await sagas_repo.write_step(
        uow.conn, after, event, detail,
        from_state=None if before is None else before.state.value,
        new=before is None, changed=before is None or after != before,
        loan=loan, due_dates=due_dates)


async def advance(uow: UnitOfWork, saga_id: str, loan_id: str, event: sg.SagaEvent,
                  policy: sg.SagaPolicy, event_name: str) -> bool:
    """Feed one reply (or a deadline) to the saga and carry out what it decides; False
    when ``saga_id`` names no disbursement saga of ours (it may be a group loan's leg).

    The ids come from another service: they are compared in their canonical form, and
    one that has none names no saga of ours. The saga and its loan are read, locked,
    in one statement."""
    try:
        saga_id = canonical_reference(saga_id, field="saga_id")
        loan_id = canonical_reference(loan_id, field="loan_id")
    except InvalidIdentifier:
        log.info("%s names saga %r, loan %r: not references of ours; ignored", event_name,
                 saga_id, loan_id)
        return False
    found = await sagas_repo.lock_with_loan(uow.conn, saga_id)
    if found is None:
        return False
    state, loan = found.state, found.loan
    if state.loan_id != loan_id:
        log.warning("%s for saga %s names loan %s, the saga's loan is %s; ignored",
                    event_name, saga_id, loan_id, state.loan_id)
        return True
    new_state, commands = sg.decide(state, event, policy)
    if new_state == state and not commands:
        return True
    changes = await execute(uow, loan, new_state, commands,
                            LoanOffice(loan.id, known=True, office_id=found.office_id,
                                       product_stamp=found.product_stamp))
    await record(uow, state, new_state, event_name, changes.notes,
                 loan=loan if changes.loan_changed else None, due_dates=changes.due_dates)
    if new_state.state != state.state:
        log.info("saga %s: %s -> %s on %s", saga_id, state.state.value, new_state.state.value,
                 event_name)
    return True


async def on_deadline(uow: UnitOfWork, saga_id: str, policy: sg.SagaPolicy) -> None:
    """The sweeper's step for one saga past its deadline (re-checked under the row lock)."""
    state = await sagas_repo.get(uow.conn, saga_id, for_update=True)
    if state is None or state.deadline is None:
        return
    await advance(uow, saga_id, state.loan_id, sg.DeadlinePassed(now_utc()), policy,
                  "DeadlinePassed")
