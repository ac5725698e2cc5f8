"""French first, English as the fallback: the language choice and the formats.

The language comes from ``?lang=`` (remembered in a cookie), else the cookie,
else the browser's ``Accept-Language``, else French. A message missing from the
French catalogue falls back to English, then to its key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from console.messages import CATALOGUE

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
Translator = Callable[..., str]


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for choice in (query, cookie):
        if choice and choice.lower()[:2] in LANGUAGES:
            return choice.lower()[:2]
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            ranked.append((-quality, index, tag.strip().lower()[:2]))
        for _, _, code in sorted(ranked):
            if code in LANGUAGES:
                return code
    return DEFAULT_LANGUAGE


def translator(lang: str) -> Translator:
    primary = CATALOGUE.get(lang, {})
    fallback = CATALOGUE["en"]

    def t(key: str, **values: Any) -> str:
        text = primary.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number(value: Any, lang: str, places: int = 2) -> str:
    amount = to_decimal(value)
    if amount is None:
        return "—" if value in (None, "") else str(value)
    text = f"{amount:,.{places}f}"
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def money(value: Any, lang: str, currency: str = "MAD") -> str:
    text = number(value, lang)
    return text if text == "—" else f"{text} {currency}"


def percent(value: Any, lang: str) -> str:
    """A ratio (0.0523) as a percentage (5.23 %)."""
    ratio = to_decimal(value)
    if ratio is None:
        return "—"
    text = number(ratio * 100, lang)
    return f"{text}\u00a0%" if lang == "fr" else f"{text}%"


def date(value: Any, lang: str, seconds: bool = False) -> str:
    if not value:
        return "—"
    text = str(value)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    clock = ("%H:%M:%S" if seconds else "%H:%M") if ("T" in text or " " in text) else ""
    day = "%d/%m/%Y" if lang == "fr" else "%Y-%m-%d"
    return parsed.strftime(f"{day} {clock}".strip())
