"""Short loan references a borrower can type: ``L`` + 8 Crockford base32 characters + a
check character (10 characters, e.g. ``L7K2M9QXR4``).

- The 8 characters encode a 40-bit random number in Crockford's base32 alphabet
  (``0-9 A-Z`` without ``I L O U``): no letter that reads like a digit, and ``L`` can only
  be the prefix, so payments tells a loan reference from a savings ``SAV-…`` one.
- The check character is Crockford's: the number modulo 37, written in the alphabet
  extended by ``* ~ $ = U``. 37 is prime and larger than the alphabet, so a single wrong
  character (a digit differs by less than 37, times a power of 32 that 37 does not
  divide) and a swap of two neighbours (the difference is a multiple of 31 * 32^k) always
  change the remainder: the check fails. References are issued only with a check in the
  plain alphabet (retrying the random draw), so what a borrower types is letters and
  digits only.
- Reading is forgiving as Crockford's: any case, spaces and dashes ignored, ``O`` read as
  ``0`` and ``I``/``L`` as ``1`` after the prefix.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
PREFIX = "L"
DATA_LENGTH = 8
LENGTH = len(PREFIX) + DATA_LENGTH + 1
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
_ALIASES = {"O": "0", "I": "1", "L": "1"}


def check_character(value: int) -> str:
    return CHECK_ALPHABET[value % 37]


def encode(value: int) -> str:
    """The reference of a number below 32**8 (its check character included)."""
    if not 0 <= value < 32 ** DATA_LENGTH:
        raise ValueError("a reference encodes 40 bits")
    digits = []
    n = value
    for _ in range(DATA_LENGTH):
        n, d = divmod(n, 32)
        digits.append(ALPHABET[d])
    return PREFIX + "".join(reversed(digits)) + check_character(value)


def new_reference() -> str:
    """A random reference whose check character is a letter or a digit."""
    while True:
        value = secrets.randbits(5 * DATA_LENGTH)
        if value % 37 < 32:
            return encode(value)


def normalise(raw: str) -> str:
    """Upper-cased, without spaces and dashes."""
    return "".join(c for c in raw.upper() if c not in " -_.")


def looks_like_reference(raw: str) -> bool:
    """Shaped like a short reference (``L`` + 9 characters), whatever its check says."""
    text = normalise(raw)
    return (len(text) == LENGTH and text.startswith(PREFIX)
            and all(_ALIASES.get(c, c) in _VALUES for c in text[1:-1])
            and _ALIASES.get(text[-1], text[-1]) in CHECK_ALPHABET)


@dataclass(frozen=True)
class Parsed:
    outcome: Literal["valid", "check_failed", "not_a_reference"]
    reference: str | None = None
    """The canonical reference (``valid`` only)."""


def parse(raw: str) -> Parsed:
    """Read what a borrower typed: a valid reference, a mistyped one, or something else."""
    if not looks_like_reference(raw):
        return Parsed("not_a_reference")
    text = normalise(raw)
    value = 0
    for c in text[1:-1]:
        value = value * 32 + _VALUES[_ALIASES.get(c, c)]
    if check_character(value) != _ALIASES.get(text[-1], text[-1]):
        return Parsed("check_failed")
    return Parsed("valid", encode(value))
