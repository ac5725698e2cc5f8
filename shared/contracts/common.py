"""Value types shared by the contracts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

from shared.money import Amount, Currency, PositiveAmount

Msisdn = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{7,14}$")]
"""A phone number in E.164 form, e.g. ``+212612345678``."""

Language = Literal["fr", "ar"]

__all__ = ["Amount", "Currency", "Language", "Msisdn", "PositiveAmount"]
