"""The loan lifecycle: what each status allows, maker-checker, write-off threshold."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.loans.domain.loan import TRANSITIONS, Loan, LoanStatus, allowed_actions
from shared.errors import Conflict, Forbidden

EXPECTED = {
    LoanStatus.SUBMITTED: {"approve": "approved", "reject": "rejected",
                           "withdraw": "withdrawn"},
    LoanStatus.APPROVED: {"credit_rejected": "rejected", "start_disbursing": "disbursing",
                          "fail_disbursement": "disbursement_failed"},
    LoanStatus.DISBURSING: {"activate": "active", "fail_disbursement": "disbursement_failed"},
    LoanStatus.ACTIVE: {"close": "closed", "write_off": "written_off"},
    LoanStatus.CLOSED: {}, LoanStatus.REJECTED: {}, LoanStatus.WITHDRAWN: {},
    LoanStatus.DISBURSEMENT_FAILED: {}, LoanStatus.WRITTEN_OFF: {},
}


def loan(status: LoanStatus, **kw: object) -> Loan:
    return Loan(id="l1", client_id="c1", partner_id="p1", product_id="prd", product_version=1,
                principal=Decimal("1000.00"), term=6, status=status, submitted_by="maker",
                **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", list(LoanStatus))
@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_every_action_from_every_status(status: LoanStatus, action: str) -> None:
    subject = loan(status)
    target = EXPECTED[status].get(action)
    if target is None:
        with pytest.raises(Conflict) as refused:
            subject.transition(action)
        assert refused.value.extra["status_now"] == status.value
        assert subject.status is status
    else:
        subject.transition(action)
        assert subject.status.value == target


def test_allowed_actions_lists_the_table() -> None:
    for status, moves in EXPECTED.items():
        assert set(allowed_actions(status)) == set(moves)


def test_maker_cannot_approve_their_own_application() -> None:
    subject = loan(LoanStatus.SUBMITTED)
    with pytest.raises(Forbidden):
        subject.approve("maker")
    assert subject.status is LoanStatus.SUBMITTED
    subject.approve("checker")
    assert subject.status is LoanStatus.APPROVED and subject.decided_by == "checker"


def test_activation_sets_the_outstanding_principal_and_close_clears_arrears() -> None:
    subject = loan(LoanStatus.DISBURSING)
    subject.activate(date(2026, 3, 1))
    assert subject.principal_outstanding == Decimal("1000.00")
    subject.days_in_arrears, subject.arrears_bucket = 12, "1-30"
    subject.close(date(2026, 9, 1))
    assert (subject.principal_outstanding, subject.days_in_arrears, subject.arrears_bucket) == (
        Decimal("0.00"), 0, "current")


def test_write_off_waits_for_the_configured_days_in_arrears() -> None:
    subject = loan(LoanStatus.ACTIVE, days_in_arrears=179,
                   principal_outstanding=Decimal("400.00"))
    with pytest.raises(Conflict):
        subject.write_off("op", date(2026, 9, 1), 180, "lost")
    subject.days_in_arrears = 180
    subject.write_off("op", date(2026, 9, 1), 180, "lost")
    assert subject.status is LoanStatus.WRITTEN_OFF
    assert subject.principal_outstanding == Decimal("0.00")
