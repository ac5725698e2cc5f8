"""Identity rules: Moroccan CIN, Moroccan mobile numbers, age and language.

Pure functions: each normalises what a partner app sends and raises
``InvalidInput`` naming the field when the value cannot be accepted. Identifiers
(CIN, phone) take the platform's one canonical form from ``shared.identifiers``.
"""

from __future__ import annotations

import datetime as dt

from shared.errors import InvalidInput
from shared.identifiers import canonical_moroccan_mobile, canonical_national_id

LANGUAGES = ("fr", "ar")
ADULT_AGE = 18
MAX_AGE = 120


def normalise_cin(raw: str, *, field: str = "national_id") -> str:
    """The CIN in canonical form (``shared.identifiers``): upper case, ASCII digits,
    no spaces or dashes; ``be 123 456`` and ``BE`` with Arabic-Indic digits are
    ``BE123456``."""
    return canonical_national_id(raw, field=field)


def normalise_phone(raw: str, *, field: str = "phone") -> str:
    """A Moroccan mobile number in E.164 form (``+2126XXXXXXXX``).

    Accepted forms: ``06XXXXXXXX``/``07XXXXXXXX``, ``+2126…``/``+2127…``,
    ``002126…``, ``2126…`` and ``+212 06…``, in any script's digits; spaces, dots,
    dashes and brackets are ignored (``shared.identifiers``).
    """
    return canonical_moroccan_mobile(raw, field=field)


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
