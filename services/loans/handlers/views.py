"""How a loan is shown: status, outstanding by component, arrears, next due, schedule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.loans.domain.loan import Loan, LoanStatus, allowed_actions
from services.loans.repository.loans import Installment

ZERO = Decimal("0.00")
OPEN = ("pending", "overdue")
# Only a disbursed loan owes anything; before that its schedule is a proposal.
OWING = (LoanStatus.ACTIVE, LoanStatus.CLOSED, LoanStatus.WRITTEN_OFF)


def outstanding(items: list[Installment]) -> dict[str, Decimal]:
    open_items = [i for i in items if i.status in OPEN]
    parts = {
        "principal": sum((i.principal_due - i.principal_paid for i in open_items), ZERO),
        "interest": sum((i.interest_due - i.interest_paid for i in open_items), ZERO),
        "fees": sum((i.fees_due - i.fees_paid for i in open_items), ZERO),
        "penalties": sum((i.penalties_due - i.penalties_paid for i in open_items), ZERO),
    }
    parts["total"] = sum(parts.values(), ZERO)
    return parts


def next_due(items: list[Installment]) -> Installment | None:
    open_items = [i for i in items if i.status in OPEN and i.outstanding > 0]
    return min(open_items, key=lambda i: (i.due_date, i.number)) if open_items else None


def loan_json(loan: Loan, items: list[Installment], *, with_schedule: bool = False,
              servicing: dict[str, Any] | None = None) -> dict[str, Any]:
    """``servicing``: the loan's TEG, cost of credit, schedule version and restructured
    marker (``repository.schedules.servicing``), shown when given."""
    owing = items if loan.status in OWING else []
    nxt = next_due(owing)
    owed = outstanding(owing)
    if loan.status is LoanStatus.DISBURSING and loan.principal_outstanding > 0:
        # a member paid out in a group that failed: no schedule runs, the paid-out
        # principal is owed until its recovery is recorded (payments' recovery request)
        owed = {**owed, "principal": loan.principal_outstanding,
                "total": loan.principal_outstanding}
    body: dict[str, Any] = {
        "id": loan.id, "client_id": loan.client_id, "partner_id": loan.partner_id,
        "product_id": loan.product_id, "product_version": loan.product_version,
        "status": loan.status.value, "principal": str(loan.principal), "term": loan.term,
        "currency": loan.currency, "submitted_by": loan.submitted_by,
        "submitted_at": loan.submitted_at.isoformat() if loan.submitted_at else None,
        "decided_by": loan.decided_by, "decision_reason": loan.decision_reason,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "closed_on": loan.closed_on.isoformat() if loan.closed_on else None,
        "written_off_on": loan.written_off_on.isoformat() if loan.written_off_on else None,
        "outstanding": {k: str(v) for k, v in owed.items()},
        "days_in_arrears": loan.days_in_arrears, "arrears_bucket": loan.arrears_bucket,
        "next_due": None if nxt is None else {
            "installment": nxt.number, "due_date": nxt.due_date.isoformat(),
            "amount": str(nxt.outstanding)},
        "allowed_actions": allowed_actions(loan.status),
        "reference": loan.reference, "purpose": loan.purpose,
        "recovered_amount": str(loan.recovered_amount),
        "max_days_in_arrears": loan.max_days_in_arrears,
    }
    if servicing is not None:
        body.update(servicing)
    if with_schedule:
        body["schedule"] = [i.to_json() for i in items]
        body["total_repayable"] = str(sum((i.total for i in items), ZERO))
    return body
