"""Loan product terms: the parameters a schedule is computed from.

Conventions (rates and percentages are fractions, never "percent numbers"):

- ``annual_rate`` is the nominal annual rate: ``Decimal("0.24")`` means 24 % a year.
- A ``PERCENT_OF_PRINCIPAL`` fee or a ``PERCENT_OF_OVERDUE`` penalty has its ``value``
  as a fraction too: ``Decimal("0.02")`` means 2 %.
- ``FLAT`` fees and penalties are amounts in MAD with at most two decimals.
- Grace periods are counted in installments and must leave at least one installment
  that repays principal (and one that pays interest) for the shortest term allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from services.loans.domain.charges import LateChargeRule
from services.loans.domain.money import ZERO, is_cents, round_money
from shared.errors import InvalidInput


class InterestMethod(StrEnum):
    FLAT = "flat"
    DECLINING_BALANCE = "declining_balance"


class Amortization(StrEnum):
    EQUAL_INSTALLMENTS = "equal_installments"
    EQUAL_PRINCIPAL = "equal_principal"


class Frequency(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"


PERIODS_PER_YEAR: dict[Frequency, int] = {
    Frequency.WEEKLY: 52,
    Frequency.BIWEEKLY: 26,
    Frequency.MONTHLY: 12,
}


class DayCount(StrEnum):
    ACTUAL_365 = "actual_365"
    ACTUAL_360 = "actual_360"
    THIRTY_360 = "30_360"


class FeeKind(StrEnum):
    FLAT = "flat"
    PERCENT_OF_PRINCIPAL = "percent_of_principal"


class FeeTiming(StrEnum):
    AT_DISBURSEMENT = "at_disbursement"
    PER_INSTALLMENT = "per_installment"


class PenaltyKind(StrEnum):
    FLAT = "flat"
    PERCENT_OF_OVERDUE = "percent_of_overdue"


class NonWorkingDayRule(StrEnum):
    """Where a due date falling on a weekend or a holiday goes."""

    NEXT = "next"
    PREVIOUS = "previous"
    UNCHANGED = "unchanged"


class PrepaymentRule(StrEnum):
    """What a payment beyond what is due does to the rest of the schedule.

    ``next_installments``: it pays the next installments in order, as they stand (no
    interest saved). ``reduce_term``: it repays principal and the schedule is rebuilt
    keeping the installment amount, so the last installments drop. ``reduce_installment``:
    it repays principal and the schedule is rebuilt over the same installments, each
    smaller."""

    NEXT_INSTALLMENTS = "next_installments"
    REDUCE_TERM = "reduce_term"
    REDUCE_INSTALLMENT = "reduce_installment"


Component = Literal["penalties", "fees", "interest", "principal"]
COMPONENTS: tuple[Component, ...] = ("penalties", "fees", "interest", "principal")
DEFAULT_ALLOCATION_ORDER: tuple[Component, ...] = ("penalties", "fees", "interest", "principal")

MAX_ANNUAL_RATE = Decimal("10")  # 1000 % a year: anything above is a typo, not a product


@dataclass(frozen=True)
class Fee:
    kind: FeeKind
    value: Decimal
    timing: FeeTiming

    def amount(self, principal: Decimal) -> Decimal:
        """The fee charged once (at disbursement) or on each installment, in cents."""
        if self.kind is FeeKind.FLAT:
            return round_money(self.value)
        return round_money(principal * self.value)


@dataclass(frozen=True)
class Penalty:
    kind: PenaltyKind
    value: Decimal
    tolerance_days: int


def _check_fraction_or_amount(kind_is_flat: bool, value: Decimal, field: str) -> None:
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{field} must be a non-negative number", field=field)
    if kind_is_flat and not is_cents(value):
        raise InvalidInput(f"{field} must be an amount with at most two decimals", field=field)
    if not kind_is_flat and value > 1:
        raise InvalidInput(
            f"{field} is a fraction (0.02 for 2 %) and must not exceed 1", field=field
        )


@dataclass(frozen=True)
class ProductTerms:
    interest_method: InterestMethod
    amortization: Amortization
    frequency: Frequency
    annual_rate: Decimal
    min_principal: Decimal
    max_principal: Decimal
    min_term: int
    max_term: int
    grace_principal: int = 0
    """The first N installments carry no principal."""
    grace_interest: int = 0
    """The first N installments carry no interest payment. The interest is still charged:
    what those installments would have paid is spread evenly over the remaining
    installments (Fineract's "grace on interest payment"); it earns no interest itself."""
    fees: tuple[Fee, ...] = ()
    penalty: Penalty | None = None
    day_count: DayCount = DayCount.ACTUAL_365
    allocation_order: tuple[Component, ...] = DEFAULT_ALLOCATION_ORDER
    overpayment_tolerance: Decimal = ZERO
    non_working_day_rule: NonWorkingDayRule = NonWorkingDayRule.NEXT
    meeting_weekday: int | None = None
    """Weekly and biweekly products: the weekday (0 = Monday … 6 = Sunday) installments
    fall on (a group's meeting day) instead of the disbursement weekday."""
    prepayment_rule: PrepaymentRule = PrepaymentRule.NEXT_INSTALLMENTS

    late_charge: LateChargeRule | None = None
    """Late charges charged by close of business (``domain.charges``)."""
    reminder_days_before: int | None = None
    """``InstallmentDueSoon`` this many days before a due date (None: the service's
    ``REPAYMENT_DUE_DAYS_BEFORE``; 0: none)."""
    overdue_reminder_days: tuple[int, ...] | None = None
    """``InstallmentOverdue`` on these days late (None: 1, 3, 7, 15, 30) …"""
    overdue_reminder_every: int | None = None
    """… then every this many days (None: 30; 0: no more)."""

    @property
    def periods_per_year(self) -> int:
        return PERIODS_PER_YEAR[self.frequency]

    @property
    def periodic_rate(self) -> Decimal:
        """Nominal annual rate divided by the number of periods in a year (52, 26, 12)."""
        return self.annual_rate / self.periods_per_year

    def validate(self) -> None:
        """Refuse inconsistent terms, naming the offending field."""
        if not self.annual_rate.is_finite() or self.annual_rate < 0:
            raise InvalidInput("annual_rate must not be negative", field="annual_rate")
        if self.annual_rate > MAX_ANNUAL_RATE:
            raise InvalidInput(
                "annual_rate is a fraction (0.24 for 24 %) and must not exceed 10",
                field="annual_rate",
            )
        if not is_cents(self.min_principal) or self.min_principal <= 0:
            raise InvalidInput(
                "min_principal must be a positive amount with at most two decimals",
                field="min_principal",
            )
        if not is_cents(self.max_principal) or self.max_principal < self.min_principal:
            raise InvalidInput(
                "max_principal must be an amount not below min_principal", field="max_principal"
            )
        if self.min_term < 1:
            raise InvalidInput("min_term must be at least 1 installment", field="min_term")
        if self.max_term < self.min_term:
            raise InvalidInput("max_term must not be below min_term", field="max_term")
        if not 0 <= self.grace_principal < self.min_term:
            raise InvalidInput(
                "grace_principal must be between 0 and min_term - 1 installments",
                field="grace_principal",
            )
        if not 0 <= self.grace_interest < self.min_term:
            raise InvalidInput(
                "grace_interest must be between 0 and min_term - 1 installments",
                field="grace_interest",
            )
        for index, fee in enumerate(self.fees):
            _check_fraction_or_amount(fee.kind is FeeKind.FLAT, fee.value, f"fees[{index}].value")
        if self.penalty is not None:
            _check_fraction_or_amount(
                self.penalty.kind is PenaltyKind.FLAT, self.penalty.value, "penalty.value"
            )
            if self.penalty.tolerance_days < 0:
                raise InvalidInput(
                    "penalty.tolerance_days must not be negative", field="penalty.tolerance_days"
                )
        if sorted(self.allocation_order) != sorted(COMPONENTS):
            raise InvalidInput(
                "allocation_order must list penalties, fees, interest and principal once each",
                field="allocation_order",
            )
        if not is_cents(self.overpayment_tolerance) or self.overpayment_tolerance < 0:
            raise InvalidInput(
                "overpayment_tolerance must be a non-negative amount",
                field="overpayment_tolerance",
            )
        if self.meeting_weekday is not None:
            if self.frequency is Frequency.MONTHLY:
                raise InvalidInput(
                    "meeting_weekday is for weekly and biweekly products only",
                    field="meeting_weekday")
            if not 0 <= self.meeting_weekday <= 6:
                raise InvalidInput(
                    "meeting_weekday must be 0 (Monday) to 6 (Sunday)", field="meeting_weekday")
        if self.late_charge is not None:
            self.late_charge.validate()
        self._validate_reminders()

    def _validate_reminders(self) -> None:
        if self.reminder_days_before is not None and not 0 <= self.reminder_days_before <= 60:
            raise InvalidInput("reminder_days_before must be 0 to 60",
                               field="reminder_days_before")
        days = self.overdue_reminder_days
        if days is not None and (any(not 1 <= d <= 366 for d in days)
                                 or list(days) != sorted(set(days))):
            raise InvalidInput("overdue_reminder_days are increasing days late, 1 to 366",
                               field="overdue_reminder_days")
        if self.overdue_reminder_every is not None and not 0 <= self.overdue_reminder_every <= 366:
            raise InvalidInput("overdue_reminder_every must be 0 to 366",
                               field="overdue_reminder_every")

    def check_application(self, principal: Decimal, term: int) -> None:
        """Refuse a principal or a term outside the product's ranges."""
        if not is_cents(principal) or principal <= 0:
            raise InvalidInput(
                "principal must be a positive amount with at most two decimals", field="principal"
            )
        if not self.min_principal <= principal <= self.max_principal:
            raise InvalidInput(
                f"principal must be between {self.min_principal} and {self.max_principal} MAD",
                field="principal",
            )
        if not self.min_term <= term <= self.max_term:
            raise InvalidInput(
                f"term must be between {self.min_term} and {self.max_term} installments",
                field="term",
            )
