"""Canonical identifiers: national ids, phone numbers and references.

Two spellings of one identifier must compare equal before any uniqueness check,
lookup or payout. Every function here is pure and either returns the one
canonical ASCII form or raises ``InvalidInput`` naming the field:

1. the text is bounded (over-long input is refused before any work);
2. Unicode NFKC folds compatibility forms (full-width letters, digits and ``+``);
3. every Unicode decimal digit (Arabic-Indic U+0660-0669, extended Arabic-Indic
   U+06F0-06F9, Devanagari, full-width U+FF10-FF19…) becomes its ASCII digit;
4. separators the format allows (spaces, dashes, dots…) are dropped;
5. anything that is still not ASCII is refused, never stored.

So ``BE123456`` written with Arabic-Indic or full-width digits, ``be 123-456``
and full-width ``BE123456`` are one CIN, and ``0612345678`` in Arabic-Indic
digits is ``+212612345678``.
"""

from __future__ import annotations

import re
import unicodedata

from shared.errors import InvalidInput

MAX_RAW_LENGTH = 64
"""No identifier we accept is longer than this before its separators are removed."""

MAX_REFERENCE_LENGTH = 100
"""A loan or provider reference is at most this long."""

MOROCCO_CALLING_CODE = "212"

_CIN = re.compile(r"[A-Z]{1,2}[0-9]{1,6}")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_MA_NSN = re.compile(r"[5-8][0-9]{8}")
_MA_MOBILE_NSN = re.compile(r"[67][0-9]{8}")
_REFERENCE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._:/-]*[A-Za-z0-9])?")
_PHONE_PUNCTUATION = frozenset(".()/")


class InvalidIdentifier(InvalidInput):
    """An identifier that cannot be brought to one canonical form."""

    title = "Invalid identifier"


def ascii_digits(text: str) -> str:
    """NFKC, then every Unicode decimal digit as its ASCII digit (nothing else changes)."""
    folded = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for ch in folded:
        value = unicodedata.decimal(ch, None) if not ch.isascii() else None
        out.append(str(value) if value is not None else ch)
    return "".join(out)


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "unnamed character")
    return f"{ch!r} (U+{ord(ch):04X} {name})"


def _prepared(raw: object, *, field: str, what: str, drop: frozenset[str] = frozenset()
              ) -> str:
    """Bounded, NFKC-folded, ASCII-digit text without whitespace, dashes and ``drop``."""
    if not isinstance(raw, str):
        raise InvalidIdentifier(f"the {what} must be a string", field=field)
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidIdentifier(
            f"the {what} is too long ({len(raw)} characters; at most {MAX_RAW_LENGTH})",
            field=field)
    text = ascii_digits(raw)
    kept: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace() or category in ("Zs", "Cf") or category == "Pd" or ch in drop:
            continue  # separators: any space, zero-width/format marks, any dash
        kept.append(ch)
    cleaned = "".join(kept)
    for ch in cleaned:
        if not ch.isascii() or not ch.isprintable():
            raise InvalidIdentifier(
                f"the {what} contains {_describe(ch)}, which is not a Latin letter or a digit",
                field=field)
    if not cleaned:
        raise InvalidIdentifier(f"the {what} is required", field=field)
    return cleaned


def canonical_national_id(raw: object, *, field: str = "national_id") -> str:
    """A Moroccan CIN (CNIE): one or two letters then up to six digits, upper case.

    ``be 123 456``, ``BE-123456`` and ``BE`` followed by Arabic-Indic ``123456``
    all give ``BE123456``.
    """
    text = _prepared(raw, field=field, what="national ID (CIN)",
                     drop=frozenset(".")).upper()
    if _CIN.fullmatch(text) is None:
        raise InvalidIdentifier(
            "a Moroccan CIN is one or two letters followed by up to six digits, e.g. BE123456",
            field=field)
    return text


def canonical_phone(raw: object, *, field: str = "phone") -> str:
    """A phone number in E.164 (``+<country><number>``); Morocco is the default country.

    National Moroccan forms (``06…``, ``212…``, ``+212 0…``) gain ``+212`` and lose
    the trunk ``0``; ``00`` is the international prefix; a ``+212`` number must have
    a nine-digit national number starting 5-8.
    """
    text = _prepared(raw, field=field, what="phone number", drop=_PHONE_PUNCTUATION)
    body = text[1:] if text.startswith("+") else text
    if not (body.isascii() and body.isdigit()):
        after = " after '+'" if text.startswith("+") else ""
        raise InvalidIdentifier(f"a phone number contains only digits{after}", field=field)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif text.startswith("0") and len(text) == 10:
        digits = MOROCCO_CALLING_CODE + text[1:]
    elif text.startswith(MOROCCO_CALLING_CODE) and len(text) == 12:
        digits = text
    else:
        raise InvalidIdentifier(
            "a phone number looks like 06XXXXXXXX, 07XXXXXXXX or +2126XXXXXXXX", field=field)
    if digits.startswith(MOROCCO_CALLING_CODE):
        nsn = digits[len(MOROCCO_CALLING_CODE):]
        if nsn.startswith("0") and len(nsn) == 10:  # "+212 06…": the trunk 0 is dropped
            nsn = nsn[1:]
        if _MA_NSN.fullmatch(nsn) is None:
            raise InvalidIdentifier(
                "not a Moroccan number: +212 is followed by 9 digits starting 5, 6, 7 or 8",
                field=field)
        return f"+{MOROCCO_CALLING_CODE}{nsn}"
    e164 = f"+{digits}"
    if _E164.fullmatch(e164) is None:
        raise InvalidIdentifier("not an international phone number (+, then 8 to 15 digits)",
                                field=field)
    return e164


def canonical_moroccan_mobile(raw: object, *, field: str = "phone") -> str:
    """A Moroccan mobile (a wallet's MSISDN) in E.164: ``+2126XXXXXXXX`` or ``+2127…``."""
    e164 = canonical_phone(raw, field=field)
    prefix = f"+{MOROCCO_CALLING_CODE}"
    if not e164.startswith(prefix):
        raise InvalidIdentifier("only Moroccan mobile numbers (+2126…, +2127…) are accepted",
                                field=field)
    if _MA_MOBILE_NSN.fullmatch(e164[len(prefix):]) is None:
        raise InvalidIdentifier(
            "not a Moroccan mobile number: it must be +2126 or +2127 followed by 8 digits",
            field=field)
    return e164


def canonical_reference(raw: object, *, field: str = "reference",
                        max_length: int = MAX_REFERENCE_LENGTH, fold_case: bool = True) -> str:
    """A loan or provider reference: ASCII letters and digits, lower case.

    Inner ``-``, ``_``, ``.``, ``:`` and ``/`` are kept (they are part of many
    provider references and of our UUIDs); any Unicode dash becomes ``-``;
    surrounding spaces are dropped, inner spaces refused. Lower case is the
    canonical case because our own ids (UUIDs) are written that way; pass
    ``fold_case=False`` only for an issuer whose references are case-sensitive.
    """
    if not isinstance(raw, str):
        raise InvalidIdentifier("the reference must be a string", field=field)
    if len(raw) > max_length:
        raise InvalidIdentifier(
            f"the reference is too long ({len(raw)} characters; at most {max_length})",
            field=field)
    text = ascii_digits(raw).strip()
    text = "".join("-" if unicodedata.category(ch) == "Pd" else ch for ch in text)
    for ch in text:
        if ch.isspace():
            raise InvalidIdentifier("a reference contains no spaces", field=field)
        if not ch.isascii() or not ch.isprintable():
            raise InvalidIdentifier(
                f"the reference contains {_describe(ch)}, which is not a Latin letter or "
                "a digit", field=field)
    if not text:
        raise InvalidIdentifier("the reference is required", field=field)
    folded = text.lower() if fold_case else text
    if _REFERENCE.fullmatch(folded) is None:
        raise InvalidIdentifier(
            "a reference is letters and digits, optionally joined by - _ . : or /",
            field=field)
    return folded


__all__ = [
    "MAX_RAW_LENGTH",
    "MAX_REFERENCE_LENGTH",
    "InvalidIdentifier",
    "ascii_digits",
    "canonical_moroccan_mobile",
    "canonical_national_id",
    "canonical_phone",
    "canonical_reference",
]
