"""Money: ``Decimal`` in code, NUMERIC in SQL, decimal strings in JSON.

A JSON number for an amount is refused: ``5000.1`` may already have been rounded
by the sender's float arithmetic, so only ``"5000.10"`` is accepted.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
_AMOUNT_RE = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$")
CURRENCIES = frozenset({"MAD"})


def parse_amount(value: Any) -> Decimal:
    """Parse a money amount given as a decimal string with at most two decimals."""
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError(
            "amount must be a decimal string such as \"500.00\", not a JSON number")
    if not _AMOUNT_RE.match(text):
        raise ValueError(
            "amount must be a decimal string with at most two decimals, e.g. \"500.00\"")
    return Decimal(text).quantize(CENT)


def quantize(value: Decimal) -> Decimal:
    """Round to the cent, banker's rounding (used only where a rule says so)."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def format_amount(value: Decimal) -> str:
    return format(value.quantize(CENT), "f")


Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    PlainSerializer(format_amount, return_type=str, when_used="always"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?\d{1,13}(\.\d{1,2})?$", "examples": ["500.00"]}),
]
"""A money amount in a pydantic model: accepts and emits decimal strings."""


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("amount must be greater than zero")
    return value


def _check_positive(value: Any) -> Decimal:
    return _positive(parse_amount(value))


PositiveAmount = Annotated[
    Decimal,
    BeforeValidator(_check_positive),
    PlainSerializer(format_amount, return_type=str, when_used="always"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d{1,13}(\.\d{1,2})?$", "examples": ["500.00"]}),
]


def _check_currency(value: Any) -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise ValueError(f"currency must be one of {sorted(CURRENCIES)}")
    return value


Currency = Annotated[str, BeforeValidator(_check_currency)]
