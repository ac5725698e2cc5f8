"""Product terms to and from plain JSON-able dicts (how a product version is stored)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from services.loans.domain.charges import LateChargeRule
from services.loans.domain.products import (
    Amortization,
    Component,
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
    NonWorkingDayRule,
    Penalty,
    PenaltyKind,
    PrepaymentRule,
    ProductTerms,
)


def terms_to_dict(t: ProductTerms) -> dict[str, Any]:
    return {
        "interest_method": t.interest_method.value,
        "amortization": t.amortization.value,
        "frequency": t.frequency.value,
        "annual_rate": str(t.annual_rate),
        "min_principal": str(t.min_principal),
        "max_principal": str(t.max_principal),
        "min_term": t.min_term,
        "max_term": t.max_term,
        "grace_principal": t.grace_principal,
        "grace_interest": t.grace_interest,
        "fees": [{"kind": f.kind.value, "value": str(f.value), "timing": f.timing.value}
                 for f in t.fees],
        "penalty": None if t.penalty is None else {
            "kind": t.penalty.kind.value, "value": str(t.penalty.value),
            "tolerance_days": t.penalty.tolerance_days},
        "day_count": t.day_count.value,
        "allocation_order": list(t.allocation_order),
        "overpayment_tolerance": str(t.overpayment_tolerance),
        "late_charge": None if t.late_charge is None else t.late_charge.to_dict(),
        "reminder_days_before": t.reminder_days_before,
        "overdue_reminder_days": None if t.overdue_reminder_days is None
        else list(t.overdue_reminder_days),
        "overdue_reminder_every": t.overdue_reminder_every,
        "non_working_day_rule": t.non_working_day_rule.value,
        "meeting_weekday": t.meeting_weekday,
        "prepayment_rule": t.prepayment_rule.value,
    }


def terms_from_dict(d: dict[str, Any]) -> ProductTerms:
    penalty = d.get("penalty")
    return ProductTerms(
        interest_method=InterestMethod(d["interest_method"]),
        amortization=Amortization(d["amortization"]),
        frequency=Frequency(d["frequency"]),
        annual_rate=Decimal(d["annual_rate"]),
        min_principal=Decimal(d["min_principal"]),
        max_principal=Decimal(d["max_principal"]),
        min_term=int(d["min_term"]),
        max_term=int(d["max_term"]),
        grace_principal=int(d.get("grace_principal", 0)),
        grace_interest=int(d.get("grace_interest", 0)),
        fees=tuple(Fee(FeeKind(f["kind"]), Decimal(f["value"]), FeeTiming(f["timing"]))
                   for f in d.get("fees", [])),
        penalty=None if not penalty else Penalty(
            PenaltyKind(penalty["kind"]), Decimal(penalty["value"]),
            int(penalty["tolerance_days"])),
        day_count=DayCount(d.get("day_count", DayCount.ACTUAL_365.value)),
        allocation_order=tuple(cast(Component, c) for c in d["allocation_order"]),
        overpayment_tolerance=Decimal(d.get("overpayment_tolerance", "0.00")),
        late_charge=None if not d.get("late_charge")
        else LateChargeRule.from_dict(d["late_charge"]),
        reminder_days_before=d.get("reminder_days_before"),
        overdue_reminder_days=None if d.get("overdue_reminder_days") is None
        else tuple(int(x) for x in d["overdue_reminder_days"]),
        overdue_reminder_every=d.get("overdue_reminder_every"),
        non_working_day_rule=NonWorkingDayRule(
            d.get("non_working_day_rule", NonWorkingDayRule.NEXT.value)),
        meeting_weekday=d.get("meeting_weekday"),
        prepayment_rule=PrepaymentRule(
            d.get("prepayment_rule", PrepaymentRule.NEXT_INSTALLMENTS.value)),
    )
