"""The statements of a repayment's allocation, merged: four round trips instead of ten.

``on_repayment_received`` runs for every repayment saga; these are the reads and writes
of ``loans.get`` / ``products.get`` / ``repayment_seen`` / ``installments`` /
``record_repayment`` / ``save``, plus adding the allocation to the installments and
re-ageing the loan's arrears, in fewer round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from services.loans.domain.allocation import AllocationLine
from services.loans.domain.loan import Loan
from services.loans.domain.products import ProductTerms
from services.loans.repository import Conn, products
from services.loans.repository.loans import _INST_COLS, _LOAN_COLS, Installment, _loan
from shared.db import opaque_array

ZERO = Decimal("0.00")
OPEN = ("pending", "overdue")
_COMPONENTS = ("principal", "interest", "fees", "penalties")
_L_COLS = ", ".join(f"l.{c.strip()}" for c in _LOAN_COLS.split(","))
_I_COLS = ", ".join(f"i.{c.strip()}" for c in _INST_COLS.split(","))


async def lock_with_terms(conn: Conn, loan_id: str
                          ) -> tuple[Loan, ProductTerms | None] | None:
    """The loan, row-locked, with its product version's terms (immutable) in one read:
    the version's stamp comes with the loan and the terms from the process's cache
    (``products.version_terms``; read once per version)."""
    row = await conn.fetchrow(
        f"SELECT {_L_COLS}, p.created_at AS product_stamp FROM loans l LEFT JOIN products p"
        " ON p.id = l.product_id AND p.version = l.product_version"
        " WHERE l.id = $1 FOR UPDATE OF l", loan_id)
    if row is None:
        return None
    loan, stamp = _loan(row), row["product_stamp"]
    if stamp is None:   # no such product version
        return loan, None
    return loan, await products.version_terms(conn, loan.product_id, loan.product_version,
                                              stamp)


async def seen_and_installments(conn: Conn, loan_id: str, payment_id: str
                                ) -> tuple[str | None, list[Installment]]:
    """What this payment already did (if anything) and the loan's installments.

    Run after the loan's row lock is held: the statement's snapshot then sees a
    repayment committed by whoever held the lock before.
    """
    rows = await conn.fetch(
        "SELECT (SELECT outcome FROM repayments WHERE payment_id = $2) AS seen_outcome,"
        f" {_I_COLS} FROM (SELECT 1) AS one LEFT JOIN installments i ON i.loan_id = $1"
        " ORDER BY i.number", loan_id, payment_id)
    seen: str | None = rows[0]["seen_outcome"] if rows else None
    items = [Installment(**{k: r[k] for k in r.keys() if k != "seen_outcome"})
             for r in rows if r["number"] is not None]
    return seen, items


def _settled(i: Installment) -> bool:
    return (i.status in OPEN and i.principal_paid >= i.principal_due
            and i.interest_paid >= i.interest_due and i.fees_paid >= i.fees_due
            and i.penalties_paid >= i.penalties_due)


async def apply_payment(conn: Conn, loan_id: str, items: Sequence[Installment],
                        lines: Sequence[AllocationLine], paid_on: date) -> list[Installment]:
    """Add the allocated amounts and mark the fully paid open installments, in one UPDATE.

    Returns every installment as it now is (the updated rows as the database wrote
    them, the others as read), so nothing is read again.
    """
    sums: dict[int, dict[str, Decimal]] = {}
    for line in lines:
        parts = sums.setdefault(line.installment, dict.fromkeys(_COMPONENTS, ZERO))
        parts[line.component] += line.amount
    for i in items:  # an open installment already settled is marked paid too
        if i.number not in sums and _settled(i):
            sums[i.number] = dict.fromkeys(_COMPONENTS, ZERO)
    if not sums:
        return list(items)
    numbers = sorted(sums)
    settled = (
        "i.is_open AND i.principal_paid + a.p >= i.principal_due"
        " AND i.interest_paid + a.i >= i.interest_due AND i.fees_paid + a.f >= i.fees_due"
        " AND i.penalties_paid + a.n >= i.penalties_due")
    rows = await conn.fetch(
        "UPDATE installments i SET principal_paid = i.principal_paid + a.p,"
        " interest_paid = i.interest_paid + a.i, fees_paid = i.fees_paid + a.f,"
        " penalties_paid = i.penalties_paid + a.n,"
        f" status = CASE WHEN {settled} THEN 'paid' ELSE i.status END,"
        f" paid_on = CASE WHEN {settled} THEN $7 ELSE i.paid_on END"
        # (the numbers through opaque_array: planned once per connection, not per repayment)
        f" FROM unnest({opaque_array('$2::int[]')}, $3::numeric[], $4::numeric[],"
        " $5::numeric[], $6::numeric[])"
        " AS a(number, p, i, f, n) WHERE i.loan_id = $1 AND i.number = a.number"
        f" RETURNING {_I_COLS}",
        loan_id, numbers, [sums[n]["principal"] for n in numbers],
        [sums[n]["interest"] for n in numbers], [sums[n]["fees"] for n in numbers],
        [sums[n]["penalties"] for n in numbers], paid_on)
    updated = {r["number"]: Installment(**dict(r)) for r in rows}
    return [updated.get(i.number, i) for i in items]


async def record_and_save(
    conn: Conn, loan: Loan, *, payment_id: str, amount: Decimal,
    lines: Sequence[AllocationLine], received_at: datetime,
) -> None:
    """Record the applied repayment and save the loan with its arrears, in one statement.

    The arrears are re-aged as of the last close of business (``cob.py`` ages the
    same buckets every night), from what is still overdue after this payment (the installments were
    updated by an earlier statement of this transaction, so this one sees them).
    The version bump orders the loan's events, as ``loans.save``.
    """
    row = await conn.fetchrow(
        "WITH rep AS (INSERT INTO repayments (payment_id, loan_id, amount, outcome, reason,"
        " allocation, received_at) VALUES ($11, $1, $12, 'applied', NULL, $13, $14))"
        " UPDATE loans l SET status = $2, decided_by = $3, decision_reason = $4, msisdn = $5,"
        " disbursed_on = $6, closed_on = $7, written_off_on = $8, principal_outstanding = $9,"
        " days_in_arrears = COALESCE(o.asof - o.oldest, 0),"
        " arrears_bucket = CASE WHEN o.oldest IS NULL OR o.asof IS NULL THEN 'current'"
        "  WHEN o.asof - o.oldest <= 30 THEN '1-30'"
        "  WHEN o.asof - o.oldest <= 60 THEN '31-60'"
        "  WHEN o.asof - o.oldest <= 90 THEN '61-90' ELSE '90+' END,"
        " version = l.version + 1, updated_at = now()"
        " FROM (SELECT (SELECT min(due_date) FROM installments"
        "               WHERE loan_id = $1 AND is_open AND status = 'overdue') AS oldest,"
        "              (SELECT max(business_date) FROM cob_runs) AS asof) o"
        " WHERE l.id = $1 AND l.version = $10"
        " RETURNING l.version, l.days_in_arrears, l.arrears_bucket",
        loan.id, loan.status.value, loan.decided_by, loan.decision_reason, loan.msisdn,
        loan.disbursed_on, loan.closed_on, loan.written_off_on, loan.principal_outstanding,
        loan.version, payment_id, amount,
        [{"installment": x.installment, "component": x.component, "amount": str(x.amount)}
         for x in lines], received_at,
    )
    if row is None:
        raise RuntimeError(f"loan {loan.id} changed concurrently (version {loan.version})")
    loan.version = row["version"]
    loan.days_in_arrears = row["days_in_arrears"]
    loan.arrears_bucket = row["arrears_bucket"]
