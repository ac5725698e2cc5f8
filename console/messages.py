"""The console's message catalogue: French (primary) and English (fallback)."""

from __future__ import annotations

from console.messages_en import EN as EN_BASE
from console.messages_fr import FR as FR_BASE
from console.messages_loans_en import EN_LOANS
from console.messages_loans_fr import FR_LOANS
from console.messages_ops_en import EN_OPS
from console.messages_ops_fr import FR_OPS

EN: dict[str, str] = {**EN_BASE, **EN_OPS, **EN_LOANS}
FR: dict[str, str] = {**FR_BASE, **FR_OPS, **FR_LOANS}

CATALOGUE: dict[str, dict[str, str]] = {"en": EN, "fr": FR}

__all__ = ["CATALOGUE", "EN", "FR"]
