"""SMS encoding and cost: GSM 03.38 (7-bit) or UCS-2, and how many parts a text takes.

One SMS carries 140 octets: 160 GSM-7 septets or 70 UCS-2 code units. A text
longer than that is sent in parts that each carry a 6-octet concatenation
header, leaving 153 septets or 67 code units per part. Characters of the GSM
extension table (``^ { } \\ [ ~ ] | €``) cost two septets (escape + code) and
are never split across two parts; neither is a UTF-16 surrogate pair.

The cedilla: code 0x09 is printed as capital ``Ç`` in the 3GPP table but mapped
to small ``ç`` in Unicode's mapping file, and handsets and libraries disagree.
Noria never emits 0x09: both ``Ç`` and ``ç`` count as outside GSM-7, so a French
template's policy decides: ``transliterate`` writes ``c``/``C`` (the message
stays GSM-7), ``keep`` sends UCS-2 and the handset shows the cedilla for sure.
Received text (a reply) decodes 0x09 as ``Ç``, as the printed table does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]
Policy = Literal["transliterate", "keep"]
POLICIES: tuple[Policy, ...] = ("transliterate", "keep")

SINGLE_GSM7 = 160
PART_GSM7 = 153
SINGLE_UCS2 = 70
PART_UCS2 = 67

ESCAPE = 0x1B
CEDILLA_CODE = 0x09

# GSM 03.38 default alphabet, by code 0x00..0x7F (0x1B is the escape to the extension table).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(GSM7_BASIC) == 128

GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
    "]": 0x3E, "|": 0x40, "€": 0x65,
}

_BASIC_CODE: dict[str, int] = {
    ch: code for code, ch in enumerate(GSM7_BASIC) if code not in (ESCAPE, CEDILLA_CODE)
}
_EXTENSION_CHAR: dict[int, str] = {code: ch for ch, code in GSM7_EXTENSION.items()}

# French (and common typographic) characters outside GSM-7, and what a
# "transliterate" template writes instead. Accents that GSM-7 has (é è à ù ì ò
# É Ä Ö Ü ä ö ü ñ) are kept as they are.
TRANSLITERATION: dict[str, str] = {
    "â": "a", "ê": "e", "î": "i", "ô": "o", "û": "u", "ë": "e", "ï": "i", "ÿ": "y",
    "ç": "c", "Ç": "C", "œ": "oe", "Œ": "OE",
    "À": "A", "Â": "A", "È": "E", "Ê": "E", "Ë": "E", "Î": "I", "Ï": "I", "Ô": "O",
    "Ù": "U", "Û": "U", "Ÿ": "Y", "á": "a", "í": "i", "ó": "o", "ú": "u",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2019": "'", "\u2018": "'", "\u201c": '"',
    "\u201d": '"', "«": '"', "»": '"', "\u2013": "-", "\u2014": "-", "\u2026": "...",
}


def septets(ch: str) -> int | None:
    """Septets ``ch`` costs in GSM-7 (1, or 2 for the extension table); None if absent."""
    if ch in _BASIC_CODE:
        return 1
    if ch in GSM7_EXTENSION:
        return 2
    return None


def is_gsm7(text: str) -> bool:
    return all(septets(ch) is not None for ch in text)


def gsm7_length(text: str) -> int:
    """Septets the whole text costs; raises ValueError if a character is not GSM-7."""
    total = 0
    for ch in text:
        cost = septets(ch)
        if cost is None:
            raise ValueError(f"{ch!r} is not in the GSM 03.38 alphabet")
        total += cost
    return total


def ucs2_units(ch: str) -> int:
    """UTF-16 code units of one character (2 for a character outside the BMP)."""
    return 2 if ord(ch) > 0xFFFF else 1


def ucs2_length(text: str) -> int:
    return sum(ucs2_units(ch) for ch in text)


def transliterate(text: str) -> str:
    return "".join(TRANSLITERATION.get(ch, ch) for ch in text)


def split_parts(text: str, encoding: Encoding) -> list[str]:
    """The texts of the parts, none longer than its encoding allows."""
    if encoding == "GSM-7":
        measure, single, per_part = septets, SINGLE_GSM7, PART_GSM7
        total = gsm7_length(text)
    else:
        measure, single, per_part = ucs2_units, SINGLE_UCS2, PART_UCS2
        total = ucs2_length(text)
    if total <= single:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = measure(ch) or 0
        if used + cost > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    if current:
        parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class EncodedText:
    """What is sent: the final text, its encoding, its parts and its length in units."""

    text: str
    encoding: Encoding
    parts: tuple[str, ...]
    length: int  # septets for GSM-7, UTF-16 code units for UCS-2
    transliterated: bool

    @property
    def segments(self) -> int:
        return len(self.parts)


def encode(text: str, policy: Policy = "transliterate") -> EncodedText:
    """Decide the encoding of ``text`` under ``policy`` and split it into parts.

    ``transliterate`` replaces French characters outside GSM-7 only when that
    makes the whole text GSM-7; a text that needs UCS-2 anyway (any Arabic)
    keeps its accents, since they cost nothing more there.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown encoding policy {policy!r}")
    if is_gsm7(text):
        return EncodedText(text, "GSM-7", tuple(split_parts(text, "GSM-7")),
                           gsm7_length(text), False)
    if policy == "transliterate":
        plain = transliterate(text)
        if is_gsm7(plain):
            return EncodedText(plain, "GSM-7", tuple(split_parts(plain, "GSM-7")),
                               gsm7_length(plain), True)
    return EncodedText(text, "UCS-2", tuple(split_parts(text, "UCS-2")), ucs2_length(text),
                       False)


def segments_for(length: int, encoding: Encoding) -> int:
    """Parts needed for ``length`` units when no escape pair straddles a boundary."""
    single, per_part = (SINGLE_GSM7, PART_GSM7) if encoding == "GSM-7" else (SINGLE_UCS2,
                                                                               PART_UCS2)
    if length <= single:
        return 1
    return math.ceil(length / per_part)


# -- wire form (SMPP short_message bytes) -------------------------------------------

def to_gsm7_bytes(text: str) -> bytes:
    """GSM 03.38 codes, one octet per septet (SMPP's unpacked default alphabet)."""
    out = bytearray()
    for ch in text:
        if ch in _BASIC_CODE:
            out.append(_BASIC_CODE[ch])
        elif ch in GSM7_EXTENSION:
            out += bytes((ESCAPE, GSM7_EXTENSION[ch]))
        else:
            raise ValueError(f"{ch!r} is not in the GSM 03.38 alphabet")
    return bytes(out)


def from_gsm7_bytes(data: bytes) -> str:
    out: list[str] = []
    escaped = False
    for code in data:
        code &= 0x7F
        if escaped:
            out.append(_EXTENSION_CHAR.get(code, " "))
            escaped = False
        elif code == ESCAPE:
            escaped = True
        else:
            out.append(GSM7_BASIC[code])
    return "".join(out)


def to_wire(text: str, encoding: Encoding) -> bytes:
    return to_gsm7_bytes(text) if encoding == "GSM-7" else text.encode("utf-16-be")


def from_wire(data: bytes, data_coding: int) -> str:
    """Decode a short_message: 0x08 is UCS-2, 0x00 the GSM default alphabet, 0x03 Latin-1."""
    if data_coding == 0x08:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == 0x03:
        return data.decode("latin-1")
    return from_gsm7_bytes(data)
