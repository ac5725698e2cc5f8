"""A group's compulsory savings cover a member's arrears, by maker-checker (issue 16).

Savings knows of loans only from ``loans.events``: the members of each live group loan
(``GroupLoanActive``, ended by ``GroupLoanClosed``) and each loan's overdue
installments (``InstallmentOverdue`` sets what an installment still owes, a
``RepaymentApplied`` lowers it, ``LoanArrearsCured``/``LoanClosed``/``LoanWrittenOff``
clear the loan).

A maker asks (:func:`request_cover`) that compulsory savings pay what a member's loan
has overdue: the member's own compulsory accounts first, then — only when the group's
rule lets the group's money cover a member in arrears (loans' ``cover_arrears``) — the
other members' compulsory accounts, in the group loan's order. Nothing overdue, or not
enough savings to cover it all, is a 409 and nothing is recorded. A second operator
approves (:func:`approve`): the plan is made again on the accounts as they are then
(locked), each account pays its part in the same transaction — a statement line
``loan_repayment`` and ``StandingInstructionPayment`` on ``savings.events``, which
payments already books (Dr the account's deposit liability / Cr repayment suspense) and
applies to the member's loan as a repayment (``RepaymentReceived``), exactly as for a
standing instruction. Compulsory savings stay blocked for every other debit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from services.savings.domain.account import canonical_loan_id
from services.savings.domain.money import ZERO
from services.savings.metrics import MOVEMENTS
from services.savings.repository import accounts as accounts_repo
from services.savings.repository import arrears_cover as repo
from services.savings.repository import clients as clients_repo
from shared.auth import Principal
from shared.contracts.loans import (
    GroupLoanActive,
    GroupLoanClosed,
    InstallmentOverdue,
    LoanArrearsCured,
    RepaymentApplied,
)
from shared.contracts.savings import StandingInstructionPayment
from shared.envelope import Envelope
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.uow import UnitOfWork

COVER_NAMESPACE = uuid.UUID("0b7f2d3e-8a61-4f0c-b5d2-6e9a1c4f3b27")
CHANNEL = "group_arrears_cover"


# -- what loans tells --------------------------------------------------------------------

async def on_group_loan_active(uow: UnitOfWork, msg: GroupLoanActive, env: Envelope) -> None:
    rule = getattr(msg, "cover_arrears", None)   # when loans publishes the group's rule
    await repo.group_loan_active(
        uow.conn, group_loan_id=msg.group_loan_id, group_id=msg.group_id,
        members=[(c, canonical_loan_id(lo)) for c, lo in zip(msg.member_ids, msg.loan_ids,
                                                            strict=False)],
        cover_arrears=rule if isinstance(rule, bool) else None)


async def on_group_loan_closed(uow: UnitOfWork, msg: GroupLoanClosed, env: Envelope) -> None:
    await repo.group_loan_ended(uow.conn, msg.group_loan_id)


async def on_installment_overdue(uow: UnitOfWork, msg: InstallmentOverdue, env: Envelope
                                 ) -> None:
    await repo.installment_overdue(uow.conn, canonical_loan_id(msg.loan_id), msg.installment,
                                   msg.due_date, msg.amount_due, msg.business_date)


async def on_repayment_applied(uow: UnitOfWork, msg: RepaymentApplied, env: Envelope) -> None:
    by_installment: dict[int, Decimal] = {}
    for line in msg.allocation:
        by_installment[line.installment] = by_installment.get(line.installment, ZERO) + (
            line.amount)
    await repo.repaid(uow.conn, canonical_loan_id(msg.loan_id), sorted(by_installment.items()))
    if msg.closes_loan:
        await repo.clear_loan(uow.conn, canonical_loan_id(msg.loan_id))


async def on_arrears_cured(uow: UnitOfWork, msg: LoanArrearsCured, env: Envelope) -> None:
    await repo.clear_loan(uow.conn, canonical_loan_id(msg.loan_id))


ARREARS_HANDLERS = {
    "GroupLoanActive": on_group_loan_active,
    "GroupLoanClosed": on_group_loan_closed,
    "InstallmentOverdue": on_installment_overdue,
    "RepaymentApplied": on_repayment_applied,
    "LoanArrearsCured": on_arrears_cured,
}


# -- the maker's request and the checker's decision ---------------------------------------

def _money(value: Decimal) -> str:
    return f"{value:.2f}"


async def _member(uow: UnitOfWork, who: Principal, group_id: str, loan_id: str
                  ) -> tuple[Any, Any]:
    """The member's line of the group's live group loan, and the member as savings knows
    it; 404 (naming the field) for a group, loan or member the token cannot see."""
    m = await repo.member(uow.conn, group_id, loan_id)
    if m is None:
        raise NotFound("no live group loan of this group has this loan (or savings has not"
                       " heard of it yet)", field="loan_id")
    client = await clients_repo.get(uow.conn, m["client_id"])
    if client is None or not who.can_see(client.partner_id) or not who.can_see_office(
            client.office_path):
        raise NotFound("no such group", field="group_id")
    return m, client


async def _plan(uow: UnitOfWork, member: Any, amount: Decimal, *, others: bool,
                lock: bool = False) -> list[dict[str, Any]]:
    """Who pays what: the member's compulsory accounts, then (``others``) the other
    members', each up to its available balance, until ``amount`` is covered."""
    clients = [member["client_id"]]
    if others:
        clients += [r["client_id"] for r in await repo.members(uow.conn,
                                                               member["group_loan_id"])
                    if r["client_id"] != member["client_id"]]
    candidates = await repo.compulsory_accounts(uow.conn, clients)
    if lock and candidates:
        await uow.conn.execute(
            "SELECT 1 FROM accounts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            [c["id"] for c in candidates])
        candidates = await repo.compulsory_accounts(uow.conn, clients)
    left = amount
    plan: list[dict[str, Any]] = []
    for c in candidates:
        if left <= 0:
            break
        take = min(left, c["available"])
        if take <= 0:
            continue
        plan.append({"account_id": c["id"], "client_id": c["client_id"],
                     "amount": _money(take), "own": c["client_id"] == member["client_id"]})
        left -= take
    return plan


def _total(plan: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(p["amount"]) for p in plan), ZERO)


def _not_enough(amount: Decimal, plan: list[dict[str, Any]], others: bool) -> Conflict:
    where = ("the group's compulsory savings" if others
             else "the member's own compulsory savings (the group's rule does not let other"
                  " members' savings cover arrears)")
    return Conflict(f"{where} can pay {_money(_total(plan))} MAD of the {_money(amount)} MAD"
                    " overdue", field="loan_id", overdue=_money(amount),
                    available=_money(_total(plan)))


async def _overdue(uow: UnitOfWork, loan_id: str) -> tuple[Decimal, list[dict[str, Any]]]:
    rows = await repo.overdue(uow.conn, loan_id)
    lines = [{"installment": r["installment"], "due_date": r["due_date"].isoformat(),
              "owed": _money(r["owed"]), "as_of": r["as_of"].isoformat()} for r in rows]
    return sum((r["owed"] for r in rows), ZERO), lines


async def request_cover(uow: UnitOfWork, who: Principal, group_id: str, loan_id: str
                        ) -> dict[str, Any]:
    loan = canonical_loan_id(loan_id)
    if not loan:
        raise InvalidInput("loan_id names the member's loan", field="loan_id")
    m, client = await _member(uow, who, group_id.strip(), loan)
    amount, installments = await _overdue(uow, loan)
    if amount <= 0:
        raise Conflict("nothing of this loan is overdue", field="loan_id")
    waiting = await repo.pending_for_loan(uow.conn, loan)
    if waiting is not None:
        raise Conflict("a request to cover this loan's arrears is already waiting for a"
                       " checker", field="loan_id", request_id=waiting["id"])
    others = m["cover_arrears"] is True
    plan = await _plan(uow, m, amount, others=others)
    if _total(plan) < amount:
        raise _not_enough(amount, plan, others)
    saved = await repo.insert(uow.conn, {
        "id": str(uuid.uuid4()), "group_id": m["group_id"],
        "group_loan_id": m["group_loan_id"], "loan_id": loan, "client_id": m["client_id"],
        "partner_id": client.partner_id or "", "office_id": client.office_id,
        "office_path": client.office_path, "amount": amount, "installments": installments,
        "sources": plan, "other_members_allowed": others, "requested_by": who.sub})
    if saved is None:   # another maker's request got in first
        raise Conflict("a request to cover this loan's arrears is already waiting for a"
                       " checker", field="loan_id")
    return saved


async def get(uow: UnitOfWork, who: Principal, request_id: str, *, for_update: bool = False
              ) -> dict[str, Any]:
    r = await repo.get(uow.conn, request_id.strip().lower(), for_update=for_update)
    if r is None or not who.can_see(r["partner_id"]) or not who.can_see_office(
            r["office_path"]):
        raise NotFound("no such arrears cover request", field="request_id")
    return r


def _check_decider(r: dict[str, Any], who: Principal) -> None:
    if r["status"] != "pending":
        raise Conflict(f"the request is {r['status']}, not waiting for a decision",
                       field="status")
    if who.sub == r["requested_by"]:
        raise Forbidden("maker-checker: whoever requested the cover cannot decide it",
                        field="approved_by")


async def approve(uow: UnitOfWork, who: Principal, request_id: str, *, today: dt.date
                  ) -> dict[str, Any]:
    r = await get(uow, who, request_id, for_update=True)
    _check_decider(r, who)
    m = await repo.member(uow.conn, r["group_id"], r["loan_id"])
    if m is None:
        raise Conflict("the group loan is no longer live", field="loan_id")
    owed, installments = await _overdue(uow, r["loan_id"])
    amount = min(owed, r["amount"])
    if amount <= 0:
        raise Conflict("nothing of this loan is overdue any more", field="loan_id")
    others = bool(r["other_members_allowed"]) and m["cover_arrears"] is True
    plan = await _plan(uow, m, amount, others=others, lock=True)
    if _total(plan) < amount:
        raise _not_enough(amount, plan, others)
    oldest = installments[0]
    for part in plan:
        take = Decimal(part["amount"])
        key = f"arrears_cover:{r['id']}:{part['account_id']}"
        if not await accounts_repo.add_line(
                uow.conn, part["account_id"], key=key, kind="loan_repayment", amount=-take,
                value_date=today, created_by=who.sub, channel=CHANNEL,
                reference=r["loan_id"]):
            raise AssertionError(f"{key} was already paid")   # the request was pending
        balances = await accounts_repo.move(uow.conn, part["account_id"], ledger=-take)
        part["payment_id"] = str(uuid.uuid5(COVER_NAMESPACE, key))
        MOVEMENTS.labels(CHANNEL).inc()
        uow.emit(StandingInstructionPayment(
            account_id=part["account_id"], client_id=part["client_id"],
            payment_id=part["payment_id"], loan_id=r["loan_id"],
            installment=int(oldest["installment"]),
            due_date=dt.date.fromisoformat(oldest["due_date"]), amount=take,
            amount_due=amount, ledger_balance=balances.ledger,
            available_balance=balances.available, value_date=today),
            key=part["account_id"])
    return await repo.decide(uow.conn, r["id"], status="approved", by=who.sub, reason=None,
                             sources=plan, paid=amount)


async def reject(uow: UnitOfWork, who: Principal, request_id: str, reason: str
                 ) -> dict[str, Any]:
    r = await get(uow, who, request_id, for_update=True)
    _check_decider(r, who)
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput("rejecting needs a reason", field="reason")
    return await repo.decide(uow.conn, r["id"], status="rejected", by=who.sub, reason=clean)
