"""Late charges as product rules, and what close of business charges on a date.

A product may carry one :class:`LateChargeRule`. Close of business charges it on each
overdue installment once per business date at most (set-based SQL in
``repository/late_charges.py`` mirrors :func:`charge_for`, and a row per installment
and date in ``late_charges`` makes a re-run or a catch-up of missed nights charge
exactly what nightly runs would have):

- ``grace_days``: nothing is charged while the installment is ``grace_days`` or fewer
  days late (days late = business date - due date).
- ``frequency``: ``one_time`` (the first date after the grace, once), ``per_day``
  (every date after the grace) or ``per_period`` (the first date after the grace, then
  every ``period_days``).
- ``calculation``: ``flat`` (``value`` is an amount) or ``percent`` (``value`` is a
  fraction of the basis, rounded half up to the cent).
- ``basis``: ``overdue_principal`` (principal still owed on the installment) or
  ``overdue_amount`` (principal + interest + fees still owed on it; never the late
  charges themselves, so charges do not compound).
- caps, per installment, on the total of its late charges: ``cap_amount`` (an amount)
  and ``cap_annual_rate`` (at most what interest at that annual rate on the basis would
  come to over the days late, actual/365). A charge that would cross a cap is cut to it.

Waivers (maker-checker) reduce an installment's penalties; they are not charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from services.loans.domain.money import ZERO, is_cents, round_money
from shared.errors import InvalidInput


class ChargeFrequency(StrEnum):
    ONE_TIME = "one_time"
    PER_DAY = "per_day"
    PER_PERIOD = "per_period"


class ChargeCalculation(StrEnum):
    FLAT = "flat"
    PERCENT = "percent"


class ChargeBasis(StrEnum):
    OVERDUE_PRINCIPAL = "overdue_principal"
    OVERDUE_AMOUNT = "overdue_amount"


MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class LateChargeRule:
    frequency: ChargeFrequency
    calculation: ChargeCalculation
    value: Decimal
    basis: ChargeBasis = ChargeBasis.OVERDUE_AMOUNT
    grace_days: int = 0
    period_days: int = 30
    """``per_period`` only: days between two charges."""
    cap_amount: Decimal | None = None
    cap_annual_rate: Decimal | None = None

    def validate(self, field: str = "late_charge") -> None:
        if not self.value.is_finite() or self.value <= 0:
            raise InvalidInput(f"{field}.value must be positive", field=f"{field}.value")
        if self.calculation is ChargeCalculation.FLAT and not is_cents(self.value):
            raise InvalidInput(f"{field}.value must be an amount with at most two decimals",
                               field=f"{field}.value")
        if self.calculation is ChargeCalculation.PERCENT and self.value > 1:
            raise InvalidInput(f"{field}.value is a fraction (0.02 for 2 %) not above 1",
                               field=f"{field}.value")
        if not 0 <= self.grace_days <= 3650:
            raise InvalidInput(f"{field}.grace_days must be 0 to 3650",
                               field=f"{field}.grace_days")
        if not 1 <= self.period_days <= MAX_PERIOD_DAYS:
            raise InvalidInput(f"{field}.period_days must be 1 to {MAX_PERIOD_DAYS}",
                               field=f"{field}.period_days")
        if self.cap_amount is not None and (not is_cents(self.cap_amount)
                                            or self.cap_amount <= 0):
            raise InvalidInput(f"{field}.cap_amount must be a positive amount",
                               field=f"{field}.cap_amount")
        if self.cap_annual_rate is not None and (not self.cap_annual_rate.is_finite()
                                                 or not 0 < self.cap_annual_rate <= 10):
            raise InvalidInput(f"{field}.cap_annual_rate is a fraction above 0, at most 10",
                               field=f"{field}.cap_annual_rate")

    def charges_on(self, days_late: int, times_charged: int) -> bool:
        """Whether a charge falls due on a date ``days_late`` days after the due date."""
        if days_late <= self.grace_days:
            return False
        if self.frequency is ChargeFrequency.ONE_TIME:
            return times_charged == 0
        if self.frequency is ChargeFrequency.PER_DAY:
            return True
        return (days_late - self.grace_days - 1) % self.period_days == 0

    def to_dict(self) -> dict[str, Any]:
        return {"frequency": self.frequency.value, "calculation": self.calculation.value,
                "value": str(self.value), "basis": self.basis.value,
                "grace_days": self.grace_days, "period_days": self.period_days,
                "cap_amount": None if self.cap_amount is None else str(self.cap_amount),
                "cap_annual_rate": None if self.cap_annual_rate is None
                else str(self.cap_annual_rate)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LateChargeRule:
        return cls(
            frequency=ChargeFrequency(d["frequency"]),
            calculation=ChargeCalculation(d["calculation"]), value=Decimal(d["value"]),
            basis=ChargeBasis(d.get("basis", ChargeBasis.OVERDUE_AMOUNT.value)),
            grace_days=int(d.get("grace_days", 0)), period_days=int(d.get("period_days", 30)),
            cap_amount=None if d.get("cap_amount") is None else Decimal(d["cap_amount"]),
            cap_annual_rate=None if d.get("cap_annual_rate") is None
            else Decimal(d["cap_annual_rate"]))


def rate_cap(basis: Decimal, annual_rate: Decimal, days_late: int) -> Decimal:
    """basis * annual rate * days late / 365, rounded half up to the cent."""
    return round_money(basis * annual_rate * days_late / Decimal(365))


def charge_for(rule: LateChargeRule, *, basis: Decimal, days_late: int, times_charged: int,
               charged_so_far: Decimal) -> Decimal:
    """The late charge on one installment for one business date (0.00 when none).

    ``basis`` is the installment's overdue principal or overdue amount (by the rule),
    ``times_charged`` and ``charged_so_far`` what earlier dates charged on it.
    """
    if basis <= 0 or not rule.charges_on(days_late, times_charged):
        return ZERO
    raw = (rule.value if rule.calculation is ChargeCalculation.FLAT
           else round_money(basis * rule.value))
    room = raw
    if rule.cap_amount is not None:
        room = min(room, rule.cap_amount - charged_so_far)
    if rule.cap_annual_rate is not None:
        room = min(room, rate_cap(basis, rule.cap_annual_rate, days_late) - charged_so_far)
    return max(room, ZERO)
