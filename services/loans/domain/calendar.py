"""Working days and holidays: where a due date may fall.

The institution works Monday to Friday unless its calendar says otherwise; a holiday
is a dated day off. Both are data (``working_days`` and ``holidays`` tables, managed
through ``/v1/calendar``); this module is the pure part: is a day a working day, and
where does a due date move under a product's :class:`NonWorkingDayRule`.

Seed data: Morocco's fixed national holidays every year, and the Islamic holidays of
2026-2027 at their expected Gregorian dates. The Islamic dates follow the sighting of
the moon and are confirmed by the Ministry of Habous a day or two before: they are
marked ``provisional`` and operators correct them through the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.loans.domain.products import NonWorkingDayRule

DEFAULT_WORKING_WEEKDAYS = frozenset({0, 1, 2, 3, 4})
"""Monday (0) to Friday (4)."""

MAX_SHIFT_DAYS = 60
"""A calendar with no working day within this many days of a date is a mistake."""


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str
    provisional: bool = False


FIXED_NATIONAL_HOLIDAYS: tuple[tuple[int, int, str], ...] = (
    (1, 1, "Nouvel an"),
    (1, 11, "Manifeste de l'indépendance"),
    (1, 14, "Yennayer (Nouvel an amazigh)"),
    (5, 1, "Fête du travail"),
    (7, 30, "Fête du Trône"),
    (8, 14, "Allégeance Oued Ed-Dahab"),
    (8, 20, "Révolution du Roi et du Peuple"),
    (8, 21, "Fête de la jeunesse"),
    (11, 6, "Marche Verte"),
    (11, 18, "Fête de l'indépendance"),
)

ISLAMIC_HOLIDAYS_2026_2027: tuple[tuple[date, str], ...] = (
    (date(2026, 3, 20), "Aïd al-Fitr"),
    (date(2026, 5, 27), "Aïd al-Adha"),
    (date(2026, 5, 28), "Aïd al-Adha (2e jour)"),
    (date(2026, 6, 16), "Nouvel an de l'Hégire 1448"),
    (date(2026, 8, 25), "Aïd al-Mawlid"),
    (date(2026, 8, 26), "Aïd al-Mawlid (2e jour)"),
    (date(2027, 3, 10), "Aïd al-Fitr"),
    (date(2027, 5, 17), "Aïd al-Adha"),
    (date(2027, 5, 18), "Aïd al-Adha (2e jour)"),
    (date(2027, 6, 6), "Nouvel an de l'Hégire 1449"),
    (date(2027, 8, 15), "Aïd al-Mawlid"),
    (date(2027, 8, 16), "Aïd al-Mawlid (2e jour)"),
)


def seed_holidays(years: Iterable[int] = (2026, 2027)) -> list[Holiday]:
    """The seed: fixed national holidays of ``years`` and the provisional Islamic ones."""
    out = [Holiday(date(y, m, d), name) for y in years for m, d, name in FIXED_NATIONAL_HOLIDAYS]
    out += [Holiday(day, name, provisional=True) for day, name in ISLAMIC_HOLIDAYS_2026_2027
            if day.year in set(years)]
    return sorted(out, key=lambda h: (h.day, h.name))


@dataclass(frozen=True)
class WorkingCalendar:
    working_weekdays: frozenset[int] = DEFAULT_WORKING_WEEKDAYS
    holidays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_weekdays and day not in self.holidays

    def adjust(self, day: date, rule: NonWorkingDayRule) -> date:
        """``day`` moved to a working day by ``rule`` (``unchanged`` leaves it)."""
        if rule is NonWorkingDayRule.UNCHANGED or self.is_working_day(day):
            return day
        step = timedelta(days=1 if rule is NonWorkingDayRule.NEXT else -1)
        moved = day
        for _ in range(MAX_SHIFT_DAYS):
            moved += step
            if self.is_working_day(moved):
                return moved
        return day  # no working day near it: leave the date rather than invent one


NO_HOLIDAYS = WorkingCalendar(working_weekdays=frozenset(range(7)))
"""Every day a working day: schedules computed without a calendar."""
