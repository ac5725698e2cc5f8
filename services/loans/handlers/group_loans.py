"""Group loans with joint liability: the application (one loan per member under one group
loan), maker-checker approval of all of them, the one group disbursement saga
(``domain.group_saga``), group repayments split over the members, and the group's
arrears and end (``GroupInArrears``/``GroupArrearsCured``, ``GroupLoanClosed``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from services.loans.domain import group_saga as gs
from services.loans.domain import reference as refs
from services.loans.domain import saga as sg
from services.loans.domain.group_repayment import DueItem, Member, owed_by, split
from services.loans.domain.loan import LoanStatus
from services.loans.domain.money import ZERO
from services.loans.handlers import applications, repayments
from services.loans.handlers import saga as single
from services.loans.repository import group_loans as repo
from services.loans.repository import loans as loans_repo
from services.loans.repository import org as org_repo
from services.loans.repository import products as products_repo
from services.loans.repository import sagas as sagas_repo
from shared.auth import Principal
from shared.clock import business_date
from shared.contracts.clients import ReleaseCredit, ReserveCredit
from shared.contracts.loans import (
    GroupArrearsCured,
    GroupInArrears,
    GroupLoanActive,
    GroupLoanClosed,
    GroupLoanDisbursementFailed,
    GroupMemberRepayment,
    GroupRepaymentLine,
    GroupRepaymentSplit,
    GroupRepaymentSummary,
    LoanApproved,
)
from shared.contracts.payments import (
    DisburseLoan,
    PayoutRecoveryRecorded,
    RepaymentReceived,
    ValidatePayee,
)
from shared.envelope import Envelope
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.identifiers import InvalidIdentifier, canonical_reference
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.groups")
SPLIT_NAMESPACE = uuid.UUID("6f1d6a52-3c1b-4d55-9a43-9b1c0a3e7a11")


# -- application and approval ------------------------------------------------------
async def apply(uow: UnitOfWork, who: Principal, *, group_id: str, product_id: str,
                term: int, members: list[tuple[str, Decimal]], cover_arrears: bool,
                tolerance_days: int, today: date,
                purpose_ceilings: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
    conn = uow.conn
    group = await org_repo.group(conn, group_id)
    partner = await conn.fetchval(
        "SELECT partner_id FROM group_projection WHERE group_id = $1", group_id)
    if (group is None or partner is None or not who.can_see(partner)
            or not who.can_see_office(group.office_path)):
        raise InvalidInput(f"no group {group_id!r} is known to loans", field="group_id")
    if group.dissolved:
        raise Conflict("the group is dissolved", field="group_id")
    roster = {r["client_id"] for r in await conn.fetch(
        "SELECT client_id FROM group_members WHERE group_id = $1", group_id)}
    asked = [c for c, _ in members]
    if len(set(asked)) != len(asked):
        raise InvalidInput("a member is listed twice", field="members")
    for i, client_id in enumerate(asked):
        if client_id not in roster:
            raise InvalidInput(f"{client_id!r} is not a member of the group",
                               field=f"members.{i}.client_id")
    if set(asked) != roster:
        raise InvalidInput("a group application has one loan for every member of the group "
                           f"({len(roster)} members)", field="members")
    group_loan_id = str(uuid.uuid4())
    try:
        await repo.insert(conn, group_loan_id=group_loan_id, group_id=group_id,
                          partner_id=partner, product_id=product_id,
                          cover_arrears=cover_arrears, tolerance=tolerance_days,
                          submitted_by=who.sub, office_id=group.office_id,
                          office_path=group.office_path)
    except repo.LiveGroupLoan:
        raise Conflict("the group already has a live group loan: the next cycle starts when "
                       "every member's loan has closed", field="group_id") from None
    # the leader first, then the members in the order given
    ordered = sorted(members, key=lambda m: m[0] != group.leader_id)
    for position, (client_id, principal) in enumerate(ordered):
        try:
            body = await applications.submit(
                uow, who, client_id=client_id, product_id=product_id, principal=principal,
                term=term, today=today, purpose_ceilings=purpose_ceilings)
        except InvalidInput as exc:   # name the member
            field = exc.field if exc.field in ("product_id", "term") else (
                f"members.{asked.index(client_id)}.{exc.field or 'client_id'}")
            raise InvalidInput(str(exc), field=field) from None
        await repo.add_member(conn, group_loan_id, body["id"], client_id, position)
    return await show(uow, who, group_loan_id)


async def load(uow: UnitOfWork, who: Principal, group_loan_id: str, *,
               for_update: bool = False) -> Any:
    try:
        ref = canonical_reference(group_loan_id, field="group_loan_id")
    except InvalidIdentifier:
        raise NotFound(f"group loan {group_loan_id!r} not found", field="id") from None
    gl = await repo.get(uow.conn, ref, for_update=for_update)
    if gl is None or not who.can_see(gl["partner_id"]) or not who.can_see_office(
            gl["office_path"]):
        raise NotFound(f"group loan {group_loan_id} not found", field="id")
    return gl


async def approve(uow: UnitOfWork, who: Principal, group_loan_id: str, policy: sg.SagaPolicy
                  ) -> dict[str, Any]:
    """Maker-checker: every member's loan approved by a second operator; one saga starts."""
    conn = uow.conn
    gl = await load(uow, who, group_loan_id, for_update=True)
    if gl["status"] != "submitted":
        raise Conflict(f"the group loan is {gl['status']}", field="status",
                       status_now=gl["status"], allowed=[])
    if gl["submitted_by"] == who.sub:
        raise Forbidden("maker-checker: the operator who submitted the group application "
                        "cannot approve it")
    saga_id = str(uuid.uuid4())
    legs: list[tuple[str, str, str, Decimal]] = []
    for m in await repo.members(conn, gl["id"]):
        loan = await loans_repo.get(conn, m["loan_id"], for_update=True)
        assert loan is not None
        loan.approve(who.sub)
        await loans_repo.save(conn, loan)
        uow.emit(LoanApproved(loan_id=loan.id, client_id=loan.client_id, approved_by=who.sub,
                              saga_id=saga_id), key=loan.id)
        legs.append((str(uuid.uuid4()), loan.id, loan.client_id, loan.principal))
    state, commands = gs.start(saga_id=saga_id, group_loan_id=gl["id"],
                               partner_id=gl["partner_id"], legs=legs, now=single.now_utc(),
                               policy=policy)
    await repo.insert_saga(conn, state)
    await repo.set_status(conn, gl["id"], "approved", decided_by=who.sub, saga_id=saga_id)
    notes = await execute(uow, state, commands)
    await sagas_repo.add_timeline(conn, saga_id, "GroupLoanApproved", None,
                                         state.state.value,
                                         "; ".join([f"approved by {who.sub}", *notes]))
    return {**await show(uow, who, gl["id"]), "saga_id": saga_id}


async def reject(uow: UnitOfWork, who: Principal, group_loan_id: str, reason: str
                 ) -> dict[str, Any]:
    gl = await load(uow, who, group_loan_id, for_update=True)
    if gl["status"] != "submitted":
        raise Conflict(f"the group loan is {gl['status']}", field="status")
    for m in await repo.members(uow.conn, gl["id"]):
        await applications.reject(uow, who, m["loan_id"], reason)
    await repo.set_status(uow.conn, gl["id"], "rejected", decided_by=who.sub)
    return await show(uow, who, gl["id"])


async def show(uow: UnitOfWork, who: Principal, group_loan_id: str) -> dict[str, Any]:
    gl = await load(uow, who, group_loan_id)
    members = await repo.members(uow.conn, gl["id"])
    saga = None
    if gl["saga_id"]:
        s = await repo.get_saga(uow.conn, gl["saga_id"])
        saga = None if s is None else {"id": s.id, "state": s.state.value, "reason": s.reason,
                                       "to_recover": [g.loan_id for g in s.legs
                                                      if g.to_recover]}
    cycle = await repo.closed_cycles(uow.conn, gl["group_id"]) + 1
    return {
        "id": gl["id"], "group_id": gl["group_id"], "product_id": gl["product_id"],
        "status": gl["status"], "cycle": cycle, "cover_arrears": gl["cover_arrears"],
        "arrears_tolerance_days": gl["arrears_tolerance_days"],
        "in_arrears": gl["in_arrears"], "submitted_by": gl["submitted_by"],
        "decided_by": gl["decided_by"], "office_id": gl["office_id"],
        "total_principal": str(sum((m["principal"] for m in members), ZERO)),
        "members": [{"loan_id": m["loan_id"], "client_id": m["client_id"],
                     "status": m["status"], "principal": str(m["principal"]),
                     "principal_outstanding": str(m["principal_outstanding"]),
                     "days_in_arrears": m["days_in_arrears"]} for m in members],
        "saga": saga,
    }


# -- the saga's side effects --------------------------------------------------------
def _leg_state(state: gs.GroupSagaState, leg: gs.Leg) -> sg.SagaState:
    """One member as a single-loan saga state, to reuse the single saga's effects."""
    return sg.SagaState(id=leg.leg_id, loan_id=leg.loan_id, client_id=leg.client_id,
                        partner_id=state.partner_id, amount=leg.amount,
                        state=state.state, step=state.step, deadline=None,
                        currency=state.currency, msisdn=leg.msisdn, language=leg.language)


async def execute(uow: UnitOfWork, state: gs.GroupSagaState, commands: list[gs.GroupCommand]
                  ) -> list[str]:
    conn = uow.conn
    notes: list[str] = []
    by_loan = {g.loan_id: g for g in state.legs}
    for cmd in commands:
        if isinstance(cmd, sg.Note):
            notes.append(cmd.text)
        elif isinstance(cmd, gs.ReserveLeg | gs.ReleaseLeg | gs.DisburseLeg
                        | gs.ValidateLegPayee):
            leg = state.leg(cmd.leg_id)
            assert leg is not None
            if isinstance(cmd, gs.ReserveLeg):
                uow.emit(ReserveCredit(client_id=leg.client_id, reservation_id=leg.leg_id,
                                       saga_id=leg.leg_id, loan_id=leg.loan_id,
                                       amount=leg.amount, currency=state.currency),
                         key=leg.client_id)
            elif isinstance(cmd, gs.ValidateLegPayee):
                assert leg.msisdn is not None
                uow.emit(ValidatePayee(
                    saga_id=leg.leg_id, loan_id=leg.loan_id, client_id=leg.client_id,
                    msisdn=leg.msisdn, amount=leg.amount, currency=state.currency),
                    key=leg.loan_id)
            elif isinstance(cmd, gs.ReleaseLeg):
                uow.emit(ReleaseCredit(client_id=leg.client_id, reservation_id=leg.leg_id,
                                       saga_id=leg.leg_id, loan_id=leg.loan_id,
                                       reason=cmd.reason), key=leg.client_id)
            else:
                assert leg.msisdn is not None
                office = await org_repo.loan_office(conn, leg.loan_id)
                uow.emit(DisburseLoan(
                    saga_id=leg.leg_id, loan_id=leg.loan_id, client_id=leg.client_id,
                    partner_id=state.partner_id, amount=leg.amount, currency=state.currency,
                    msisdn=leg.msisdn, deadline=cmd.deadline,
                    office_id=None if office is None else office[0]), key=leg.loan_id)
        elif isinstance(cmd, gs.MarkMemberDisbursing | gs.RejectMember | gs.FailMember
                        | gs.ActivateMember):
            leg = by_loan[cmd.loan_id]
            loan = await loans_repo.get(conn, cmd.loan_id, for_update=True)
            assert loan is not None
            one: sg.Command
            if isinstance(cmd, gs.MarkMemberDisbursing):
                one = sg.MarkLoanDisbursing(cmd.msisdn)
            elif isinstance(cmd, gs.RejectMember):
                one = sg.RejectLoan(cmd.reason)
            elif isinstance(cmd, gs.FailMember):
                one = sg.FailLoanDisbursement(cmd.reason)
            else:
                one = sg.ActivateLoan(cmd.disbursed_on)
            await single.execute_and_store(uow, loan, _leg_state(state, leg), [one])
        elif isinstance(cmd, gs.RecoverPayout):
            # The member has the money (the provider completed the payout) and owes it:
            # the loan carries it as outstanding principal, as the books' portfolio does,
            # until payments' operators record its recovery.
            loan = await loans_repo.get(conn, cmd.loan_id, for_update=True)
            assert loan is not None
            loan.payout_to_recover()
            await loans_repo.save(conn, loan)
            log.warning("group loan %s: member loan %s was paid out although the group "
                        "failed; it carries %s outstanding, flagged for an operator to "
                        "recover", state.group_loan_id, cmd.loan_id, loan.principal_outstanding)
        elif isinstance(cmd, gs.GroupActive):
            gl = await repo.get(conn, state.group_loan_id)
            assert gl is not None
            await repo.set_status(conn, state.group_loan_id, "active")
            uow.emit(GroupLoanActive(
                group_id=gl["group_id"], group_loan_id=state.group_loan_id,
                member_ids=[g.client_id for g in state.legs],
                loan_ids=[g.loan_id for g in state.legs], saga_id=state.id,
                total_principal=state.amount, currency=state.currency,
                cover_arrears=gl["cover_arrears"]), key=gl["group_id"])
        elif isinstance(cmd, gs.GroupFailed):
            gl = await repo.get(conn, state.group_loan_id)
            assert gl is not None
            await repo.set_status(conn, state.group_loan_id,
                                  "rejected" if state.rejected else "failed")
            uow.emit(GroupLoanDisbursementFailed(
                group_id=gl["group_id"], group_loan_id=state.group_loan_id,
                member_ids=[g.client_id for g in state.legs], saga_id=state.id,
                reason=cmd.reason,
                payouts_to_recover=[g.loan_id for g in state.legs if g.to_recover]),
                key=gl["group_id"])
    return notes


async def advance_leg(uow: UnitOfWork, leg_id: str, event: gs.GroupEvent,
                      policy: sg.SagaPolicy, event_name: str) -> bool:
    """Feed a member's reply to its group saga; False when ``leg_id`` is no group leg."""
    try:
        leg_id = canonical_reference(leg_id, field="saga_id")
    except InvalidIdentifier:
        return False
    saga_id = await repo.saga_of_leg(uow.conn, leg_id)
    if saga_id is None:
        return False
    await _advance(uow, saga_id, event, policy, event_name)
    return True


async def _advance(uow: UnitOfWork, saga_id: str, event: gs.GroupEvent,
                   policy: sg.SagaPolicy, event_name: str) -> None:
    state = await repo.get_saga(uow.conn, saga_id, for_update=True)
    if state is None:
        return
    if hasattr(event, "leg_id"):
        leg = state.leg(event.leg_id)
        if leg is None:
            return
    new, commands = gs.decide(state, event, policy)
    if new == state and not commands:
        return
    notes = await execute(uow, new, commands)
    if new != state:
        await repo.update_saga(uow.conn, new)
    await sagas_repo.add_timeline(uow.conn, saga_id, event_name, state.state.value,
                                         new.state.value, "; ".join(notes))


async def on_any_deadline(uow: UnitOfWork, saga_id: str, policy: sg.SagaPolicy) -> None:
    """The sweeper's step for a saga of either type."""
    group = await repo.get_saga(uow.conn, saga_id)
    if group is None:
        await single.on_deadline(uow, saga_id, policy)
        return
    if group.deadline is None:
        return
    await _advance(uow, saga_id, sg.DeadlinePassed(single.now_utc()), policy, "DeadlinePassed")


# -- payouts to recover -------------------------------------------------------------
async def on_payout_recovery_recorded(uow: UnitOfWork, msg: PayoutRecoveryRecorded,
                                      env: Envelope) -> None:
    """Payments' operators recorded how much of a member's payout to recover came back
    or was written off: the member loan owes what remains (as the books' portfolio does);
    once the recovery is closed the loan ends ``disbursement_failed`` and the member's
    reserved credit is released."""
    conn = uow.conn
    try:
        loan_id = canonical_reference(msg.loan_id, field="loan_id")
    except InvalidIdentifier:
        return
    loan = await loans_repo.get(conn, loan_id, for_update=True)
    if loan is None or loan.status is not LoanStatus.DISBURSING or (
            await repo.group_loan_of(conn, loan_id)) is None:
        log.info("PayoutRecoveryRecorded for loan %s: no payout of ours to recover; ignored",
                 msg.loan_id)
        return
    closed = msg.status != "open"
    reason = (f"payout to recover {msg.status} (recovery {msg.recovery_id}, last "
              f"{msg.outcome} {msg.amount})")
    loan.payout_recovery_recorded(msg.remaining, closed, reason)
    await loans_repo.save(conn, loan)
    if closed:
        leg_id = await conn.fetchval(
            "SELECT leg_id FROM group_saga_legs WHERE saga_id = $1 AND loan_id = $2",
            msg.saga_id, loan_id)
        if leg_id is not None:
            uow.emit(ReleaseCredit(client_id=loan.client_id, reservation_id=leg_id,
                                   saga_id=leg_id, loan_id=loan_id, reason=reason),
                     key=loan.client_id)


# -- group repayments ----------------------------------------------------------------
async def on_repayment_received(uow: UnitOfWork, msg: RepaymentReceived, env: Envelope
                                ) -> None:
    """A repayment told with a group loan's id is split over its members; any other goes
    the normal way. Either way, a member's loan ending may end its group loan."""
    try:
        ref = canonical_reference(msg.loan_id, field="loan_id")
    except InvalidIdentifier:
        ref = None
    # Most repayments name a loan of no group: one read tells (a member's group loan is
    # fixed before its loan is paid out, so it is the same after the repayment). A
    # member's loan may be named by its short reference, as the allocation resolves it.
    parsed = refs.parse(msg.loan_id)
    short = parsed.reference if parsed.outcome == "valid" else None
    is_group, member_of = (False, None) if ref is None else await repo.reference_kind(
        uow.conn, ref, short)
    gl = await repo.get(uow.conn, ref, for_update=True) if is_group and ref is not None else None
    if gl is None:
        await repayments.on_repayment_received(uow, msg, env)
        if member_of is not None:
            await _maybe_closed(uow, member_of)
        return
    await _split(uow, gl, msg, env)
    await _maybe_closed(uow, gl["id"])


async def _split(uow: UnitOfWork, gl: Any, msg: RepaymentReceived, env: Envelope) -> None:
    conn = uow.conn
    if await conn.fetchval("SELECT 1 FROM group_repayments WHERE payment_id = $1",
                           msg.payment_id):
        log.info("group payment %s already split; duplicate ignored", msg.payment_id)
        return
    paid_on = business_date(msg.received_at)
    rows = await repo.members(conn, gl["id"])
    members: list[Member] = []
    for m in rows:
        items = [] if m["status"] != LoanStatus.ACTIVE.value else await loans_repo.installments(
            conn, m["loan_id"])
        members.append(Member(m["loan_id"], m["client_id"], tuple(
            DueItem(i.due_date, i.outstanding, i.status == "overdue")
            for i in items if i.status in ("pending", "overdue"))))
    result = split(members, msg.amount if gl["status"] == "active" else ZERO, paid_on,
                   cover_arrears=gl["cover_arrears"])
    unallocated = msg.amount - sum(result.shares.values(), ZERO)
    lines: list[GroupRepaymentLine] = []
    for member in members:
        share = result.shares.get(member.loan_id)
        if not share:
            continue
        payment_id = str(uuid.uuid5(SPLIT_NAMESPACE, f"{msg.payment_id}/{member.loan_id}"))
        lines.append(GroupRepaymentLine(loan_id=member.loan_id, client_id=member.client_id,
                                        payment_id=payment_id, amount=share))
        await repayments.on_repayment_received(uow, msg.model_copy(update={
            "loan_id": member.loan_id, "payment_id": payment_id, "amount": share}), env)
    await conn.execute(
        "INSERT INTO group_repayments (payment_id, group_loan_id, amount, unallocated, lines,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6)", msg.payment_id, gl["id"], msg.amount,
        unallocated, [ln.model_dump(mode="json") for ln in lines], msg.received_at)
    member_ids = [m.client_id for m in members]
    uow.emit(GroupRepaymentSplit(
        group_id=gl["group_id"], group_loan_id=gl["id"], member_ids=member_ids,
        payment_id=msg.payment_id, amount=msg.amount, lines=lines, unallocated=unallocated,
        currency=msg.currency), key=gl["group_id"])
    await _summary(uow, gl, member_ids, lines, paid_on)


async def _summary(uow: UnitOfWork, gl: Any, member_ids: list[str],
                   lines: list[GroupRepaymentLine], on: date) -> None:
    """The leader's meeting summary: what each member paid and still owes."""
    conn = uow.conn
    leader = await conn.fetchval("SELECT leader_id FROM group_projection WHERE group_id = $1",
                                 gl["group_id"])
    paid = {ln.loan_id: ln.amount for ln in lines}
    out: list[GroupMemberRepayment] = []
    for m in await repo.members(conn, gl["id"]):
        items = await loans_repo.installments(conn, m["loan_id"])
        owing = owed_by(Member(m["loan_id"], m["client_id"], tuple(
            DueItem(i.due_date, i.outstanding, False) for i in items
            if i.status in ("pending", "overdue"))), on)
        out.append(GroupMemberRepayment(client_id=m["client_id"], loan_id=m["loan_id"],
                                        paid=paid.get(m["loan_id"], ZERO), still_owing=owing))
    if out and leader:
        uow.emit(GroupRepaymentSummary(
            group_id=gl["group_id"], group_loan_id=gl["id"], leader_client_id=leader,
            meeting_date=on, members=out, total_paid=sum(paid.values(), ZERO)),
            key=gl["group_id"])


async def _maybe_closed(uow: UnitOfWork, group_loan_id: str) -> None:
    gl = await repo.get(uow.conn, group_loan_id, for_update=True)
    if gl is None or gl["status"] != "active":
        return
    rows = await repo.members(uow.conn, group_loan_id)
    if not all(r["status"] in ("closed", "written_off") for r in rows):
        return
    worst = max(int(r["max_days_in_arrears"] or 0) for r in rows)
    within = worst <= gl["arrears_tolerance_days"] and all(
        r["status"] == "closed" for r in rows)
    await uow.conn.execute(
        "UPDATE group_loans SET status = 'closed', in_arrears = $2, updated_at = now()"
        " WHERE id = $1", group_loan_id, not within)
    cycles = await repo.closed_cycles(uow.conn, gl["group_id"])
    uow.emit(GroupLoanClosed(
        group_id=gl["group_id"], group_loan_id=group_loan_id,
        member_ids=[r["client_id"] for r in rows], within_tolerance=within,
        max_days_in_arrears=worst, next_cycle=cycles + 1), key=gl["group_id"])


# -- joint liability: the group's arrears ------------------------------------------
async def refresh_arrears(uow: UnitOfWork, on: date) -> int:
    """``GroupInArrears`` for a live group loan whose member fell into arrears,
    ``GroupArrearsCured`` once none is; how many events."""
    events = 0
    for r in await repo.live_with_members(uow.conn):
        late = list(r["late"] or [])
        if late and not r["in_arrears"]:
            await repo.set_in_arrears(uow.conn, r["id"], True)
            uow.emit(GroupInArrears(group_id=r["group_id"], group_loan_id=r["id"],
                                    member_ids=list(r["member_ids"]), loans_in_arrears=late,
                                    business_date=on), key=r["group_id"])
            events += 1
        elif not late and r["in_arrears"]:
            await repo.set_in_arrears(uow.conn, r["id"], False)
            uow.emit(GroupArrearsCured(group_id=r["group_id"], group_loan_id=r["id"],
                                       member_ids=list(r["member_ids"]), business_date=on),
                     key=r["group_id"])
            events += 1
    return events


async def product_exists(uow: UnitOfWork, product_id: str) -> bool:
    return await products_repo.get(uow.conn, product_id) is not None
