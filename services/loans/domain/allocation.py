"""Repayment allocation over the installments still owed.

Fineract's ``mifos-standard-strategy``: the oldest installment (earliest due date,
then lowest number) is settled first; within an installment the components are
paid in the product's order (default penalties -> fees -> interest -> principal).
A payment larger than what is due today runs on into future installments (an early
payment) in the same way. Nothing is ever allocated beyond what is owed: the excess
is reported as ``unallocated``. Amounts are exact cents; no rounding happens here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal

from services.loans.domain.money import ZERO, is_cents
from services.loans.domain.products import COMPONENTS, DEFAULT_ALLOCATION_ORDER, Component
from services.loans.domain.schedule import PlannedInstallment
from shared.errors import InvalidInput


@dataclass
class InstallmentDue:
    """What is still owed on one installment."""

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalties: Decimal

    @classmethod
    def from_planned(cls, planned: PlannedInstallment) -> InstallmentDue:
        """A scheduled installment on which nothing has been paid yet."""
        return cls(
            number=planned.number,
            due_date=planned.due_date,
            principal=planned.principal,
            interest=planned.interest,
            fees=planned.fees,
            penalties=ZERO,
        )

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalties

    def owed(self, component: Component) -> Decimal:
        value: Decimal = getattr(self, component)
        return value


@dataclass(frozen=True)
class AllocationLine:
    installment: int
    component: Component
    amount: Decimal


@dataclass(frozen=True)
class AllocationResult:
    lines: tuple[AllocationLine, ...]
    principal_paid: Decimal
    interest_paid: Decimal
    fees_paid: Decimal
    penalties_paid: Decimal
    unallocated: Decimal
    remaining: list[InstallmentDue]
    """Every installment given, in the order given, with what is still owed after the
    payment (settled installments are included, with zero amounts)."""
    paid_in_advance: Decimal = ZERO
    """Part of the payment allocated to installments due after ``as_of`` (0 without it)."""

    @property
    def allocated(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fees_paid + self.penalties_paid

    def paid(self, component: Component) -> Decimal:
        return sum((ln.amount for ln in self.lines if ln.component == component), ZERO)


@dataclass(frozen=True)
class Rejection:
    reason: Literal["overpayment"]
    detail: str
    refundable_amount: Decimal = ZERO


def total_owed(installments: Iterable[InstallmentDue]) -> Decimal:
    return sum((i.total for i in installments), ZERO)


def outstanding_principal(installments: Iterable[InstallmentDue]) -> Decimal:
    return sum((i.principal for i in installments), ZERO)


def next_due(installments: Iterable[InstallmentDue]) -> InstallmentDue | None:
    """The oldest installment with anything still owed (the next one to pay), if any."""
    owing = [i for i in installments if i.total > 0]
    return min(owing, key=lambda i: (i.due_date, i.number)) if owing else None


def _check_order(order: Sequence[Component]) -> None:
    if sorted(order) != sorted(COMPONENTS):
        raise InvalidInput(
            "allocation order must list penalties, fees, interest and principal once each",
            field="allocation_order",
        )


def allocate(
    installments: Sequence[InstallmentDue],
    amount: Decimal,
    order: Sequence[Component] = DEFAULT_ALLOCATION_ORDER,
    *,
    as_of: date | None = None,
) -> AllocationResult:
    """Allocate ``amount`` oldest installment first, components in ``order``.

    The installments given are not modified. ``as_of`` (the payment's business date)
    only serves to report how much went to installments not yet due.
    """
    if not is_cents(amount) or amount < 0:
        raise InvalidInput("amount must be a non-negative amount in cents", field="amount")
    _check_order(order)
    remaining = [replace(i) for i in installments]
    left = amount
    lines: list[AllocationLine] = []
    paid = dict.fromkeys(COMPONENTS, ZERO)
    in_advance = ZERO
    for item in sorted(remaining, key=lambda i: (i.due_date, i.number)):
        for component in order:
            if left == 0:
                break
            take = min(left, item.owed(component))
            if take <= 0:
                continue
            setattr(item, component, item.owed(component) - take)
            left -= take
            paid[component] += take
            lines.append(AllocationLine(item.number, component, take))
            if as_of is not None and item.due_date > as_of:
                in_advance += take
    return AllocationResult(
        lines=tuple(lines),
        principal_paid=paid["principal"],
        interest_paid=paid["interest"],
        fees_paid=paid["fees"],
        penalties_paid=paid["penalties"],
        unallocated=left,
        remaining=remaining,
        paid_in_advance=in_advance,
    )


def decide_repayment(
    installments: Sequence[InstallmentDue],
    amount: Decimal,
    order: Sequence[Component] = DEFAULT_ALLOCATION_ORDER,
    tolerance: Decimal = ZERO,
    *,
    as_of: date | None = None,
) -> AllocationResult | Rejection:
    """Allocate a repayment, or reject the WHOLE payment when it overpays beyond tolerance.

    An excess within the tolerance is accepted and reported as ``unallocated``; the
    caller decides what to do with it. Loan-status checks are the caller's.
    """
    if not is_cents(amount) or amount <= 0:
        raise InvalidInput("amount must be a positive amount in cents", field="amount")
    owed = total_owed(installments)
    if amount > owed + tolerance:
        return Rejection(
            reason="overpayment",
            detail=f"payment of {amount} MAD exceeds the {owed} MAD owed"
            f" (tolerance {tolerance} MAD)",
            refundable_amount=amount,
        )
    return allocate(installments, amount, order, as_of=as_of)
