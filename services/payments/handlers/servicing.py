"""What loan servicing changes in the ledger: an early settlement's waived interest, the
interest a restructuring capitalises, late charges waived — each once per event
(the ledger's transfer id and ``loan_servicing_memos``).

- ``LoanSettledEarly``: under accrual basis, the interest receivable the settling
  payment leaves behind (recognised, never to be earned) is reversed: Dr interest
  waived (7115, contra-income) / Cr interest receivable. Under cash basis nothing was
  recognised: the waiver is a memo only.
- ``LoanScheduleRebuilt`` with ``capitalised_interest``: Dr portfolio / Cr interest
  receivable (what was accrued), the rest Cr the loan's capitalised-interest reserve
  (2175): payments' portfolio of the loan follows loans' outstanding principal.
- ``LateChargesWaived``: penalties are income when paid under either basis (payments
  keeps no penalty receivable), so a waiver reverses nothing: a memo.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from services.payments.domain import accounts as acc
from services.payments.domain import servicing as rules
from services.payments.repository import gl as gl_repo
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import servicing as repo
from shared.contracts.loans import LateChargesWaived, LoanScheduleRebuilt, LoanSettledEarly
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.servicing")

ZERO = Decimal("0.00")


async def on_loan_settled_early(uow: UnitOfWork, msg: LoanSettledEarly, env: Envelope
                                ) -> None:
    conn = uow.conn
    if await repo.memo_exists(conn, "interest_waived", msg.payment_id):
        return
    basis = str((await gl_repo.settings(conn))["accounting_basis"])
    booked = ZERO
    transfer_id: str | None = None
    if basis == "accrual":
        receivable = await ledger_repo.balance(conn, acc.interest_receivable(msg.loan_id))
        posted = await ledger_repo.entry_exists(conn, f"repayment:{msg.payment_id}")
        booked = rules.waiver_to_book(receivable, msg.interest_paid, posted)
        if booked > 0:
            entry = rules.interest_waiver(msg.loan_id, msg.payment_id, booked,
                                          day=msg.settled_on)
            await ledger_repo.post(conn, entry)
            transfer_id = entry.transfer_id
        if booked > msg.interest_waived:
            log.warning("loan %s: %s of accrued interest reversed on early settlement, "
                        "more than the %s loans waived", msg.loan_id, booked,
                        msg.interest_waived)
    await repo.record_memo(
        conn, kind="interest_waived", source_id=msg.payment_id, loan_id=msg.loan_id,
        amount=msg.interest_waived, booked=booked, basis=basis,
        business_date=msg.settled_on, transfer_id=transfer_id,
        detail={"fees_waived": str(msg.fees_waived), "payoff_amount": str(msg.payoff_amount),
                "interest_paid": str(msg.interest_paid), "excess": str(msg.excess)})


async def on_loan_schedule_rebuilt(uow: UnitOfWork, msg: LoanScheduleRebuilt,
                                   env: Envelope) -> None:
    conn = uow.conn
    amount = msg.capitalised_interest
    if amount <= 0:
        return
    source = f"{msg.loan_id}:v{msg.schedule_version}"
    if await repo.memo_exists(conn, "interest_capitalised", source):
        return
    basis = str((await gl_repo.settings(conn))["accounting_basis"])
    receivable = await ledger_repo.balance(conn, acc.interest_receivable(msg.loan_id))
    done = rules.capitalisation(msg.loan_id, msg.schedule_version, amount, receivable,
                                day=msg.business_date)
    await ledger_repo.post(conn, done.entry)
    portfolio = await ledger_repo.balance(conn, acc.portfolio(msg.loan_id))
    if portfolio != msg.outstanding_principal:
        log.warning("loan %s after restructuring v%s: portfolio %s, loans' outstanding "
                    "principal %s", msg.loan_id, msg.schedule_version, portfolio,
                    msg.outstanding_principal)
    await repo.record_memo(
        conn, kind="interest_capitalised", source_id=source, loan_id=msg.loan_id,
        amount=amount, booked=amount, basis=basis, business_date=msg.business_date,
        transfer_id=done.entry.transfer_id,
        detail={"from_receivable": str(done.from_receivable),
                "reserved": str(done.reserved), "reason": msg.reason,
                "outstanding_principal": str(msg.outstanding_principal),
                "portfolio_after": str(portfolio), "request_id": msg.request_id,
                "approved_by": msg.approved_by})


async def on_late_charges_waived(uow: UnitOfWork, msg: LateChargesWaived, env: Envelope
                                 ) -> None:
    conn = uow.conn
    basis = str((await gl_repo.settings(conn))["accounting_basis"])
    await repo.record_memo(
        conn, kind="late_charges_waived", source_id=msg.request_id, loan_id=msg.loan_id,
        amount=msg.amount, booked=ZERO, basis=basis, business_date=None, transfer_id=None,
        detail={"installments": msg.installments, "proposed_by": msg.proposed_by,
                "approved_by": msg.approved_by, "reason": msg.reason})


def servicing_handlers() -> dict[str, Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]]:
    return {
        "LoanSettledEarly": on_loan_settled_early,
        "LoanScheduleRebuilt": on_loan_schedule_rebuilt,
        "LateChargesWaived": on_late_charges_waived,
    }
