"""Loans, their installments and repayments."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import asyncpg

from services.loans.domain.allocation import AllocationLine, InstallmentDue
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.domain.products import Penalty
from services.loans.domain.schedule import PlannedInstallment
from services.loans.repository import Conn

_LOAN_COLS = (
    "id, client_id, partner_id, product_id, product_version, principal, term, currency,"
    " status, submitted_by, decided_by, decision_reason, msisdn, disbursed_on, closed_on,"
    " written_off_on, principal_outstanding, days_in_arrears, arrears_bucket, arrears_as_of,"
    " version, created_at, reference, purpose, recovered_amount, max_days_in_arrears"
)


def _loan(r: asyncpg.Record | Mapping[str, Any]) -> Loan:
    return Loan(
        id=r["id"], client_id=r["client_id"], partner_id=r["partner_id"],
        product_id=r["product_id"], product_version=r["product_version"],
        principal=r["principal"], term=r["term"], currency=r["currency"],
        status=LoanStatus(r["status"]), submitted_by=r["submitted_by"],
        decided_by=r["decided_by"], decision_reason=r["decision_reason"], msisdn=r["msisdn"],
        disbursed_on=r["disbursed_on"], closed_on=r["closed_on"],
        written_off_on=r["written_off_on"], principal_outstanding=r["principal_outstanding"],
        days_in_arrears=r["days_in_arrears"], arrears_bucket=r["arrears_bucket"],
        arrears_as_of=r["arrears_as_of"], version=r["version"], submitted_at=r["created_at"],
        reference=r["reference"], purpose=r["purpose"], recovered_amount=r["recovered_amount"],
        max_days_in_arrears=r["max_days_in_arrears"],
    )


async def insert(conn: Conn, loan: Loan, penalty: Penalty | None) -> None:
    """Store a new application; ``loan.submitted_at`` becomes the stored instant."""
    loan.submitted_at = await conn.fetchval(
        "INSERT INTO loans (id, client_id, partner_id, product_id, product_version, principal,"
        " term, currency, status, submitted_by, penalty_kind, penalty_value,"
        " penalty_tolerance_days, reference, purpose)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
        " RETURNING created_at",
        loan.id, loan.client_id, loan.partner_id, loan.product_id, loan.product_version,
        loan.principal, loan.term, loan.currency, loan.status.value, loan.submitted_by,
        penalty.kind.value if penalty else None, penalty.value if penalty else None,
        penalty.tolerance_days if penalty else None, loan.reference, loan.purpose,
    )


async def get(conn: Conn, loan_id: str, *, for_update: bool = False
              ) -> Loan | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_LOAN_COLS} FROM loans WHERE id = $1{lock}", loan_id)
    return None if row is None else _loan(row)


def loans_save_sql(loan: Loan, arg: Callable[[Any], str]) -> str:
    """``save``'s UPDATE, its parameters numbered by ``arg`` (for a statement that writes
    the loan beside other rows): RETURNING the new version, no row if it changed."""
    return (
        f"UPDATE loans SET status = {arg(loan.status.value)}, decided_by = {arg(loan.decided_by)},"
        f" decision_reason = {arg(loan.decision_reason)}, msisdn = {arg(loan.msisdn)},"
        f" disbursed_on = {arg(loan.disbursed_on)}, closed_on = {arg(loan.closed_on)},"
        f" written_off_on = {arg(loan.written_off_on)},"
        f" principal_outstanding = {arg(loan.principal_outstanding)},"
        f" days_in_arrears = {arg(loan.days_in_arrears)},"
        f" arrears_bucket = {arg(loan.arrears_bucket)},"
        f" recovered_amount = {arg(loan.recovered_amount)}, version = version + 1,"
        f" updated_at = now() WHERE id = {arg(loan.id)} AND version = {arg(loan.version)}"
        " RETURNING version")


async def save(conn: Conn, loan: Loan) -> None:
    """Write the aggregate's mutable state; the version bump orders its events."""
    done = await conn.fetchval(
        "UPDATE loans SET status = $2, decided_by = $3, decision_reason = $4, msisdn = $5,"
        " disbursed_on = $6, closed_on = $7, written_off_on = $8, principal_outstanding = $9,"
        " days_in_arrears = $10, arrears_bucket = $11, recovered_amount = $13,"
        " version = version + 1,"
        " updated_at = now() WHERE id = $1 AND version = $12 RETURNING version",
        loan.id, loan.status.value, loan.decided_by, loan.decision_reason, loan.msisdn,
        loan.disbursed_on, loan.closed_on, loan.written_off_on, loan.principal_outstanding,
        loan.days_in_arrears, loan.arrears_bucket, loan.version, loan.recovered_amount,
    )
    if done is None:
        raise RuntimeError(f"loan {loan.id} changed concurrently (version {loan.version})")
    loan.version = done


class LoanOrder(StrEnum):
    ID = "id"
    """By id (the default; ``after`` takes the last id of a page)."""
    SUBMITTED = "submitted"
    """Oldest application first: (submitted_at, id)."""


@dataclass(frozen=True)
class LoanPageRows:
    items: list[Loan]
    more: bool
    """Another row follows the last one."""


async def list_loans(
    conn: Conn, *, partner_id: str | None, client_id: str | None,
    status: str | None, limit: int, after: str | None,
    order: LoanOrder = LoanOrder.ID, after_submitted: datetime | None = None,
    office_path: str | None = None,
) -> LoanPageRows:
    """One page; ``after`` is the last id seen (with ``after_submitted``, its submission
    instant, in ``submitted`` order). One row more than asked tells whether a page follows."""
    if order is LoanOrder.ID:
        keyset, sort = "($4::text IS NULL OR id > $4)", "id"
    else:
        keyset = "($4::text IS NULL OR (created_at, id) > ($6::timestamptz, $4))"
        sort = "created_at, id"
    rows = await conn.fetch(
        f"SELECT {_LOAN_COLS} FROM loans WHERE ($1::text IS NULL OR partner_id = $1)"
        " AND ($2::text IS NULL OR client_id = $2) AND ($3::text IS NULL OR status = $3)"
        f" AND {keyset} AND {_office_scope(7 if order is LoanOrder.SUBMITTED else 6)}"
        f" ORDER BY {sort} LIMIT $5",
        partner_id, client_id, status, after, limit + 1,
        *((after_submitted,) if order is LoanOrder.SUBMITTED else ()), office_path)
    return LoanPageRows([_loan(r) for r in rows[:limit]], len(rows) > limit)


def _office_scope(n: int) -> str:
    """``office_path`` is the office path ``$n``, or below it (NULL: every office)."""
    return f"(${n}::text IS NULL OR office_path = ${n} OR starts_with(office_path, ${n} || '/'))"


# -- installments -------------------------------------------------------------------
@dataclass(frozen=True)
class Installment:
    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal
    penalties_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fees_paid: Decimal
    penalties_paid: Decimal
    status: str
    paid_on: date | None

    @property
    def total(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fees_due + self.penalties_due

    @property
    def paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fees_paid + self.penalties_paid

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.paid

    def owed(self) -> InstallmentDue:
        return InstallmentDue(
            number=self.number, due_date=self.due_date,
            principal=self.principal_due - self.principal_paid,
            interest=self.interest_due - self.interest_paid,
            fees=self.fees_due - self.fees_paid,
            penalties=self.penalties_due - self.penalties_paid,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "due_date": self.due_date.isoformat(),
            "principal": str(self.principal_due), "interest": str(self.interest_due),
            "fees": str(self.fees_due), "penalties": str(self.penalties_due),
            "total": str(self.total), "paid": str(self.paid),
            "outstanding": str(self.outstanding), "status": self.status,
            "paid_on": self.paid_on.isoformat() if self.paid_on else None,
        }


_INST_COLS = (
    "number, due_date, principal_due, interest_due, fees_due, penalties_due, principal_paid,"
    " interest_paid, fees_paid, penalties_paid, status, paid_on"
)


async def insert_schedule(conn: Conn, loan_id: str,
                          schedule: Sequence[PlannedInstallment]) -> None:
    await conn.executemany(
        "INSERT INTO installments (loan_id, number, due_date, principal_due, interest_due,"
        " fees_due) VALUES ($1, $2, $3, $4, $5, $6)",
        [(loan_id, p.number, p.due_date, p.principal, p.interest, p.fees) for p in schedule])


async def installments(conn: Conn, loan_id: str) -> list[Installment]:
    rows = await conn.fetch(
        f"SELECT {_INST_COLS} FROM installments WHERE loan_id = $1 ORDER BY number", loan_id)
    return [Installment(**dict(r)) for r in rows]


async def installments_for(conn: Conn, loan_ids: Sequence[str]) -> dict[str, list[Installment]]:
    """The installments of several loans in one query (list views)."""
    rows = await conn.fetch(
        f"SELECT loan_id, {_INST_COLS} FROM installments WHERE loan_id = ANY($1::text[])"
        " ORDER BY loan_id, number", list(loan_ids))
    out: dict[str, list[Installment]] = {loan_id: [] for loan_id in loan_ids}
    for r in rows:
        values = dict(r)
        out[values.pop("loan_id")].append(Installment(**values))
    return out


_I_COLS = ", ".join(f"i.{c.strip()}" for c in _INST_COLS.split(","))


async def installments_with_calendar(conn: Conn, loan_id: str, start: date, end: date
                                     ) -> tuple[list[Installment], frozenset[int],
                                                frozenset[date]]:
    """A loan's installments, the working weekdays and the holidays from ``start`` to
    ``end``, in one round trip (the calendar rides on the first row)."""
    rows = await conn.fetch(
        "SELECT CASE WHEN row_number() OVER (ORDER BY i.number) = 1 THEN"
        " (SELECT coalesce(array_agg(weekday), '{}') FROM working_days WHERE working) END"
        " AS cal_weekdays,"
        " CASE WHEN row_number() OVER (ORDER BY i.number) = 1 THEN"
        " (SELECT coalesce(array_agg(day), '{}') FROM holidays WHERE day BETWEEN $2 AND $3)"
        f" END AS cal_holidays, {_I_COLS}"
        " FROM (SELECT 1) AS one LEFT JOIN installments i ON i.loan_id = $1"
        " ORDER BY i.number", loan_id, start, end)
    first = rows[0]
    items = [Installment(**{k: r[k] for k in r.keys() if not k.startswith("cal_")})
             for r in rows if r["number"] is not None]
    return items, frozenset(first["cal_weekdays"]), frozenset(first["cal_holidays"])


def planned(items: Sequence[Installment]) -> list[PlannedInstallment]:
    return [PlannedInstallment(i.number, i.due_date, i.principal_due, i.interest_due, i.fees_due)
            for i in items]


async def set_due_dates(conn: Conn, loan_id: str,
                        schedule: Sequence[PlannedInstallment]) -> None:
    await conn.execute(
        "UPDATE installments i SET due_date = d.due_date FROM unnest($2::int[], $3::date[])"
        " AS d(number, due_date) WHERE i.loan_id = $1 AND i.number = d.number",
        loan_id, [p.number for p in schedule], [p.due_date for p in schedule])


async def write_off_installments(conn: Conn, loan_id: str) -> None:
    await conn.execute(
        "UPDATE installments SET status = 'written_off' WHERE loan_id = $1"
        " AND is_open", loan_id)


# -- repayments -----------------------------------------------------------------------
async def repayment_seen(conn: Conn, payment_id: str) -> str | None:
    outcome: str | None = await conn.fetchval(
        "SELECT outcome FROM repayments WHERE payment_id = $1", payment_id)
    return outcome


async def record_repayment(
    conn: Conn, *, payment_id: str, loan_id: str, amount: Decimal,
    outcome: str, reason: str | None, lines: Sequence[AllocationLine], received_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO repayments (payment_id, loan_id, amount, outcome, reason, allocation,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        payment_id, loan_id, amount, outcome, reason,
        [{"installment": x.installment, "component": x.component, "amount": str(x.amount)}
         for x in lines], received_at)


async def repayments(conn: Conn, loan_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT payment_id, amount, outcome, reason, allocation, received_at FROM repayments"
        " WHERE loan_id = $1 ORDER BY received_at, payment_id", loan_id)
    return [{"payment_id": r["payment_id"], "amount": str(r["amount"]),
             "outcome": r["outcome"], "reason": r["reason"], "allocation": r["allocation"],
             "received_at": r["received_at"].isoformat()} for r in rows]
