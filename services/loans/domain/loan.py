"""The loan aggregate and its lifecycle state machine.

``submitted → approved → disbursing → active → closed``, with the side exits
``rejected``, ``withdrawn``, ``disbursement_failed`` and ``written_off``. Every
change goes through :meth:`Loan.transition`, which refuses anything the table
below does not allow with a :class:`shared.errors.Conflict` (409 at the API).
Approval follows maker-checker: the approver is never the one who submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from shared.errors import Conflict, Forbidden


class LoanStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    DISBURSING = "disbursing"
    ACTIVE = "active"
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    DISBURSEMENT_FAILED = "disbursement_failed"
    WRITTEN_OFF = "written_off"


S = LoanStatus

# action -> (allowed from, to)
TRANSITIONS: dict[str, tuple[frozenset[LoanStatus], LoanStatus]] = {
    "approve": (frozenset({S.SUBMITTED}), S.APPROVED),
    "reject": (frozenset({S.SUBMITTED}), S.REJECTED),
    "withdraw": (frozenset({S.SUBMITTED}), S.WITHDRAWN),
    # credit refused by the clients service during the saga
    "credit_rejected": (frozenset({S.APPROVED}), S.REJECTED),
    "start_disbursing": (frozenset({S.APPROVED}), S.DISBURSING),
    "activate": (frozenset({S.DISBURSING}), S.ACTIVE),
    "fail_disbursement": (frozenset({S.APPROVED, S.DISBURSING}), S.DISBURSEMENT_FAILED),
    "close": (frozenset({S.ACTIVE}), S.CLOSED),
    "write_off": (frozenset({S.ACTIVE}), S.WRITTEN_OFF),
}

TERMINAL = frozenset({S.CLOSED, S.REJECTED, S.WITHDRAWN, S.DISBURSEMENT_FAILED, S.WRITTEN_OFF})


def allowed_actions(status: LoanStatus) -> list[str]:
    return [name for name, (sources, _) in TRANSITIONS.items() if status in sources]


@dataclass
class Loan:
    id: str
    client_id: str
    partner_id: str
    product_id: str
    product_version: int
    principal: Decimal
    term: int
    status: LoanStatus
    submitted_by: str
    currency: str = "MAD"
    decided_by: str | None = None
    decision_reason: str | None = None
    msisdn: str | None = None
    disbursed_on: date | None = None
    closed_on: date | None = None
    written_off_on: date | None = None
    principal_outstanding: Decimal = Decimal("0.00")
    days_in_arrears: int = 0
    arrears_bucket: str = "current"
    arrears_as_of: date | None = None
    version: int = 1
    submitted_at: datetime | None = None
    """When the application was stored (set by the repository)."""
    reference: str | None = None
    """The short reference a borrower types (``domain.reference``)."""
    purpose: str | None = None
    recovered_amount: Decimal = Decimal("0.00")
    """Money received after the write-off (recoveries), in total."""
    max_days_in_arrears: int = 0
    changes: list[tuple[LoanStatus, LoanStatus]] = field(default_factory=list)

    def transition(self, action: str) -> None:
        sources, target = TRANSITIONS[action]
        if self.status not in sources:
            raise Conflict(
                f"cannot {action.replace('_', ' ')} a loan that is {self.status.value}",
                field="status", status_now=self.status.value,
                allowed=allowed_actions(self.status),
            )
        self.changes.append((self.status, target))
        self.status = target

    # -- operator and partner decisions -------------------------------------------
    def approve(self, approver: str) -> None:
        if approver == self.submitted_by:
            raise Forbidden(
                "maker-checker: a loan is approved by an operator other than the one "
                "who submitted it", field="approved_by",
            )
        self.transition("approve")
        self.decided_by = approver

    def reject(self, by: str, reason: str) -> None:
        self.transition("reject")
        self.decided_by = by
        self.decision_reason = reason

    def withdraw(self, by: str, reason: str) -> None:
        self.transition("withdraw")
        self.decided_by = by
        self.decision_reason = reason

    # -- saga outcomes ------------------------------------------------------------
    def credit_rejected(self, reason: str) -> None:
        self.transition("credit_rejected")
        self.decision_reason = reason

    def start_disbursing(self, msisdn: str) -> None:
        self.transition("start_disbursing")
        self.msisdn = msisdn

    def activate(self, disbursed_on: date) -> None:
        self.transition("activate")
        self.disbursed_on = disbursed_on
        self.principal_outstanding = self.principal

    def payout_to_recover(self) -> None:
        """Paid out although its group's disbursement failed: not active (no schedule
        runs), but the member owes what it received — the paid-out principal is
        outstanding until the payout's recovery is recorded."""
        if self.status is not LoanStatus.DISBURSING:
            raise Conflict(f"a {self.status.value} loan has no payout to recover",
                           field="status", status_now=self.status.value)
        self.principal_outstanding = self.principal

    def payout_recovery_recorded(self, remaining: Decimal, closed: bool, reason: str) -> None:
        """Operators recorded part or all of the payout to recover as returned or written
        off: the loan owes ``remaining``; once the recovery is closed the loan ends
        ``disbursement_failed`` (it never became active)."""
        if self.status is not LoanStatus.DISBURSING:
            raise Conflict(f"a {self.status.value} loan has no payout to recover",
                           field="status", status_now=self.status.value)
        self.principal_outstanding = remaining
        if closed:
            self.principal_outstanding = Decimal("0.00")
            self.fail_disbursement(reason)

    def fail_disbursement(self, reason: str) -> None:
        self.transition("fail_disbursement")
        self.decision_reason = reason

    # -- servicing ----------------------------------------------------------------
    def close(self, on: date) -> None:
        self.transition("close")
        self.closed_on = on
        self.principal_outstanding = Decimal("0.00")
        self.days_in_arrears = 0
        self.arrears_bucket = "current"

    def check_write_off(self, min_days_in_arrears: int) -> None:
        """Whether a write-off may be proposed (or approved) now."""
        sources, _ = TRANSITIONS["write_off"]
        if self.status not in sources:
            raise Conflict(
                f"cannot write off a loan that is {self.status.value}", field="status",
                status_now=self.status.value, allowed=allowed_actions(self.status))
        if self.days_in_arrears < min_days_in_arrears:
            raise Conflict(
                f"a loan is written off after {min_days_in_arrears} days in arrears; this one "
                f"has {self.days_in_arrears}", field="days_in_arrears",
            )

    def write_off(self, by: str, on: date, min_days_in_arrears: int, reason: str, *,
                  proposed_by: str | None = None) -> None:
        """Maker-checker: the operator approving (``by``) is not the one who proposed."""
        if proposed_by is not None and proposed_by == by:
            raise Forbidden(
                "maker-checker: a write-off is approved by an operator other than the one "
                "who proposed it", field="approved_by")
        self.check_write_off(min_days_in_arrears)
        self.transition("write_off")
        self.principal_outstanding = Decimal("0.00")
        self.decided_by = by
        self.decision_reason = reason
        self.written_off_on = on

    def recover(self, amount: Decimal) -> None:
        """Money received on a written-off loan: it stays written off."""
        if self.status is not LoanStatus.WRITTEN_OFF:
            raise Conflict(f"a recovery is money received on a written-off loan; this one is "
                           f"{self.status.value}", field="status")
        self.recovered_amount += amount
