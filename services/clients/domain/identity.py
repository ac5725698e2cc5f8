"""Identity rules: Moroccan CIN, Moroccan mobile numbers, age and language.

Pure functions: each normalises what a partner app sends and raises
``InvalidInput`` naming the field when the value cannot be accepted.
"""

from __future__ import annotations

import datetime as dt
import re

from shared.errors import InvalidInput

LANGUAGES = ("fr", "ar")
ADULT_AGE = 18
MAX_AGE = 120

# Carte Nationale d'Identité Électronique: one or two letters, then digits.
_CIN = re.compile(r"^[A-Z]{1,2}\d{1,6}$")
_SEPARATORS = re.compile(r"[\s\-./()]")
# A Moroccan mobile is 6 or 7 followed by eight digits (national significant number).
_MA_MOBILE_NSN = re.compile(r"^[67]\d{8}$")


def normalise_cin(raw: str, *, field: str = "national_id") -> str:
    """Return the CIN in canonical form (upper case, no spaces or dashes)."""
    text = _SEPARATORS.sub("", raw or "").upper()
    if not text:
        raise InvalidInput("the national ID (CIN) is required", field=field)
    if not _CIN.match(text):
        raise InvalidInput(
            "a Moroccan CIN is one or two letters followed by up to six digits, e.g. BE123456",
            field=field)
    return text


def normalise_phone(raw: str, *, field: str = "phone") -> str:
    """Return a Moroccan mobile number in E.164 form (``+2126XXXXXXXX``).

    Accepted forms: ``06XXXXXXXX``/``07XXXXXXXX``, ``+2126…``/``+2127…``,
    ``002126…``, ``2126…`` and ``+212 06…``; spaces, dots, dashes and brackets
    are ignored.
    """
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise InvalidInput("the mobile phone number is required", field=field)
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit():
            raise InvalidInput("a phone number contains only digits after '+'", field=field)
        if not digits.startswith("212"):
            raise InvalidInput("only Moroccan mobile numbers (+2126…, +2127…) are accepted",
                               field=field)
        nsn = digits[3:]
    elif not text.isdigit():
        raise InvalidInput("a phone number contains only digits", field=field)
    elif text.startswith("00"):
        if not text.startswith("00212"):
            raise InvalidInput("only Moroccan mobile numbers (+2126…, +2127…) are accepted",
                               field=field)
        nsn = text[5:]
    elif text.startswith("212") and len(text) == 12:
        nsn = text[3:]
    elif text.startswith("0") and len(text) == 10:
        nsn = text[1:]
    else:
        raise InvalidInput(
            "a mobile number looks like 06XXXXXXXX, 07XXXXXXXX or +2126XXXXXXXX", field=field)
    if nsn.startswith("0") and len(nsn) == 10:  # "+212 06…": the trunk 0 is dropped
        nsn = nsn[1:]
    if not _MA_MOBILE_NSN.match(nsn):
        raise InvalidInput(
            "not a Moroccan mobile number: it must be +2126 or +2127 followed by 8 digits",
            field=field)
    return f"+212{nsn}"


def age_on(date_of_birth: dt.date, today: dt.date) -> int:
    """Completed years of age on ``today``."""
    years = today.year - date_of_birth.year
    if (today.month, today.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def check_adult(date_of_birth: dt.date, today: dt.date, *, field: str = "date_of_birth"
                ) -> dt.date:
    if date_of_birth > today:
        raise InvalidInput("the date of birth is in the future", field=field)
    age = age_on(date_of_birth, today)
    if age < ADULT_AGE:
        raise InvalidInput(f"the client must be an adult ({ADULT_AGE} or older); "
                           f"this date of birth gives {age}", field=field)
    if age > MAX_AGE:
        raise InvalidInput(f"a date of birth more than {MAX_AGE} years ago is not plausible",
                           field=field)
    return date_of_birth


def check_language(value: str, *, field: str = "language") -> str:
    lang = (value or "").strip().lower()
    if lang not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field=field)
    return lang


def normalise_name(value: str, *, field: str = "full_name") -> str:
    name = " ".join((value or "").split())
    if len(name) < 2:
        raise InvalidInput("the full name is required", field=field)
    if len(name) > 200:
        raise InvalidInput("the full name is at most 200 characters", field=field)
    return name
