"""Late charge rules and caps, with the working written out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.loans.domain.charges import (
    ChargeBasis,
    ChargeCalculation,
    ChargeFrequency,
    LateChargeRule,
    charge_for,
    rate_cap,
)
from shared.errors import InvalidInput

D = Decimal


def run_nights(rule: LateChargeRule, basis: Decimal, nights: int) -> list[Decimal]:
    """What close of business charges on days late 1..nights, one date after another."""
    out: list[Decimal] = []
    total, times = D("0.00"), 0
    for days_late in range(1, nights + 1):
        c = charge_for(rule, basis=basis, days_late=days_late, times_charged=times,
                       charged_so_far=total)
        out.append(c)
        if c > 0:
            total += c
            times += 1
    return out


def test_one_time_flat_after_grace() -> None:
    # 50.00 MAD once, grace 3 days: nothing on days 1-3, 50.00 on day 4, nothing after
    rule = LateChargeRule(ChargeFrequency.ONE_TIME, ChargeCalculation.FLAT, D("50.00"),
                          grace_days=3)
    charges = run_nights(rule, D("1000.00"), 10)
    assert charges[:3] == [D("0.00")] * 3
    assert charges[3] == D("50.00")
    assert sum(charges) == D("50.00")


def test_per_day_percent_of_overdue_principal() -> None:
    # 0.1 % a day of 312.50 overdue principal = 0.3125 -> 0.31 each day after a 2-day grace;
    # 7 nights -> 5 charges = 1.55
    rule = LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.PERCENT, D("0.001"),
                          basis=ChargeBasis.OVERDUE_PRINCIPAL, grace_days=2)
    charges = run_nights(rule, D("312.50"), 7)
    assert charges == [D("0.00"), D("0.00")] + [D("0.31")] * 5
    assert sum(charges) == D("1.55")


def test_per_period_every_thirty_days() -> None:
    # 2 % of 400.00 = 8.00 on days 6, 36 and 66 (grace 5, every 30 days)
    rule = LateChargeRule(ChargeFrequency.PER_PERIOD, ChargeCalculation.PERCENT, D("0.02"),
                          grace_days=5, period_days=30)
    charges = run_nights(rule, D("400.00"), 70)
    charged_days = [i + 1 for i, c in enumerate(charges) if c > 0]
    assert charged_days == [6, 36, 66]
    assert sum(charges) == D("24.00")


def test_absolute_cap_cuts_the_charge_that_crosses_it() -> None:
    # 10.00 a day, capped at 35.00: 10 + 10 + 10 + 5 (cut), then nothing
    rule = LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.FLAT, D("10.00"),
                          cap_amount=D("35.00"))
    charges = run_nights(rule, D("500.00"), 6)
    assert charges == [D("10.00"), D("10.00"), D("10.00"), D("5.00"), D("0.00"), D("0.00")]


def test_annual_rate_cap() -> None:
    # 5.00 a day on 1 000.00 overdue, capped at 36.5 % a year:
    # the cap after n days is 1000 * 0.365 * n / 365 = 1.00 * n, so each day adds 1.00
    rule = LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.FLAT, D("5.00"),
                          cap_annual_rate=D("0.365"))
    assert rate_cap(D("1000.00"), D("0.365"), 10) == D("10.00")
    charges = run_nights(rule, D("1000.00"), 4)
    assert charges == [D("1.00")] * 4
    # a one-time 100.00 on 1 200.00, 30 days late at most 24 % a year:
    # 1200 * 0.24 * 30 / 365 = 23.6712... -> 23.67
    once = LateChargeRule(ChargeFrequency.ONE_TIME, ChargeCalculation.FLAT, D("100.00"),
                          grace_days=29, cap_annual_rate=D("0.24"))
    assert charge_for(once, basis=D("1200.00"), days_late=30, times_charged=0,
                      charged_so_far=D("0.00")) == D("23.67")


def test_nothing_when_nothing_is_overdue() -> None:
    rule = LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.FLAT, D("5.00"))
    assert charge_for(rule, basis=D("0.00"), days_late=9, times_charged=0,
                      charged_so_far=D("0.00")) == D("0.00")


def test_round_trip_and_validation() -> None:
    rule = LateChargeRule(ChargeFrequency.PER_PERIOD, ChargeCalculation.PERCENT, D("0.02"),
                          ChargeBasis.OVERDUE_PRINCIPAL, 3, 7, D("100.00"), D("0.30"))
    assert LateChargeRule.from_dict(rule.to_dict()) == rule
    rule.validate()
    with pytest.raises(InvalidInput) as bad:
        LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.PERCENT, D("2")).validate()
    assert bad.value.field == "late_charge.value"
    with pytest.raises(InvalidInput) as bad:
        LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.FLAT, D("1.001")).validate()
    assert bad.value.field == "late_charge.value"
    with pytest.raises(InvalidInput) as bad:
        LateChargeRule(ChargeFrequency.PER_DAY, ChargeCalculation.FLAT, D("1"),
                       cap_amount=D("0")).validate()
    assert bad.value.field == "late_charge.cap_amount"
