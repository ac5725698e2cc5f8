"""The console's message catalogue: French (primary) and English (fallback)."""

from __future__ import annotations

from console.messages_en import EN
from console.messages_fr import FR

CATALOGUE: dict[str, dict[str, str]] = {"en": EN, "fr": FR}

__all__ = ["CATALOGUE", "EN", "FR"]
