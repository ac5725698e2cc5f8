"""Close of business in the ledger: the day's interest accruals (accrual basis), the
non-accrual reversals, and the loan-loss provisions — set-based, idempotent per date
and loan; and the accounting side of repayments and write-offs (receivable settled,
allowance consumed, recoveries)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.payments.domain import accounts as acc
from services.payments.domain import accruals, postings, provisioning
from services.payments.domain.ledger import ZERO, Entry
from services.payments.repository import Conn
from services.payments.repository import accruals as accruals_repo
from services.payments.repository import closing as closing_repo
from services.payments.repository import gl as gl_repo
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import offices as offices_repo
from shared.contracts.loans import LoanSubmitted
from shared.envelope import Envelope
from shared.errors import Conflict
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.accounting")


@dataclass(frozen=True)
class LoanDay:
    """One loan's figures for a business date."""

    loan_id: str
    interest: Decimal
    days_in_arrears: int
    product_id: str | None = None
    office_id: str | None = None
    restructured: bool = False
    fees_due: Decimal = ZERO  # fees of an installment falling due that day (accrual basis)


class CashBasis(Conflict):
    code = "cash_basis"


async def run_accruals(conn: Conn, day: dt.date, loans: Sequence[LoanDay], *,
                       batch: int = 0, source: str = "api") -> dict[str, Any]:
    """Post the day's accruals once per (date, batch): Dr interest receivable / Cr
    interest income per accruing loan; the fees of an installment falling due that day
    Dr fees receivable / Cr fee income (fees are earned when due, not day by day); loans
    reaching the non-accrual threshold have their receivables reversed and accrue
    nothing until back under it.

    Batches are posted concurrently (a night's staged batches by the accrual workers,
    ``handlers.accrual_batches``, on every replica): a batch posted again while another
    connection holds it waits for that transaction and then finds its run; every row a
    batch locks or inserts per loan is taken in loan id order, and the ledger locks
    accounts in id order, so two batches sharing loans wait on each other but never
    deadlock; a loan's accrual for the date is written once whichever batch carries it
    (``loan_accruals``)."""
    setting = await gl_repo.settings(conn)
    if setting["accounting_basis"] != "accrual":
        raise CashBasis("the institution keeps its books on a cash basis: interest is "
                        "income when paid, nothing is accrued", field="accounting_basis")
    await accruals_repo.hold_batch(conn, day, batch)
    previous = await closing_repo.accrual_run(conn, day, batch)
    if previous is not None:
        return {**dict(previous), "created": False}
    loans = sorted(loans, key=lambda ln: ln.loan_id)
    ids = [ln.loan_id for ln in loans]
    await gl_repo.remember_loans(conn, ids, [ln.product_id for ln in loans],
                                 [ln.office_id for ln in loans])
    threshold = setting["non_accrual_days"]
    stopped = await gl_repo.non_accrual_loans(conn, ids)
    # only a loan entering non-accrual today has its receivable read (and reversed)
    entering = [ln.loan_id for ln in loans
                if ln.days_in_arrears >= threshold and ln.loan_id not in stopped]
    held = await gl_repo.balances(conn, [a for i in entering for a in (
        acc.interest_receivable(i), acc.fee_receivable(i))])
    receivable = {i: held.get(acc.interest_receivable(i), ZERO) for i in entering}
    plan = accruals.plan(
        [accruals.LoanAccrual(ln.loan_id, ln.interest, ln.days_in_arrears) for ln in loans],
        threshold, stopped, receivable)
    # the reversals first (few loans, one entry each), then the day's accruals set-based:
    # one aggregated income line per (office, income GL account)
    await gl_repo.post_many(conn, [postings.interest_reversal(loan, day, amount)
                                   for loan, amount in plan.reverse])
    fees_reversed = [(i, held[acc.fee_receivable(i)]) for i in plan.stop
                     if held.get(acc.fee_receivable(i), ZERO) > 0]
    fees = [(ln.loan_id, ln.fees_due) for ln in loans
            if ln.fees_due > 0 and ln.days_in_arrears < threshold]
    await gl_repo.post_many(conn, [postings.fee_reversal(loan, day, amount)
                                   for loan, amount in fees_reversed]
                            + [postings.fee_accrual(loan, day, amount) for loan, amount in fees])
    await accruals_repo.post_day(conn, day, batch, [a.loan_id for a in plan.accrue],
                                 [a.amount for a in plan.accrue])
    await gl_repo.set_non_accrual(conn, plan.stop, day)
    await gl_repo.set_non_accrual(conn, plan.resume, None)
    log.info("accruals %s batch %s: %d loan(s) accrued, %d entering non-accrual, %d with "
             "fees due", day, batch, len(plan.accrue), len(plan.stop), len(fees))
    row = await closing_repo.record_accrual_run(
        conn, day, batch, loans=len(plan.accrue),
        accrued=sum((a.amount for a in plan.accrue), ZERO),
        reversed_=sum((amount for _, amount in plan.reverse), ZERO)
        + sum((amount for _, amount in fees_reversed), ZERO),
        non_accrual=len(plan.stop), source=source)
    return {**dict(row), "fees_accrued": sum((amount for _, amount in fees), ZERO),
            "created": True}


async def run_provisions(conn: Conn, day: dt.date, loans: Sequence[LoanDay], *,
                         batch: int = 0, source: str = "api") -> dict[str, Any]:
    """Post each loan's change of provision once per (date, batch): required =
    outstanding principal times the rate of its arrears bucket; the change against its
    allowance is charged or written back. A loan whose principal is gone (repaid) has
    its allowance written back too."""
    previous = await closing_repo.provision_run(conn, day, batch)
    if previous is not None:
        return {**dict(previous), "created": False}
    later = await closing_repo.last_provision_date(conn)
    if later is not None and later > day:
        raise Conflict(f"provisions were already run for {later}; a provision run goes "
                       "forward in time", field="date")
    rates = await closing_repo.rates(conn)
    ids = [ln.loan_id for ln in loans]
    await gl_repo.remember_loans(conn, ids, [ln.product_id for ln in loans],
                                 [ln.office_id for ln in loans])
    held = await gl_repo.balances(
        conn, [acc.portfolio(i) for i in ids] + [acc.allowance(i) for i in ids])
    entries: list[Entry] = []
    rows: list[tuple[Any, ...]] = []
    total_required = charged = released = ZERO
    for ln in loans:
        principal = held.get(acc.portfolio(ln.loan_id), ZERO)
        rate = provisioning.rate_for(rates, ln.days_in_arrears, ln.restructured)
        need = provisioning.required(principal, rate.rate)
        delta = provisioning.change(need, held.get(acc.allowance(ln.loan_id), ZERO))
        total_required += need
        if delta:
            entries.append(postings.provision(ln.loan_id, day, delta))
            charged += max(delta, ZERO)
            released += max(-delta, ZERO)
        rows.append((ln.loan_id, day, ln.days_in_arrears, ln.restructured, rate.bucket,
                     rate.rate, principal, need))
    # allowances left on loans with no principal (repaid or written off elsewhere)
    for loan_id, amount in await closing_repo.orphan_allowances(conn, ids):
        entries.append(postings.provision(loan_id, day, -amount))
        released += amount
    await gl_repo.post_many(conn, entries)
    await closing_repo.record_provisions(conn, rows)
    row = await closing_repo.record_provision_run(
        conn, day, batch, loans=len(loans), required=total_required, charged=charged,
        released=released, source=source)
    return {**dict(row), "created": True}


# -- repayments and write-offs -----------------------------------------------------------


async def repayment_entry(conn: Conn, payment_id: str, loan_id: str, amount: Decimal,
                          parts: dict[str, Decimal]) -> Entry:
    """The entry moving an allocated repayment out of suspense: interest settles what was
    accrued first; on a written-off loan everything is a recovery."""
    if await ledger_repo.entry_exists(conn, f"write_off:{loan_id}"):
        return postings.recovery(payment_id, loan_id, amount)
    held = await gl_repo.balances(conn, [acc.interest_receivable(loan_id),
                                         acc.fee_receivable(loan_id),
                                         acc.capitalised_interest(loan_id),
                                         acc.portfolio(loan_id)])
    release = postings.reserve_release(held.get(acc.capitalised_interest(loan_id), ZERO),
                                       parts.get("principal", ZERO),
                                       held.get(acc.portfolio(loan_id), ZERO))
    return postings.repayment(payment_id, loan_id, amount, parts,
                              receivable=held.get(acc.interest_receivable(loan_id), ZERO),
                              reserve_released=release,
                              fees_receivable=held.get(acc.fee_receivable(loan_id), ZERO))


async def write_off_entry(conn: Conn, loan_id: str, principal: Decimal) -> Entry:
    """The write-off: the loan's capitalised-interest reserve and then its allowance
    are consumed, its accrued interest reversed."""
    held = await gl_repo.balances(conn, [acc.allowance(loan_id),
                                         acc.interest_receivable(loan_id),
                                         acc.fee_receivable(loan_id),
                                         acc.capitalised_interest(loan_id)])
    return postings.write_off(loan_id, principal,
                              allowance=held.get(acc.allowance(loan_id), ZERO),
                              receivable=held.get(acc.interest_receivable(loan_id), ZERO),
                              reserve=held.get(acc.capitalised_interest(loan_id), ZERO),
                              fees_receivable=held.get(acc.fee_receivable(loan_id), ZERO))


async def on_loan_submitted(uow: UnitOfWork, msg: LoanSubmitted, env: Envelope) -> None:
    """Remember the loan's product (its postings follow that product's rules), its client
    (whose office its lines are booked to until loans names the loan's own) and its
    office when loans gives it."""
    office = getattr(msg, "office_id", None)
    await gl_repo.remember_loans(uow.conn, [msg.loan_id], [msg.product_id],
                                 [office if isinstance(office, str) and office else None])
    if msg.client_id:
        await offices_repo.remember_loan_client(uow.conn, msg.loan_id, msg.client_id)
