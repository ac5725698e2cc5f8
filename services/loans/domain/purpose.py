"""What a loan is for, and the ceilings the institution sets per purpose (configuration:
``NORIA_LOANS_PURPOSE_CEILINGS``, e.g. ``{"housing": "30000.00", "consumption": "5000.00"}``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

from shared.errors import InvalidInput


class LoanPurpose(StrEnum):
    WORKING_CAPITAL = "working_capital"
    EQUIPMENT = "equipment"
    HOUSING = "housing"
    AGRICULTURE = "agriculture"
    LIVESTOCK = "livestock"
    EDUCATION = "education"
    HEALTH = "health"
    CONSUMPTION = "consumption"
    OTHER = "other"


def check_purpose(purpose: str | None, principal: Decimal,
                  ceilings: Mapping[str, Decimal]) -> None:
    """Refuse a principal above its purpose's ceiling (422 naming ``principal``)."""
    if purpose is None:
        return
    ceiling = ceilings.get(purpose)
    if ceiling is not None and principal > ceiling:
        raise InvalidInput(
            f"a {purpose.replace('_', ' ')} loan is at most {ceiling} MAD", field="principal")
