"""SMS templates: text with ``{placeholders}``, typed variables, per-language formatting.

Templates are data (the ``templates`` table, one row per name, language and
version). A body names its variables as ``{amount}``; each variable has a type
that says how it is written in the template's language:

- ``money``: a decimal amount in MAD. French ``5 000,00 MAD``; Arabic
  ``5 000,00 درهم`` where the thousands separator is a no-break space, which the
  Unicode bidirectional algorithm keeps inside the number (a plain space would
  let a right-to-left phone show ``000,00 5``).
- ``date``: ``12/04/2027`` in both languages (Latin digits, as Moroccan SMS use).
- ``phone_tail``: the last four digits of a phone number (``5678``).
- ``percent``: a rate given as a fraction (``0.234512``), written with two decimals:
  French ``23,45 %`` (no-break space, a plain one once transliterated), Arabic
  ``23,45%`` (no space: a neutral space could let a right-to-left phone put the
  sign before the number).
- ``text`` and ``int``: written as given.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal, get_args

from services.notifications.domain.encoding import POLICIES, EncodedText, Policy, encode
from shared.errors import InvalidInput, NotFound

Language = Literal["fr", "ar"]
LANGUAGES: tuple[Language, ...] = ("fr", "ar")
VarType = Literal["money", "date", "phone_tail", "text", "int", "percent"]
VAR_TYPES: tuple[str, ...] = get_args(VarType)

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
CURRENCY_WORD: dict[Language, str] = {"fr": "MAD", "ar": "درهم"}
THOUSANDS: dict[Language, str] = {"fr": " ", "ar": "\u00a0"}


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    language: Language
    body: str
    variables: dict[str, VarType] = field(default_factory=dict)
    urgent: bool = False
    policy: Policy = "transliterate"

    def placeholders(self) -> list[str]:
        return list(dict.fromkeys(PLACEHOLDER.findall(self.body)))


@dataclass(frozen=True)
class Rendered:
    template: Template
    encoded: EncodedText

    @property
    def text(self) -> str:
        return self.encoded.text


def format_money(value: Decimal, language: Language) -> str:
    q = value.quantize(Decimal("0.01"))
    sign = "-" if q < 0 else ""
    whole, _, cents = format(abs(q), "f").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return f"{sign}{THOUSANDS[language].join(groups)},{cents} {CURRENCY_WORD[language]}"


def format_percent(fraction: Decimal, language: Language) -> str:
    q = (fraction * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    number = format(q, "f").replace(".", ",")
    return f"{number}\u00a0%" if language == "fr" else f"{number}%"


def format_date(value: dt.date, language: Language) -> str:
    del language  # both languages write dd/mm/yyyy with Latin digits
    return value.strftime("%d/%m/%Y")


def _coerce(name: str, kind: VarType, value: object) -> object:
    """Turn a JSON value (or a domain value) into the type ``kind`` expects."""
    field_name = f"variables.{name}"
    if kind == "money":
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a decimal string such as \"500.00\"",
                               field=field_name)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise InvalidInput(f"{name} must be a decimal string such as \"500.00\"",
                               field=field_name) from None
        if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise InvalidInput(f"{name} must have at most two decimals", field=field_name)
        return amount
    if kind == "percent":
        if isinstance(value, Decimal):
            return value
        try:
            rate = Decimal(str(value)) if isinstance(value, str) else None
        except InvalidOperation:
            rate = None
        if rate is None or not rate.is_finite():
            raise InvalidInput(f"{name} must be a fraction as a decimal string such as"
                               " \"0.2345\"", field=field_name)
        return rate
    if kind == "date":
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(f"{name} must be a date such as \"2027-04-12\"",
                               field=field_name) from None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidInput(f"{name} must be a whole number", field=field_name)
        try:
            return int(value)
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number", field=field_name) from None
    if kind == "phone_tail":
        digits = re.sub(r"\D", "", str(value))
        if len(digits) < 4:
            raise InvalidInput(f"{name} must be a phone number", field=field_name)
        return digits[-4:]
    if not isinstance(value, str | int):
        raise InvalidInput(f"{name} must be a string", field=field_name)
    return str(value)


def format_value(kind: VarType, value: object, language: Language) -> str:
    if kind == "money":
        assert isinstance(value, Decimal)
        return format_money(value, language)
    if kind == "date":
        assert isinstance(value, dt.date)
        return format_date(value, language)
    if kind == "percent":
        assert isinstance(value, Decimal)
        return format_percent(value, language)
    return str(value)


def render(template: Template, variables: dict[str, object]) -> Rendered:
    """Fill ``template`` and decide its encoding; a missing variable names its field."""
    missing = [n for n in template.placeholders() if n not in variables]
    if missing:
        raise InvalidInput(
            f"template {template.name} needs the variable(s) {', '.join(missing)}",
            field=f"variables.{missing[0]}", missing=missing)
    values: dict[str, str] = {}
    for name in template.placeholders():
        kind = template.variables.get(name, "text")
        values[name] = format_value(kind, _coerce(name, kind, variables[name]),
                                    template.language)
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], template.body)
    return Rendered(template, encode(text, template.policy))


def pick(templates: dict[tuple[str, str], Template], name: str,
         language: str) -> Template:
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    found = templates.get((name, language))
    if found is None:
        if any(n == name for n, _ in templates):
            raise NotFound(f"template {name} has no {language} version", field="language")
        raise NotFound(f"no template named {name}", field="name")
    return found


def newest_fillable(versions: list[Template], variables: dict[str, object]) -> Template | None:
    """The highest of ``versions`` (one name and language) whose placeholders
    ``variables`` all fill: an event from a publisher older than the current version
    (a ``LoanDisbursed`` without the TEG) is written with the version it can fill."""
    for template in sorted(versions, key=lambda t: t.version, reverse=True):
        if all(name in variables for name in template.placeholders()):
            return template
    return None


def validate_new_version(name: str, language: str, body: str, variables: dict[str, str],
                         policy: str) -> None:
    """Check a template version an operator submits before it is stored."""
    if not NAME.match(name):
        raise InvalidInput("a template name is lowercase letters, digits and _", field="name")
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    if not body.strip():
        raise InvalidInput("the body is empty", field="body")
    if len(body) > 1000:
        raise InvalidInput("the body is longer than 1000 characters", field="body")
    if policy not in POLICIES:
        raise InvalidInput(f"policy must be one of {', '.join(POLICIES)}", field="policy")
    for var, kind in variables.items():
        if kind not in VAR_TYPES:
            raise InvalidInput(f"variable {var} has unknown type {kind!r}; use one of "
                               f"{', '.join(VAR_TYPES)}", field=f"variables.{var}")
    for placeholder in PLACEHOLDER.findall(body):
        if placeholder not in variables:
            raise InvalidInput(f"the body uses {{{placeholder}}} but declares no such variable",
                               field="body")
    stray = re.sub(PLACEHOLDER, "", body)
    if "{" in stray or "}" in stray:
        raise InvalidInput("a placeholder is written {name}, with a lowercase name",
                           field="body")
